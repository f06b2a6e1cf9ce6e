#!/usr/bin/env bash
# Load benchmarks against the real server, each side by side with its
# reference in the same run (this machine is shared and noisy: compare ratios).
#   throughput: hello world, 32 connections, edgefn vs workerd vs a bare axum handler,
#               and edgefn vs workerd head to head in ABBA order,
#               and vs the sandbox alone behind a bare axum handler,
#               and the floor: an empty handler in the sandbox alone vs workerd,
#               and edgefn's authenticated hello world vs its public one,
#               and edgefn with deferred writes off (--defer-writes false);
#               a small JSON API (URL, query, header, JSON body in and out),
#               edgefn vs workerd
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

# The main edgefn, which several functions and a signed-in user share.
start_edgefn() {
  start_edgefn_server 18090 data
  edgefn_pid=$pid_data
}
stop_edgefn() { kill "$edgefn_pid"; wait "$edgefn_pid" 2>/dev/null || true; }

# CPU time (user + system) a process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# "<requests/s> <p99 ms> <server CPU µs per request>" for one wrk run against
# the server with pid <pid>: measure <pid> <wrk arguments>. CPU per request
# moves much less than throughput when other work shares the machine.
measure() {
  local pid=$1; shift
  local before after requests
  before=$(cpu_ticks "$pid")
  wrk -t2 -c32 -d"${duration}s" --latency "$@" > "$work/wrk.txt"
  after=$(cpu_ticks "$pid")
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  local rps p99 cpu
  cpu=$(awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.1f", ticks / hz * 1e6 / n }')
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$work/wrk.txt")
  if grep -q "Non-2xx" "$work/wrk.txt"; then echo "non-2xx responses from $1" >&2; cat "$work/wrk.txt" >&2; exit 1; fi
  echo "$rps $p99 $cpu"
}

admin() { curl -sf -H "Authorization: Bearer $key" -H "content-type: application/json" "$@"; }

# Every server is measured warm: workerd's V8 compiles hot code only after it
# has run a while, and each of edgefn's pool slots is set up on first use.
warm_up() { wrk -t2 -c32 -d3s "$@" > /dev/null; }

start_edgefn
# The same hello world twice: public, and `authenticated` (the default)
# called with a signed-in user's access token.
for name in hello hello-auth; do
  curl -sf -X POST -H "Authorization: Bearer $key" --data-binary @benches/reference/hello.js \
    "http://127.0.0.1:18090/admin/v1/functions/$name/versions" > /dev/null
done
admin -X PUT -d '{"policy": {"type": "public"}}' http://127.0.0.1:18090/admin/v1/functions/hello/access > /dev/null
curl -sf -X POST -H "Authorization: Bearer $key" --data-binary @benches/reference/api.js \
  "http://127.0.0.1:18090/admin/v1/functions/api/versions" > /dev/null
admin -X PUT -d '{"policy": {"type": "public"}}' http://127.0.0.1:18090/admin/v1/functions/api/access > /dev/null
admin -X POST -d '{"email": "bench@example.com", "password": "load benchmark password"}' http://127.0.0.1:18090/admin/v1/users > /dev/null
token=$(curl -sf -d '{"email": "bench@example.com", "password": "load benchmark password"}' -H "content-type: application/json" \
  "http://127.0.0.1:18090/auth/v1/token?grant_type=password" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "signing in the benchmark user failed" >&2; exit 1; }
curl -sf http://127.0.0.1:18090/functions/v1/hello > /dev/null
curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:18090/functions/v1/hello-auth > /dev/null
warm_up http://127.0.0.1:18090/functions/v1/hello
warm_up http://127.0.0.1:18090/functions/v1/hello-auth -H "Authorization: Bearer $token"
sleep 3
# Public and authenticated in ABBA order, each pair averaged, so a drift of
# the machine during the run does not favour either; the pauses let the
# record writer finish the previous run's batch.
public() { measure "$edgefn_pid" http://127.0.0.1:18090/functions/v1/hello; }
authenticated() { measure "$edgefn_pid" http://127.0.0.1:18090/functions/v1/hello-auth -H "Authorization: Bearer $token"; }
read -r public1_rps public1_p99 public1_cpu < <(public); sleep 3
read -r auth1_rps auth1_p99 auth1_cpu < <(authenticated); sleep 3
read -r auth2_rps auth2_p99 auth2_cpu < <(authenticated); sleep 3
read -r public2_rps public2_p99 public2_cpu < <(public)
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
edgefn_rps=$(mean "$public1_rps" "$public2_rps"); edgefn_p99=$(mean "$public1_p99" "$public2_p99")
auth_rps=$(mean "$auth1_rps" "$auth2_rps"); auth_p99=$(mean "$auth1_p99" "$auth2_p99")
edgefn_cpu=$(mean "$public1_cpu" "$public2_cpu"); auth_cpu=$(mean "$auth1_cpu" "$auth2_cpu")
# What deferring writes saves (host/src/connection.rs): the same hello world
# on a second edgefn with it off, against the first, in ABBA order.
start_hello_server 18097 undeferred --defer-writes false
warm_up http://127.0.0.1:18097/functions/v1/hello
sleep 3
undeferred() { measure "$pid_undeferred" http://127.0.0.1:18097/functions/v1/hello; }
read -r deferred1_rps _ deferred1_cpu < <(public); sleep 3
read -r undeferred1_rps _ undeferred1_cpu < <(undeferred); sleep 3
read -r undeferred2_rps _ undeferred2_cpu < <(undeferred); sleep 3
read -r deferred2_rps _ deferred2_cpu < <(public)
kill "$pid_undeferred"
# The JSON API: POST /items?tag=new with a JSON body (benches/reference/api-post.lua).
api_post=(-s benches/reference/api-post.lua)
sleep 3
warm_up "${api_post[@]}" "http://127.0.0.1:18090/functions/v1/api/items?tag=new"
sleep 3
read -r api_rps api_p99 api_cpu < <(measure "$edgefn_pid" "${api_post[@]}" "http://127.0.0.1:18090/functions/v1/api/items?tag=new")

(cd benches/reference && exec ./node_modules/.bin/workerd serve workerd.capnp > "$work/workerd.log" 2>&1) &
workerd_pid=$!
pids+=("$workerd_pid")
for _ in $(seq 100); do curl -sf http://127.0.0.1:18091/ > /dev/null && break; sleep 0.1; done
warm_up http://127.0.0.1:18091/
warm_up "${api_post[@]}" "http://127.0.0.1:18093/items?tag=new"
read -r workerd_rps workerd_p99 workerd_cpu < <(measure "$workerd_pid" http://127.0.0.1:18091/)
read -r workerd_api_rps workerd_api_p99 workerd_api_cpu < <(measure "$workerd_pid" "${api_post[@]}" "http://127.0.0.1:18093/items?tag=new")

start_bench_server bare_axum 127.0.0.1:18092
axum_pid=$server_pid
warm_up http://127.0.0.1:18092/functions/v1/hello
read -r axum_rps axum_p99 axum_cpu < <(measure "$axum_pid" http://127.0.0.1:18092/functions/v1/hello)

# The sandbox alone: the same hello world in a fresh instance per request,
# behind a bare axum handler and nothing else (benches/src/bin/sandbox_axum.rs).
# What edgefn would reach if everything it does around the sandbox were free.
start_bench_server sandbox_axum 127.0.0.1:18094
sandbox_pid=$server_pid
warm_up http://127.0.0.1:18094/functions/v1/hello
read -r sandbox_rps sandbox_p99 sandbox_cpu < <(measure "$sandbox_pid" http://127.0.0.1:18094/functions/v1/hello)

# The floor under any function: an empty handler (benches/reference/empty.js,
# the criterion bench's) in the sandbox alone, against workerd's hello world,
# in ABBA order. Whatever hello world adds to it, and whatever edgefn adds
# around the sandbox, can only lower edgefn's ratio from there.
start_bench_server sandbox_axum 127.0.0.1:18098 benches/reference/empty.js
empty_pid=$server_pid
warm_up http://127.0.0.1:18098/functions/v1/empty
read -r floor_w1_rps _ floor_w1_cpu < <(measure "$workerd_pid" http://127.0.0.1:18091/); sleep 1
read -r floor_e1_rps _ floor_e1_cpu < <(measure "$empty_pid" http://127.0.0.1:18098/functions/v1/empty); sleep 1
read -r floor_e2_rps _ floor_e2_cpu < <(measure "$empty_pid" http://127.0.0.1:18098/functions/v1/empty); sleep 1
read -r floor_w2_rps _ floor_w2_cpu < <(measure "$workerd_pid" http://127.0.0.1:18091/)

# Hello world head to head, edgefn against workerd in ABBA order: the
# ratio the issue sets its floor on, less moved by the machine's drift than
# the runs above, each of which has a slot of its own.
read -r h2h_w1_rps h2h_w1_p99 h2h_w1_cpu < <(measure "$workerd_pid" http://127.0.0.1:18091/); sleep 1
read -r h2h_e1_rps h2h_e1_p99 h2h_e1_cpu < <(public); sleep 3
read -r h2h_e2_rps h2h_e2_p99 h2h_e2_cpu < <(public); sleep 1
read -r h2h_w2_rps h2h_w2_p99 h2h_w2_cpu < <(measure "$workerd_pid" http://127.0.0.1:18091/)

echo "== throughput: hello world, wrk -t2 -c32 -d${duration}s, same machine, same run"
printf "%-22s %12s %10s %16s\n" "server" "requests/s" "p99 ms" "CPU µs/request"
printf "%-22s %12s %10s %16s\n" "edgefn" "$edgefn_rps" "$edgefn_p99" "$edgefn_cpu"
printf "%-22s %12s %10s %16s\n" "edgefn, authenticated" "$auth_rps" "$auth_p99" "$auth_cpu"
printf "%-22s %12s %10s %16s\n" "workerd" "$workerd_rps" "$workerd_p99" "$workerd_cpu"
printf "%-22s %12s %10s %16s\n" "sandbox behind axum" "$sandbox_rps" "$sandbox_p99" "$sandbox_cpu"
printf "%-22s %12s %10s %16s\n" "bare axum (ceiling)" "$axum_rps" "$axum_p99" "$axum_cpu"
awk -v e="$edgefn_rps" -v w="$workerd_rps" -v a="$axum_rps" -v ep="$edgefn_p99" -v wp="$workerd_p99" 'BEGIN {
  printf "edgefn / workerd throughput: %.2fx   p99 edgefn / workerd: %.2fx   edgefn / bare axum: %.2fx\n", e / w, ep / wp, e / a }'
# The server's own CPU per request, which other work on the machine moves
# much less than throughput (workerd serves on one thread, edgefn on two).
awk -v e="$edgefn_cpu" -v w="$workerd_cpu" 'BEGIN { printf "CPU per request, workerd / edgefn: %.2fx\n", w / e }'
# How far edgefn could get if all it does around the sandbox cost nothing.
# (What it adds is better read with both loaded at once: benches/README.md.)
awk -v s="$sandbox_rps" -v w="$workerd_rps" 'BEGIN { printf "sandbox behind axum / workerd throughput: %.2fx\n", s / w }'
awk -v w1="$floor_w1_rps" -v w2="$floor_w2_rps" -v e1="$floor_e1_rps" -v e2="$floor_e2_rps" \
  -v wc1="$floor_w1_cpu" -v wc2="$floor_w2_cpu" -v ec1="$floor_e1_cpu" -v ec2="$floor_e2_cpu" 'BEGIN {
  printf "the floor: an empty handler in the sandbox alone, %.0f req/s at %.1f µs CPU, / workerd hello world, %.0f req/s at %.1f µs: %.2fx (ABBA)\n",
    (e1 + e2) / 2, (ec1 + ec2) / 2, (w1 + w2) / 2, (wc1 + wc2) / 2, (e1 + e2) / (w1 + w2) }'
awk -v w1="$h2h_w1_rps" -v w2="$h2h_w2_rps" -v e1="$h2h_e1_rps" -v e2="$h2h_e2_rps" \
  -v wc1="$h2h_w1_cpu" -v wc2="$h2h_w2_cpu" -v ec1="$h2h_e1_cpu" -v ec2="$h2h_e2_cpu" \
  -v wp1="$h2h_w1_p99" -v wp2="$h2h_w2_p99" -v ep1="$h2h_e1_p99" -v ep2="$h2h_e2_p99" 'BEGIN {
  printf "head to head: edgefn hello world, %.0f req/s at %.1f µs CPU, p99 %.2f ms, / workerd, %.0f req/s at %.1f µs, p99 %.2f ms: %.2fx, p99 %.2fx (ABBA)\n",
    (e1 + e2) / 2, (ec1 + ec2) / 2, (ep1 + ep2) / 2, (w1 + w2) / 2, (wc1 + wc2) / 2, (wp1 + wp2) / 2, (e1 + e2) / (w1 + w2), (ep1 + ep2) / (wp1 + wp2) }'
awk -v e="$edgefn_rps" -v t="$auth_rps" -v ec="$edgefn_cpu" -v tc="$auth_cpu" 'BEGIN {
  printf "authenticated / public throughput: %.2fx, CPU per request public / authenticated: %.2fx (means of two runs each, ABBA order)\n", t / e, ec / tc }'

awk -v d1="$deferred1_rps" -v d2="$deferred2_rps" -v u1="$undeferred1_rps" -v u2="$undeferred2_rps" \
  -v dc1="$deferred1_cpu" -v dc2="$deferred2_cpu" -v uc1="$undeferred1_cpu" -v uc2="$undeferred2_cpu" 'BEGIN {
  printf "deferred writes on, %.0f req/s at %.1f µs CPU, / off (--defer-writes false), %.0f req/s at %.1f µs: %.2fx (ABBA)\n",
    (d1 + d2) / 2, (dc1 + dc2) / 2, (u1 + u2) / 2, (uc1 + uc2) / 2, (d1 + d2) / (u1 + u2) }'

echo "== throughput: a small JSON API (benches/reference/api.js), wrk -t2 -c32 -d${duration}s, same run"
printf "%-22s %12s %10s %16s\n" "server" "requests/s" "p99 ms" "CPU µs/request"
printf "%-22s %12s %10s %16s\n" "edgefn" "$api_rps" "$api_p99" "$api_cpu"
printf "%-22s %12s %10s %16s\n" "workerd" "$workerd_api_rps" "$workerd_api_p99" "$workerd_api_cpu"
awk -v e="$api_rps" -v w="$workerd_api_rps" -v ep="$api_p99" -v wp="$workerd_api_p99" -v ec="$api_cpu" -v wc="$workerd_api_cpu" 'BEGIN {
  printf "edgefn / workerd throughput: %.2fx   p99 edgefn / workerd: %.2fx   CPU per request, workerd / edgefn: %.2fx\n", e / w, ep / wp, wc / ec }'

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
