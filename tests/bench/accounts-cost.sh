#!/usr/bin/env bash
# The cost of accounting per request: llmux with the local mock model, auth and
# recording off versus on (SQLite durable / non-durable, PostgreSQL durable,
# Redis rate limits when LLMUX_TEST_PG / LLMUX_TEST_REDIS are set), measured
# with tests/bench/loadgen.c on 127.0.0.1. Bounded: a few seconds per run.
#   tests/bench/accounts-cost.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DUR=${DUR:-4}
WORK=$(mktemp -d /tmp/llmux-acct-cost.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
for f in api http llhttp; do cc -O2 -c -w -I/usr/share/include/llhttp /usr/share/llhttp/$f.c -o "$WORK/llhttp_$f.o"; done
cc -O2 -I/usr/share/include/llhttp -o "$WORK/loadgen" tests/bench/loadgen.c "$WORK"/llhttp_*.o -luv -lpthread -lm
PORT=$((20000 + RANDOM % 20000))
BODY='{"model":"mock/echo","messages":[{"role":"user","content":"hello there, how are you today"}]}'

config() { # name storage auth redis
  cat >"$WORK/$1.lua" <<LUA
plugin_dir = "$PWD/$BUILD/plugins"
log = { level = "warn", access = "off" }
auth = "$3"
storage = $2
${4:+redis = \"$4\"}
management_key = "bench-mgmt"
providers = { mock = { plugin = "mock", name = "Mock" } }
models = { { id = "mock/echo", endpoints = { { provider = "mock", model = "echo",
  pricing = { prompt = 0.0000001, completion = 0.0000002 }, context_length = 8192, max_completion_tokens = 256 } } } }
LUA
}

run() { # name storage auth redis
  config "$@"
  local port=$((PORT++))
  "$BUILD/llmux" --config "$WORK/$1.lua" --listen 127.0.0.1:$port --workers 2 >"$WORK/$1.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
  local hdr=()
  if [ "$3" = keys ]; then
    local key
    key=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/keys" -H 'authorization: Bearer bench-mgmt' \
      -d '{"name":"bench","limit":1000000,"rate_limit":{"requests":1000000000,"interval_s":60}}' |
      sed -E 's/.*"key":"([^"]+)".*/\1/')
    hdr=(-H "Authorization: Bearer $key")
  fi
  for c in 1 16; do
    "$WORK/loadgen" loop --url "http://127.0.0.1:$port/api/v1/chat/completions" --body "$BODY" "${hdr[@]}" \
      -H 'Content-Type: application/json' --concurrency $c --duration "$DUR" --warmup 1 |
      python3 -c "import json,sys; j=json.load(sys.stdin); print(f'$1 c=$c: rps={j[\"rps\"]:.0f} p50={j[\"lat_p50_us\"]:.0f}us p99={j[\"lat_p99_us\"]:.0f}us errors={j[\"status_errors\"]+j[\"conn_errors\"]}')"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run off false none
run sqlite-durable "{ sqlite = \"$WORK/d.db\" }" keys
run sqlite-nondurable "{ sqlite = \"$WORK/n.db\", durable = false }" keys
if [ -n "${LLMUX_TEST_PG:-}" ]; then
  run pg-durable "{ postgres = \"$LLMUX_TEST_PG\" }" keys
  [ -n "${LLMUX_TEST_REDIS:-}" ] && run pg-durable+redis "{ postgres = \"$LLMUX_TEST_PG\" }" keys "$LLMUX_TEST_REDIS"
fi
