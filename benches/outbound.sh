#!/usr/bin/env bash
# Outbound fetch: whether fetches awaited together overlap (5 sequential vs
# 5 with Promise.all against an upstream that answers after 100 ms), and what
# an invocation that fetches costs over the bare request, in one run.
# Usage: benches/outbound.sh [rounds, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
scripts/install-deps
cargo build --release --locked -p edgefn-host -p edgefn-benches --bins

key=efk_outbound_benchmark_admin_key_0123456789
source benches/common.sh

# The benchmark's upstream listens on loopback, which functions may reach
# only when the operator allows it.
EDGEFN_BOOTSTRAP_ADMIN_KEY=$key EDGEFN_LOG=warn ./target/release/edgefn --listen 127.0.0.1:18092 \
  --data-dir "$work/data" --cache-dir target/bench-engine-cache --egress-allow-internal 127.0.0.1 > "$work/edgefn.log" 2>&1 &
pids+=("$!")
for _ in $(seq 200); do grep -q "listening" "$work/edgefn.log" && break; sleep 0.1; done
grep -q "listening" "$work/edgefn.log" || { cat "$work/edgefn.log"; exit 1; }

./target/release/fetch_overlap http://127.0.0.1:18092 "$key" "$rounds" 100
