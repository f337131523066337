#!/usr/bin/env bash
# Runs every test in the repository (README's second command).
# On a fresh machine it installs the pinned Azurite and Debian's chromium and rclone first; Go modules download on demand.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo_root
ensure_tools
ensure_node_modules
ensure_chromium
ensure_rclone

# The whole tree without -race: 2 cores, and Azurite-bound integration tests
# gain nothing from it while running 2-10x slower.
# CGO_ENABLED=0 is how the handler ships (cmd/pack), so the tests exercise that
# build and share its compile cache with internal/devstack/pack's packaging test; with
# cgo on, that test would compile the whole dependency tree a second time.
CGO_ENABLED=0 go test -count=1 -timeout 15m ./...

# -race only where the code's job is concurrency: the local runner (queue pump
# with batchSize workers, timers, handler supervision, HTTP forwarding) and the
# handler's server and invocation layer (concurrent invocations, drain on
# SIGTERM). Listed packages that don't exist yet are left out.
race=()
for p in internal/devstack/runner internal/edge/server internal/edge/invoke; do
	[ -d "$p" ] && race+=("./$p/...")
done
if [ "${#race[@]}" -gt 0 ]; then
	# The race detector needs cgo.
	CGO_ENABLED=1 go test -race -count=1 -timeout 10m "${race[@]}"
fi
