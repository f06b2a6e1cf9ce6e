#!/usr/bin/env bash
# Machine instructions the server runs per hello-world request, counted by
# valgrind's callgrind: the same binary, flags and requests give the same
# count whatever else the machine is doing, so it compares two builds or two
# configurations where throughput on this shared machine moves by ±20%.
# Everything the server does while the requests run is counted, its record
# writer and span exporter included (the receiver, another process, is not).
#
# Usage: benches/instructions.sh [requests, default 1000] [-- <edgefn flags>]
#   benches/instructions.sh 1000 -- --record-executions false
#   benches/instructions.sh 1000 -- --otlp-endpoint http://127.0.0.1:18096 --otlp-protocol http/protobuf
# Set EDGEFN_BIN to count another build (default: target/release/edgefn),
# and CALLGRIND_OUT=<file> to keep the profile for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-1000}"
shift || true
[ "${1:-}" = "--" ] && shift
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
bin="${EDGEFN_BIN:-target/release/edgefn}"
[ -n "${EDGEFN_BIN:-}" ] || cargo build --release --locked -p edgefn-host -p edgefn-benches --bins
key=efk_observability_benchmark_key_0123456789
port=18096
source benches/common.sh

# Any --otlp-endpoint on port 18096+1 gets a local receiver.
./target/release/otlp_sink 127.0.0.1:$((port + 1)) &
pids+=("$!")

# Valgrind reports a CPU with fewer features than the real one, so the
# engine is compiled for it into a cache of its own (minutes, the first
# time). The pool is kept small: valgrind cannot reserve the default one's
# address space. Instrumentation starts only once the warm-up is over.
EDGEFN_BOOTSTRAP_ADMIN_KEY=$key EDGEFN_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" \
  "$bin" --listen "127.0.0.1:$port" --data-dir "$work/data" --cache-dir target/callgrind-engine-cache \
  --max-instances 2 "$@" > "$work/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 3000); do grep -q "listening" "$work/server.log" && break; sleep 0.2; done
grep -q "listening" "$work/server.log" || { cat "$work/server.log" >&2; exit 1; }
curl -sf -X POST -H "Authorization: Bearer $key" --data-binary @benches/reference/hello.js \
  "http://127.0.0.1:$port/admin/v1/functions/hello/versions" > /dev/null
curl -sf -X PUT -H "Authorization: Bearer $key" -H 'content-type: application/json' -d '{"policy": {"type": "public"}}' \
  "http://127.0.0.1:$port/admin/v1/functions/hello/access" > /dev/null

# <requests> hello-world requests over 4 keep-alive connections.
load() {
  python3 - "$port" "$1" <<'EOF'
import http.client, sys, threading
port, total = int(sys.argv[1]), int(sys.argv[2])
def connection(count):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for _ in range(count):
        c.request("GET", "/functions/v1/hello")
        reply = c.getresponse()
        reply.read()
        if reply.status != 200:
            sys.exit(f"status {reply.status}")
threads = [threading.Thread(target=connection, args=(total // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
EOF
}
load 200
sleep 2
callgrind_control -i on "$server" > /dev/null
load "$requests"
# The record writer's and the exporter's last batches.
sleep 3
callgrind_control -i off "$server" > /dev/null
callgrind_control -d "$server" > /dev/null
# The dump is written by the server's next scheduled thread: wait for it.
for _ in $(seq 600); do grep -qs "^totals:" "$work"/callgrind.out.* && break; sleep 0.1; done
total=$(cat "$work"/callgrind.out.* | awk '/^totals:/ {s += $2} END {print s}')
[ -z "${CALLGRIND_OUT:-}" ] || cat "$work"/callgrind.out.* > "$CALLGRIND_OUT"
counted=$((requests / 4 * 4))
echo "$bin $*"
awk -v t="$total" -v n="$counted" 'BEGIN { printf "%d requests, %.0f instructions per request\n", n, t / n }'
