# Sourced by the load scripts: a scratch directory and the background
# processes started into `pids`, all removed or stopped when the script exits.
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# start_edgefn_server <port> <label> <edgefn flags...>: edgefn on <port>,
# its data under $work/<label>, the caller's $key as its admin key; waits
# until it listens (or shows its log and exits) and sets pid_<label>.
start_edgefn_server() {
  local port=$1 label=$2; shift 2
  EDGEFN_BOOTSTRAP_ADMIN_KEY=$key EDGEFN_LOG=warn ./target/release/edgefn --listen "127.0.0.1:$port" \
    --data-dir "$work/$label" --cache-dir target/bench-engine-cache "$@" > "$work/$label.log" 2>&1 &
  pids+=("$!")
  eval "pid_$label=$!"
  for _ in $(seq 600); do grep -q "listening" "$work/$label.log" && return; sleep 0.1; done
  echo "edgefn ($label) did not start listening on port $port:" >&2
  cat "$work/$label.log" >&2
  exit 1
}

# deploy_public <port> <name> <source, as curl's --data-binary takes it>:
# deploys a new version of <name> and makes the function public.
deploy_public() {
  curl -sf -X POST -H "Authorization: Bearer $key" --data-binary "$3" \
    "http://127.0.0.1:$1/admin/v1/functions/$2/versions" > /dev/null || { echo "deploying $2 failed" >&2; exit 1; }
  curl -sf -X PUT -H "Authorization: Bearer $key" -H 'content-type: application/json' -d '{"policy": {"type": "public"}}' \
    "http://127.0.0.1:$1/admin/v1/functions/$2/access" > /dev/null
}

# start_hello_server <port> <label> <edgefn flags...>: start_edgefn_server
# with hello world deployed, public and called once.
start_hello_server() {
  start_edgefn_server "$@"
  deploy_public "$1" hello @benches/reference/hello.js
  curl -sf "http://127.0.0.1:$1/functions/v1/hello" > /dev/null
}

# Installs what a load script needs (the engine's toolchain, wrk) and builds
# edgefn and the benchmark binaries in release.
install_and_build() {
  scripts/install-deps
  command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
  cargo build --release --locked -p edgefn-host -p edgefn-benches --bins
}

# start_bench_server <binary in benches/src/bin> <address> [its other
# arguments]: starts it, waits until it answers (sandbox_axum compiles its
# function first); sets server_pid.
start_bench_server() {
  "./target/release/$1" "$2" "${@:3}" > /dev/null &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 300); do curl -sf "http://$2/x" > /dev/null && return; sleep 0.1; done
  echo "$1 did not answer on $2" >&2
  exit 1
}
