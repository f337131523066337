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
ensure_node_modules() {
	if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
		echo "installing pinned Node dependencies (npm ci)..." >&2
		npm ci --no-audit --no-fund
	fi
}
