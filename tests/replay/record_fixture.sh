#!/usr/bin/env bash
# Records tests/replay/mixed-600.ndjson from the real running system: starts the broker and the
# five services (scripts/run.sh) on a fresh data dir with tests/replay/inventory.json, places
# 600 orders from 4 concurrent curl clients (a seeded mix of items, amounts up to 8000.99 and
# quantities 1-3, a few for an unknown item), waits for every order to finish, and exports the
# log with `broker export`. Usage: tests/replay/record_fixture.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${1:-build}
data=$(mktemp -d /tmp/op-record-XXXXXX)
port=${OP_HTTP_PORT:-5000}
out=tests/replay/mixed-600.ndjson

cp tests/replay/inventory.json "$data/inventory.json"
OP_DATA_DIR=$data OP_INITIAL_STOCK=$data/inventory.json scripts/run.sh "$build" >"$data/run.log" 2>&1 &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done

items=(phone phone phone laptop laptop headphones headphones tablet camera gizmo)
client() {
    RANDOM=$1
    for _ in $(seq 150); do
        local item=${items[RANDOM % ${#items[@]}]}
        local amount="$((RANDOM % 8000 + 1)).$(printf '%02d' $((RANDOM % 100)))"
        local quantity=$((RANDOM % 3 + 1))
        curl -s -X POST "localhost:$port/place-order" -H 'Content-Type: application/json' \
            -d "{\"item\":\"$item\",\"amount\":$amount,\"quantity\":$quantity,\"customer\":\"c$1\"}" >/dev/null
    done
}
for seed in 11 22 33 44; do client $seed & done
wait %2 %3 %4 %5 2>/dev/null || true
for _ in $(seq 100); do
    total=$(curl -s "localhost:$port/orders?limit=1" | grep -o '"total":[0-9]*' | cut -d: -f2)
    [ "${total:-0}" -ge 600 ] && break
    sleep 0.1
done
# Wait until nothing moves: the head stops growing.
prev=-1
for _ in $(seq 100); do
    head=$(curl -s "localhost:$port/healthz" | grep -o '"broker_head":[0-9]*' | cut -d: -f2)
    [ "$head" = "$prev" ] && break
    prev=$head
    sleep 0.3
done
"$build/bin/broker" export -o "$out"
echo "recorded $(wc -l <"$out") events of $(grep -c '"type":"OrderPlaced"' "$out") orders into $out"
