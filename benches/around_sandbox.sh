#!/usr/bin/env bash
# What edgefn costs around its sandbox: hello world in edgefn, in edgefn with
# execution records off, and in the sandbox alone behind a bare axum handler
# (benches/src/bin/sandbox_axum.rs), all three loaded at the same time (one
# wrk -t1 -c16 each), so that whatever else runs on the machine meanwhile
# slows all three alike. Prints each server's CPU per request, round by
# round, and what edgefn adds to the sandbox alone. Throughput is not
# compared: the servers share the cores by the scheduler's choice.
# Usage: benches/around_sandbox.sh [seconds per round, default 5] [rounds, default 4]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
rounds="${2:-4}"

key=efk_around_sandbox_benchmark_key_0123456789
source benches/common.sh
install_and_build

start_hello_server 18100 edgefn
start_hello_server 18101 norecords --record-executions false
start_bench_server sandbox_axum 127.0.0.1:18102
pid_sandbox=$server_pid

labels=(edgefn norecords sandbox)
url() { case $1 in edgefn) echo http://127.0.0.1:18100/functions/v1/hello ;; norecords) echo http://127.0.0.1:18101/functions/v1/hello ;;
  sandbox) echo http://127.0.0.1:18102/functions/v1/hello ;; esac; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pid_of() { eval "echo \$pid_$1"; }

# Warm: each pool slot is set up on first use, and edgefn's record database
# grows from nothing in its first seconds.
for label in "${labels[@]}"; do wrk -t2 -c32 -d3s "$(url "$label")" > /dev/null; done
sleep 3

: > "$work/rounds.txt"
for round in $(seq "$rounds"); do
  declare -A before
  for label in "${labels[@]}"; do before[$label]=$(cpu_ticks "$(pid_of "$label")"); done
  waits=()
  for label in "${labels[@]}"; do
    wrk -t1 -c16 -d"${duration}s" "$(url "$label")" > "$work/wrk-$label.txt" &
    waits+=("$!")
  done
  wait "${waits[@]}"
  # The record writer's last batch belongs to the round too.
  sleep 3
  line="$round"
  for label in "${labels[@]}"; do
    if grep -q "Non-2xx" "$work/wrk-$label.txt"; then cat "$work/wrk-$label.txt" >&2; exit 1; fi
    line="$line $(( $(cpu_ticks "$(pid_of "$label")") - before[$label] )) $(awk '/requests in/ {print $1}' "$work/wrk-$label.txt")"
  done
  echo "$line" >> "$work/rounds.txt"
done

echo "== hello world, all three at once, wrk -t1 -c16 -d${duration}s on each, $rounds rounds: CPU µs per request"
awk -v hz="$(getconf CLK_TCK)" '
  { e = $2 / hz * 1e6 / $3; n = $4 / hz * 1e6 / $5; s = $6 / hz * 1e6 / $7
    te += e; tn += n; ts += s; above += e > s
    printf "round %d: edgefn %.1f, edgefn without records %.1f, sandbox alone %.1f\n", $1, e, n, s }
  END {
    printf "edgefn adds %.1f µs per request to the sandbox alone (%.0f%%; above it in %d of %d rounds), %.1f µs of it the execution record\n",
      (te - ts) / NR, (te - ts) / ts * 100, above, NR, (te - tn) / NR }' "$work/rounds.txt"
