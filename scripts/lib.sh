# Shared helpers for scripts/run.sh, scripts/test.sh and .ci/run. Sourced, not run.

# repo_root changes to the repository root (the folder holding go.mod).
repo_root() {
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
}

# ensure_tools fails early with a clear message when go, node or npm is missing.
ensure_tools() {
	local t
	for t in go node npm; do
		if ! command -v "$t" >/dev/null 2>&1; then
			echo "error: '$t' is not on PATH; install Go 1.26+ and Node.js 20+ (with npm) first" >&2
			exit 1
		fi
	done
}

# ensure_node_modules runs `npm ci` (pinned Azurite) when node_modules is
# missing or older than package-lock.json. npm writes
# node_modules/.package-lock.json on every install, so its age is the install's.
# npm's own output goes to .local/npm-ci.log; the screen gets a line every
# PROGRESS_EVERY whole seconds (default 5) while it runs, and the log's end if it
# fails.
ensure_node_modules() {
	if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
		return 0
	fi
	local log=.local/npm-ci.log every="${PROGRESS_EVERY:-5}" pid rc=0 start=$SECONDS
	mkdir -p .local
	echo "Installing the pinned Node dependencies (npm ci; first run only, about a minute). Output: $log" >&2
	npm ci --no-audit --no-fund >"$log" 2>&1 &
	pid=$!
	local next=$((start + every))
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.2
		if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
			echo "  ...  npm ci: still installing ($((SECONDS - start))s)" >&2
			next=$((SECONDS + every))
		fi
	done
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "  FAIL npm ci (exit $rc); the end of $log:" >&2
		tail -n 20 "$log" >&2
		return "$rc"
	fi
	echo "  ok   npm ci ($((SECONDS - start))s)" >&2
}

# ensure_chromium installs Debian's chromium when missing: the Settings page
# tests (cmd/localstack TestSettingsPage) drive it headless and fail without
# it. CI runs as root; elsewhere sudo is used when present.
ensure_chromium() {
	if command -v chromium >/dev/null 2>&1; then
		return
	fi
	echo "installing chromium (apt-get) for the Settings page tests..." >&2
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "error: chromium is missing; install it: apt-get install -y chromium" >&2
			exit 1
		fi
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium
}

# ensure_rclone installs Debian's rclone when missing: cmd/bench's smoke test
# (TestShortRunsEveryPhase) runs its B2 phase, rclone copy through a crypt
# remote, and fails without it.
ensure_rclone() {
	if command -v rclone >/dev/null 2>&1; then
		return
	fi
	echo "installing rclone (apt-get) for cmd/bench's smoke test..." >&2
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "error: rclone is missing; install it: apt-get install -y rclone" >&2
			exit 1
		fi
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq rclone
}
