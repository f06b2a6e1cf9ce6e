#!/usr/bin/env bash
# What observability costs: hello-world throughput with execution records on
# and traces exported over OTLP/HTTP to a local receiver, against the same
# server with both off, in one run (ABBA order, each side averaged).
# Target: "on" within 10% of "off".
# Usage: benches/observability.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
scripts/install-deps
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release --locked -p edgefn-host -p edgefn-benches --bins

key=efk_observability_benchmark_key_0123456789
source benches/common.sh

./target/release/otlp_sink 127.0.0.1:18095 &
pids+=("$!")

# start <port> <label> <flags...>
start() {
  local port=$1 label=$2; shift 2
  EDGEFN_BOOTSTRAP_ADMIN_KEY=$key EDGEFN_LOG=warn ./target/release/edgefn --listen "127.0.0.1:$port" \
    --data-dir "$work/$label" --cache-dir target/bench-engine-cache "$@" > "$work/$label.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 200); do grep -q "listening" "$work/$label.log" && break; sleep 0.1; done
  curl -sf -X POST -H "Authorization: Bearer $key" --data-binary @benches/reference/hello.js \
    "http://127.0.0.1:$port/admin/v1/functions/hello/versions" > /dev/null
  curl -sf -X PUT -H "Authorization: Bearer $key" -H 'content-type: application/json' -d '{"policy": {"type": "public"}}' \
    "http://127.0.0.1:$port/admin/v1/functions/hello/access" > /dev/null
  curl -sf "http://127.0.0.1:$port/functions/v1/hello" > /dev/null
}
start 18093 on --otlp-endpoint http://127.0.0.1:18095 --otlp-protocol http/protobuf
start 18094 off --record-executions false

measure() {
  wrk -t2 -c32 -d"${duration}s" --latency "http://127.0.0.1:$1/functions/v1/hello" > "$work/wrk.txt"
  if grep -q "Non-2xx" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' "$work/wrk.txt"
}
on1=$(measure 18093); sleep 3
off1=$(measure 18094); sleep 3
off2=$(measure 18094); sleep 3
on2=$(measure 18093); sleep 3

read -r exports bytes < <(curl -sf http://127.0.0.1:18095/count)
[ "$exports" -gt 0 ] || { echo "the receiver got no spans: tracing was not on" >&2; exit 1; }
echo "== hello world, wrk -t2 -c32 -d${duration}s, ABBA"
printf "%-34s %10s %10s\n" "server" "run 1" "run 2"
printf "%-34s %10s %10s\n" "records on + OTLP export (req/s)" "$on1" "$on2"
printf "%-34s %10s %10s\n" "records off, no tracing (req/s)" "$off1" "$off2"
echo "the receiver took $exports OTLP exports, $bytes bytes"
awk -v a="$on1" -v b="$on2" -v c="$off1" -v d="$off2" 'BEGIN {
  printf "on / off throughput: %.3fx (target: >= 0.90x)\n", (a + b) / (c + d) }'
