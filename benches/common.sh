# Sourced by the load scripts: a scratch directory and the background
# processes started into `pids`, all removed or stopped when the script exits.
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# start_hello_server <port> <label> <edgefn flags...>: edgefn on <port> with
# hello world deployed and public, its data under $work/<label>, the
# caller's $key as its admin key; sets pid_<label>.
start_hello_server() {
  local port=$1 label=$2; shift 2
  EDGEFN_BOOTSTRAP_ADMIN_KEY=$key EDGEFN_LOG=warn ./target/release/edgefn --listen "127.0.0.1:$port" \
    --data-dir "$work/$label" --cache-dir target/bench-engine-cache "$@" > "$work/$label.log" 2>&1 &
  pids+=("$!")
  eval "pid_$label=$!"
  for _ in $(seq 200); do grep -q "listening" "$work/$label.log" && break; sleep 0.1; done
  curl -sf -X POST -H "Authorization: Bearer $key" --data-binary @benches/reference/hello.js \
    "http://127.0.0.1:$port/admin/v1/functions/hello/versions" > /dev/null
  curl -sf -X PUT -H "Authorization: Bearer $key" -H 'content-type: application/json' -d '{"policy": {"type": "public"}}' \
    "http://127.0.0.1:$port/admin/v1/functions/hello/access" > /dev/null
  curl -sf "http://127.0.0.1:$port/functions/v1/hello" > /dev/null
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
