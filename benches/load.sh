#!/usr/bin/env bash
# Load benchmarks against the real server, each side by side with its
# reference in the same run (this machine is shared and noisy: compare ratios).
#   throughput: hello world, 32 connections, edgefn vs workerd vs a bare axum handler,
#               and edgefn's authenticated hello world vs its public one
#   deploy:     upload of a 10 KB function to its first successful response
#   memory:     resident memory per warm function; cost of a cold one
# Usage: benches/load.sh [seconds per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
scripts/install-deps
for tool in wrk npm; do
  command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool"; }
done
(cd benches/reference && npm ci --no-audit --no-fund --silent)
cargo build --release --locked -p edgefn-host -p edgefn-benches --bins

key=efk_load_benchmark_admin_key_0123456789
source benches/common.sh

start_edgefn() {
  EDGEFN_BOOTSTRAP_ADMIN_KEY=$key EDGEFN_LOG=warn ./target/release/edgefn --listen 127.0.0.1:18090 \
    --data-dir "$work/data" --cache-dir target/bench-engine-cache > "$work/edgefn.log" 2>&1 &
  edgefn_pid=$!
  pids+=("$edgefn_pid")
  for _ in $(seq 200); do grep -q "listening" "$work/edgefn.log" && return; sleep 0.1; done
  cat "$work/edgefn.log"; exit 1
}
stop_edgefn() { kill "$edgefn_pid"; wait "$edgefn_pid" 2>/dev/null || true; }

# wrk's summary: "<requests/s> <p99 ms>"
measure() {
  wrk -t2 -c32 -d"${duration}s" --latency "$@" > "$work/wrk.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$work/wrk.txt")
  if grep -q "Non-2xx" "$work/wrk.txt"; then echo "non-2xx responses from $1" >&2; cat "$work/wrk.txt" >&2; exit 1; fi
  echo "$rps $p99"
}

admin() { curl -sf -H "Authorization: Bearer $key" -H "content-type: application/json" "$@"; }

start_edgefn
# The same hello world twice: public, and `authenticated` (the default)
# called with a signed-in user's access token.
for name in hello hello-auth; do
  curl -sf -X POST -H "Authorization: Bearer $key" --data-binary @benches/reference/hello.js \
    "http://127.0.0.1:18090/admin/v1/functions/$name/versions" > /dev/null
done
admin -X PUT -d '{"policy": {"type": "public"}}' http://127.0.0.1:18090/admin/v1/functions/hello/access > /dev/null
admin -X POST -d '{"email": "bench@example.com", "password": "load benchmark password"}' http://127.0.0.1:18090/admin/v1/users > /dev/null
token=$(curl -sf -d '{"email": "bench@example.com", "password": "load benchmark password"}' -H "content-type: application/json" \
  "http://127.0.0.1:18090/auth/v1/token?grant_type=password" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "signing in the benchmark user failed" >&2; exit 1; }
curl -sf http://127.0.0.1:18090/functions/v1/hello > /dev/null
curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:18090/functions/v1/hello-auth > /dev/null
# Public and authenticated in ABBA order, each pair averaged, so a drift of
# the machine during the run does not favour either; the pauses let the
# record writer finish the previous run's batch.
public() { measure http://127.0.0.1:18090/functions/v1/hello; }
authenticated() { measure http://127.0.0.1:18090/functions/v1/hello-auth -H "Authorization: Bearer $token"; }
read -r public1_rps public1_p99 < <(public); sleep 3
read -r auth1_rps auth1_p99 < <(authenticated); sleep 3
read -r auth2_rps auth2_p99 < <(authenticated); sleep 3
read -r public2_rps public2_p99 < <(public)
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
edgefn_rps=$(mean "$public1_rps" "$public2_rps"); edgefn_p99=$(mean "$public1_p99" "$public2_p99")
auth_rps=$(mean "$auth1_rps" "$auth2_rps"); auth_p99=$(mean "$auth1_p99" "$auth2_p99")

(cd benches/reference && exec ./node_modules/.bin/workerd serve workerd.capnp > "$work/workerd.log" 2>&1) &
pids+=("$!")
for _ in $(seq 100); do curl -sf http://127.0.0.1:18091/ > /dev/null && break; sleep 0.1; done
read -r workerd_rps workerd_p99 < <(measure http://127.0.0.1:18091/)

./target/release/bare_axum 127.0.0.1:18092 > /dev/null &
pids+=("$!")
for _ in $(seq 100); do curl -sf http://127.0.0.1:18092/x > /dev/null && break; sleep 0.1; done
read -r axum_rps axum_p99 < <(measure http://127.0.0.1:18092/functions/v1/hello)

echo "== throughput: hello world, wrk -t2 -c32 -d${duration}s, same machine, same run"
printf "%-22s %12s %10s\n" "server" "requests/s" "p99 ms"
printf "%-22s %12s %10s\n" "edgefn" "$edgefn_rps" "$edgefn_p99"
printf "%-22s %12s %10s\n" "edgefn, authenticated" "$auth_rps" "$auth_p99"
printf "%-22s %12s %10s\n" "workerd" "$workerd_rps" "$workerd_p99"
printf "%-22s %12s %10s\n" "bare axum (ceiling)" "$axum_rps" "$axum_p99"
awk -v e="$edgefn_rps" -v w="$workerd_rps" -v a="$axum_rps" -v ep="$edgefn_p99" -v wp="$workerd_p99" 'BEGIN {
  printf "edgefn / workerd throughput: %.2fx   p99 edgefn / workerd: %.2fx   edgefn / bare axum: %.2fx\n", e / w, ep / wp, e / a }'
awk -v e="$edgefn_rps" -v t="$auth_rps" 'BEGIN { printf "authenticated / public throughput: %.2fx (means of two runs each, ABBA order)\n", t / e }'

echo "== deploy"
./target/release/deploy_latency http://127.0.0.1:18090 "$key" 40

echo "== memory"
# A fresh process: after the load test the allocator holds freed memory that
# new functions would reuse, hiding their cost.
stop_edgefn
rm -rf "$work/data"
start_edgefn
./target/release/warm_memory http://127.0.0.1:18090 "$key" "$edgefn_pid" 2000
stop_edgefn
start_edgefn
./target/release/warm_memory http://127.0.0.1:18090 "$key" "$edgefn_pid" 0
