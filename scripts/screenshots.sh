#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: the Settings page test in headless
# Chromium against the local stack, writing a screenshot of each state.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo_root
ensure_tools
ensure_node_modules
ensure_chromium
CGO_ENABLED=0 go test -count=1 -run TestSettingsPage ./cmd/localstack -update-screenshots
ls -l docs/screenshots
