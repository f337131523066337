#!/usr/bin/env bash
# Runs the service locally end to end (README's first command): Azurite, the
# Key Vault emulator, a local token issuer, the packaged app and the local
# runner (the Functions host stand-in). Ctrl-C stops everything.
# Extra arguments go to cmd/localstack (try: bash scripts/run.sh -h).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo_root
ensure_tools
ensure_node_modules
exec go run ./cmd/localstack "$@"
