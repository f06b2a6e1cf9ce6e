# Sourced by the load scripts: a scratch directory and the background
# processes started into `pids`, all removed or stopped when the script exits.
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
