#!/usr/bin/env bash
# What each part of hello world costs, in Wasm instructions: a ladder of
# modules from the empty handler up to hello world, each deployed to a real
# edgefn and called three times; prints the fuel of its last call (from the
# execution record) and what it adds over the rung before. Fuel counts the
# guest's Wasm instructions, so the figures are the same on any machine,
# however busy, for one build of the engine.
# Usage: benches/fuel_ladder.sh
set -euo pipefail
cd "$(dirname "$0")/.."
key=efk_fuel_ladder_benchmark_key_0123456789
port=18099
source benches/common.sh
install_and_build

start_edgefn_server "$port" ladder
base=http://127.0.0.1:$port

# fuel <name> <source>: the fuel of the third call of <source>, deployed as <name>.
fuel() {
  deploy_public "$port" "$1" "$2"
  local id
  for _ in 1 2 3; do
    id=$(curl -sf -D - -o /dev/null "$base/functions/v1/$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-edgefn-invocation-id" {print $2}')
  done
  # Records are written in batches: wait for this one.
  for _ in $(seq 50); do
    curl -sf -H "Authorization: Bearer $key" "$base/admin/v1/executions/$id" > "$work/record.json" && break
    sleep 0.1
  done
  sed -n 's/.*"fuel_consumed":\([0-9]*\).*/\1/p' "$work/record.json"
}

# Each rung adds one thing to the one before; the last is hello world.
names=(empty text header hello)
sources=(
  "$(cat benches/reference/empty.js)"
  'export default { fetch() { return new Response("Hello, world!\n"); } };'
  'export default { fetch() { return new Response("Hello, world!\n", { headers: { "content-type": "text/plain" } }); } };'
  "$(cat benches/reference/hello.js)"
)
added_by=(
  "the empty handler (benches/reference/empty.js)"
  "a string body"
  "a content-type header"
  "async: hello world (benches/reference/hello.js)"
)
printf "%-8s %10s %10s  %s\n" rung fuel added "what the rung adds"
previous=""
for i in "${!names[@]}"; do
  value=$(fuel "${names[$i]}" "${sources[$i]}")
  [ -n "$value" ] || { echo "no fuel recorded for ${names[$i]}" >&2; exit 1; }
  added=""
  [ -n "$previous" ] && added=$((value - previous))
  printf "%-8s %10s %10s  %s\n" "${names[$i]}" "$value" "$added" "${added_by[$i]}"
  previous=$value
done
