#!/usr/bin/env bash
# llmux benchmark: the same mock upstream reached directly, through llmux, through
# nginx proxy_pass (the floor of any proxy) and through a peer gateway from npm
# (@portkey-ai/gateway), side by side in one run. See tests/bench/README.md.
#
#   bash tests/bench/run.sh [--quick] [--no-peer] [--no-callgrind] [--keep]
#
# Env: BUILD (default build), LLMUX (default $BUILD/llmux), BENCH_PORT_BASE (18400),
#      LLMUX_BENCH_KEY (sent as "Authorization: Bearer ..." to llmux if set),
#      BENCH_STREAMS (SSE streams to ramp to, default 10000, capped by the fd limit).
# All traffic goes to 127.0.0.1; every load stops by itself; a trap ends every
# process this script started (by pid) when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/tests/bench
BUILD=${BUILD:-$ROOT/build}
LLMUX=${LLMUX:-$BUILD/llmux}
RESULTS=$BENCH/results
PEER_PKG=@portkey-ai/gateway
PEER_VERSION=1.15.2
PEER_DIR=${PEER_DIR:-$BENCH/.peer}

QUICK=0 NO_PEER=0 NO_CG=0 KEEP=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    --no-peer) NO_PEER=1 ;;
    --no-callgrind) NO_CG=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

# --- durations -----------------------------------------------------------------
if ((QUICK)); then
  ROUNDS=1 LAT_S=2 RPS_S=2 CAP_S=2 WARM_S=0.5 STREAMS_WANTED=${BENCH_STREAMS:-1000} RATE=1000 HOLD_S=2 CG_N=300
else
  ROUNDS=3 LAT_S=3 RPS_S=10 CAP_S=5 WARM_S=1 STREAMS_WANTED=${BENCH_STREAMS:-10000} RATE=2500 HOLD_S=3 CG_N=2000
fi
CG_WARM=200

# --- CPU layout (2 cores) ----------------------------------------------------------
# Latency at concurrency 1: load generator, mock and gateway all on one core. A
# request is a strict hand-off chain, so nothing runs in parallel anyway, and on this
# VM a wake-up across cores sometimes costs milliseconds, which would drown the
# microseconds we measure. Throughput and held streams: the gateway alone on one core,
# the load generator and the mocks on the other.
CPU_LAT=1 CPU_GW=1 CPU_LOAD=0
if [[ $(nproc) -lt 2 ]]; then CPU_LAT=0 CPU_GW=0 CPU_LOAD=0; fi

cd "$ROOT" # llmux resolves relative paths (routing script) from here
TMP=$(mktemp -d /tmp/llmux-bench.XXXXXX)
BIN=$TMP/bin RES=$TMP/res LOG=$TMP/log
mkdir -p "$BIN" "$RES" "$LOG" "$RESULTS"

declare -A PID=()      # name -> pid of every background process we started
declare -A UNAVAIL=()  # target -> reason it is not measured
T_START=$(date +%s)

say() { printf '[bench %3ds] %s\n' $(($(date +%s) - T_START)) "$*" >&2; }

cleanup() {
  local rc=$?
  local p
  for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if ((KEEP)); then say "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CPU CMD... : runs CMD in the background on CPU, logs to $LOG/NAME.log
start() {
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" >"$LOG/$name.log" 2>&1 &
  PID[$name]=$!
}
stop() {
  local name=$1 p=${PID[$1]:-}
  [[ -n $p ]] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "PID[$name]"
}
alive() { kill -0 "${PID[$1]:-0}" 2>/dev/null; }
repin() { taskset -a -p -c "$2" "${PID[$1]}" >/dev/null; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
NEXT_PORT=${BENCH_PORT_BASE:-18400}
PORT=0
new_port() { # sets PORT (no subshell, so the counter advances)
  while ! port_free "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

# wait_http URL SECONDS [NAME]: until GET URL answers 200 (or NAME died)
wait_http() {
  local url=$1 secs=$2 name=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null) == 200 ]] && return 0
    if [[ -n $name ]] && ! alive "$name"; then return 1; fi
    sleep 0.1
  done
  return 1
}

# --- dependencies ----------------------------------------------------------------------
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light)
command -v valgrind >/dev/null || ((NO_CG)) || need_pkgs+=(valgrind)
for p in libuv1-dev curl python3; do dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p"); done
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${need_pkgs[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >"$LOG/apt.log" 2>&1 ||
      { say "apt-get install failed, see below"; tail -5 "$LOG/apt.log" >&2; }
  else
    say "missing packages (run as root to install): ${need_pkgs[*]}"
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -f /usr/share/llhttp/llhttp.c && -f /usr/share/include/llhttp/llhttp.h ]] ||
  { say "llhttp sources missing (/usr/share/llhttp): install node-llhttp or libllhttp-dev"; exit 1; }

# --- build the tools -----------------------------------------------------------------------
say "building mock_upstream and loadgen"
CFLAGS_TOOLS="-O2 -g -std=c11 -Wall -Wextra -Werror -Wshadow -I/usr/share/include/llhttp"
for f in api http llhttp; do
  cc -O2 -w -I/usr/share/include/llhttp -c "/usr/share/llhttp/$f.c" -o "$BIN/llhttp_$f.o" &
done
wait
# shellcheck disable=SC2086
cc $CFLAGS_TOOLS -o "$BIN/mock_upstream" "$BENCH/mock_upstream.c" "$BIN"/llhttp_*.o -luv -lpthread
# shellcheck disable=SC2086
cc $CFLAGS_TOOLS -o "$BIN/loadgen" "$BENCH/loadgen.c" "$BIN"/llhttp_*.o -luv -lpthread -lm
LG=$BIN/loadgen

# --- limits -------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
# A proxied stream holds two sockets in the gateway (client + upstream); keep 1000
# spare for listeners and the idle keep-alive pools left by the earlier phases.
STREAMS=$STREAMS_WANTED
if ((STREAMS > (NOFILE - 1000) / 2)); then
  STREAMS=$(((NOFILE - 1000) / 2))
  say "open-file limit is $NOFILE (hard): ramping to $STREAMS streams instead of $STREAMS_WANTED"
fi

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average at start: $LOADAVG_START"

# --- mock upstreams -------------------------------------------------------------------------------
declare -A MOCK_PORT=()
for k in fast d20 slow; do new_port; MOCK_PORT[$k]=$PORT; done
MAXS=1500 # every server we start ends by itself after this many seconds
start mock_fast "$CPU_LOAD" "$BIN/mock_upstream" --port "${MOCK_PORT[fast]}" --chunks 8 --chunk-bytes 16 --max-seconds $MAXS
start mock_d20 "$CPU_LOAD" "$BIN/mock_upstream" --port "${MOCK_PORT[d20]}" --delay-ms 20 --max-seconds $MAXS
start mock_slow "$CPU_LOAD" "$BIN/mock_upstream" --port "${MOCK_PORT[slow]}" --chunks 3600 --chunk-bytes 16 \
  --stream-delay-ms 1000 --max-seconds $MAXS
for k in fast d20 slow; do
  wait_http "http://127.0.0.1:${MOCK_PORT[$k]}/health" 5 "mock_$k" || { say "mock_$k did not start"; cat "$LOG/mock_$k.log" >&2; exit 1; }
done

# --- targets ----------------------------------------------------------------------------------------
TARGETS=(direct llmux nginx peer)
declare -A GW_PORT=()

model_for() { # target kind
  if [[ $1 == llmux ]]; then
    case $2 in fast) echo bench/m ;; d20) echo bench/d20 ;; slow) echo bench/slow ;; esac
  else echo bench-model; fi
}
url_for() { # target kind
  case $1 in
    direct) echo "http://127.0.0.1:${MOCK_PORT[$2]}/v1/chat/completions" ;;
    llmux) echo "http://127.0.0.1:${GW_PORT[llmux]}/api/v1/chat/completions" ;;
    nginx) echo "http://127.0.0.1:${GW_PORT[nginx]}/$2/v1/chat/completions" ;;
    peer) echo "http://127.0.0.1:${GW_PORT[peer]}/v1/chat/completions" ;;
  esac
}
headers_for() { # target kind -> one header per line
  case $1 in
    peer) printf '%s\n' "x-portkey-provider: openai" "x-portkey-custom-host: http://127.0.0.1:${MOCK_PORT[$2]}/v1" \
      "Authorization: Bearer bench" ;;
    llmux) if [[ -n ${LLMUX_BENCH_KEY:-} ]]; then printf 'Authorization: Bearer %s\n' "$LLMUX_BENCH_KEY"; fi ;;
  esac
}
body_for() { # target kind stream(0|1)
  local s=""
  [[ $3 == 1 ]] && s=',"stream":true'
  printf '{"model":"%s","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16%s}' "$(model_for "$1" "$2")" "$s"
}
lg_args() { # target kind stream -> loadgen arguments, NUL separated
  local h
  printf '%s\0' --url "$(url_for "$1" "$2")" --body "$(body_for "$1" "$2" "$3")"
  while IFS= read -r h; do [[ -n $h ]] && printf '%s\0' -H "$h"; done < <(headers_for "$1" "$2")
}
# probe TARGET: one JSON and one SSE request must succeed
probe() {
  local t=$1 hdr=() h code
  while IFS= read -r h; do [[ -n $h ]] && hdr+=(-H "$h"); done < <(headers_for "$t" fast)
  code=$(curl -s -o "$TMP/probe.$t.json" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    "${hdr[@]}" -d "$(body_for "$t" fast 0)" "$(url_for "$t" fast)" || true)
  if [[ $code != 200 ]] || ! grep -q '"chat.completion"' "$TMP/probe.$t.json"; then
    UNAVAIL[$t]="probe: HTTP $code $(head -c 200 "$TMP/probe.$t.json" 2>/dev/null | tr -d '\n')"
    return 1
  fi
  code=$(curl -s -N -o "$TMP/probe.$t.sse" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    "${hdr[@]}" -d "$(body_for "$t" fast 1)" "$(url_for "$t" fast)" || true)
  if [[ $code != 200 ]] || ! grep -q '^data: \[DONE\]' "$TMP/probe.$t.sse"; then
    UNAVAIL[$t]="stream probe: HTTP $code $(head -c 200 "$TMP/probe.$t.sse" 2>/dev/null | tr -d '\n')"
    return 1
  fi
}

# llmux
write_llmux_config() { # file
  cat >"$1" <<EOF
-- generated by tests/bench/run.sh
listen = "127.0.0.1:${GW_PORT[llmux]}"
workers = 1
plugin_dir = "$BUILD/plugins"
plugin_cache_dir = "$TMP/plugin-cache"
log = { level = "warn", access = "off" }
storage = false  -- accounting off: the bench measures the proxy path (docs/accounts.md has its cost)
providers = {
  mock_fast = { plugin = "openai", name = "Bench mock", base_url = "http://127.0.0.1:${MOCK_PORT[fast]}/v1", api_key = "bench" },
  mock_d20  = { plugin = "openai", name = "Bench mock 20 ms", base_url = "http://127.0.0.1:${MOCK_PORT[d20]}/v1", api_key = "bench" },
  mock_slow = { plugin = "openai", name = "Bench slow stream", base_url = "http://127.0.0.1:${MOCK_PORT[slow]}/v1", api_key = "bench" },
}
models = {
  { id = "bench/m",    endpoints = { { provider = "mock_fast", model = "bench-model" } } },
  { id = "bench/d20",  endpoints = { { provider = "mock_d20",  model = "bench-model" } } },
  { id = "bench/slow", endpoints = { { provider = "mock_slow", model = "bench-model" } } },
}
EOF
}
new_port
GW_PORT[llmux]=$PORT
LLMUX_CFG=$TMP/llmux.lua
write_llmux_config "$LLMUX_CFG"
LLMUX_BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$(dirname "$LLMUX")/CMakeCache.txt" 2>/dev/null || true)
LLMUX_BUILD_TYPE=${LLMUX_BUILD_TYPE:-unknown}
if [[ -x $LLMUX && $LLMUX_BUILD_TYPE != Release && $LLMUX_BUILD_TYPE != RelWithDebInfo ]]; then
  say "warning: $LLMUX is a $LLMUX_BUILD_TYPE build; configure with -DCMAKE_BUILD_TYPE=Release for real figures"
fi
if [[ ! -x $LLMUX ]]; then
  UNAVAIL[llmux]="not built: $LLMUX is missing (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)"
  say "llmux: ${UNAVAIL[llmux]}"
else
  start llmux "$CPU_GW" "$LLMUX" --config "$LLMUX_CFG" --listen "127.0.0.1:${GW_PORT[llmux]}" --workers 1
  if ! wait_http "http://127.0.0.1:${GW_PORT[llmux]}/health" 15 llmux; then
    UNAVAIL[llmux]="did not start: $(tail -c 300 "$LOG/llmux.log" | tr '\n' ' ')"
  fi
fi

# nginx
new_port
GW_PORT[nginx]=$PORT
write_nginx_config() { # dir port
  mkdir -p "$1"
  sed -e "s#@PREFIX@#$1#g" -e "s#@NOFILE@#$NOFILE#g" -e "s#@PORT@#$2#g" \
    -e "s#@MOCK_FAST@#${MOCK_PORT[fast]}#g" -e "s#@MOCK_D20@#${MOCK_PORT[d20]}#g" \
    -e "s#@MOCK_SLOW@#${MOCK_PORT[slow]}#g" "$BENCH/nginx.conf.in" >"$1/nginx.conf"
}
if [[ ! -x $NGINX ]]; then
  UNAVAIL[nginx]="nginx is not installed"
else
  write_nginx_config "$TMP/nginx" "${GW_PORT[nginx]}"
  start nginx "$CPU_GW" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
  wait_http "http://127.0.0.1:${GW_PORT[nginx]}/health" 10 nginx ||
    UNAVAIL[nginx]="did not start: $(tail -c 300 "$TMP/nginx/error.log" "$LOG/nginx.log" 2>/dev/null | tr '\n' ' ')"
fi

# peer gateway from npm
new_port
GW_PORT[peer]=$PORT
PEER_MAIN=$PEER_DIR/node_modules/@portkey-ai/gateway/build/start-server.js
if ((NO_PEER)); then
  UNAVAIL[peer]="skipped (--no-peer)"
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  UNAVAIL[peer]="node/npm not installed"
else
  have=$(node -p "require('$PEER_DIR/node_modules/@portkey-ai/gateway/package.json').version" 2>/dev/null || true)
  if [[ $have != "$PEER_VERSION" ]]; then
    say "installing $PEER_PKG@$PEER_VERSION into $PEER_DIR"
    mkdir -p "$PEER_DIR"
    timeout 300 npm install --prefix "$PEER_DIR" --no-audit --no-fund --ignore-scripts --loglevel=error \
      "$PEER_PKG@$PEER_VERSION" >"$LOG/npm.log" 2>&1 || true
  fi
  if [[ ! -f $PEER_MAIN ]]; then
    UNAVAIL[peer]="npm install failed: $(tail -c 300 "$LOG/npm.log" 2>/dev/null | tr '\n' ' ')"
  else
    # peer_shim.mjs only makes the peer's SSE path work on Node 20 (see the file).
    start peer "$CPU_GW" node --import "$BENCH/peer_shim.mjs" "$PEER_MAIN" --port="${GW_PORT[peer]}" --headless
    for _ in $(seq 150); do
      (exec 3<>"/dev/tcp/127.0.0.1/${GW_PORT[peer]}") 2>/dev/null && break
      alive peer || break
      sleep 0.1
    done
    alive peer || UNAVAIL[peer]="did not start: $(tail -c 300 "$LOG/peer.log" | tr '\n' ' ')"
  fi
fi

# Probe each live target; record its idle RSS (after start-up and the probe).
declare -A IDLE_RSS=()
for t in "${TARGETS[@]}"; do
  [[ -n ${UNAVAIL[$t]:-} ]] && continue
  if probe "$t"; then
    [[ $t != direct ]] && IDLE_RSS[$t]=$(rss_kb "${PID[$t]}")
    say "$t: ready${IDLE_RSS[$t]:+ (idle RSS ${IDLE_RSS[$t]} KiB)}"
  else
    say "$t: unavailable: ${UNAVAIL[$t]}"
  fi
done
LIVE=()
for t in "${TARGETS[@]}"; do [[ -z ${UNAVAIL[$t]:-} ]] && LIVE+=("$t"); done
GWS=()
for t in "${LIVE[@]}"; do [[ $t != direct ]] && GWS+=("$t"); done
# The idle gateways sit on the same core as the one under test; stop none, they sleep.

# --- (a) latency and (c) time to first token, concurrency 1 ----------------------------------------
for m in mock_fast mock_d20 mock_slow; do repin "$m" "$CPU_LAT"; done
for t in "${GWS[@]}"; do repin "$t" "$CPU_LAT"; done
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${LIVE[@]}"; do
    say "latency round $r/$ROUNDS: $t"
    mapfile -d '' args < <(lg_args "$t" fast 0)
    timeout $((LAT_S + 30)) taskset -c "$CPU_LAT" "$LG" loop "${args[@]}" --concurrency 1 --duration "$LAT_S" \
      --warmup "$WARM_S" >"$RES/lat.$t.$r.json" 2>>"$LOG/loadgen.log" || true
    mapfile -d '' args < <(lg_args "$t" fast 1)
    timeout $((LAT_S + 30)) taskset -c "$CPU_LAT" "$LG" loop "${args[@]}" --concurrency 1 --duration "$LAT_S" \
      --warmup "$WARM_S" >"$RES/ttft.$t.$r.json" 2>>"$LOG/loadgen.log" || true
  done
done

# --- (b) requests/s at concurrency 64 ------------------------------------------------------------------
for m in mock_fast mock_d20 mock_slow; do repin "$m" "$CPU_LOAD"; done
for t in "${GWS[@]}"; do repin "$t" "$CPU_GW"; done
run_wrk() { # target kind seconds outfile
  local h hs="" url
  url=$(url_for "$1" "$2")
  while IFS= read -r h; do [[ -n $h ]] && hs+="$h|"; done < <(headers_for "$1" "$2")
  BENCH_BODY=$(body_for "$1" "$2" 0) BENCH_HEADERS=$hs timeout $(($3 + 30)) taskset -c "$CPU_LOAD" \
    wrk -t1 -c64 -d"$3"s --timeout 5s -s "$BENCH/post.lua" "$url" 2>>"$LOG/wrk.log" |
    sed -n 's/^WRKJSON //p' >"$4" || true
}
for t in "${LIVE[@]}"; do
  say "requests/s, c=64, 20 ms upstream delay: $t"
  run_wrk "$t" d20 1 /dev/null # warm-up: upstream connection pools, JIT
  run_wrk "$t" d20 "$RPS_S" "$RES/rps.$t.json"
done
for t in "${LIVE[@]}"; do
  say "requests/s, c=64, no upstream delay: $t"
  run_wrk "$t" fast 1 /dev/null
  run_wrk "$t" fast "$CAP_S" "$RES/cap.$t.json"
done

# --- (d) concurrently open SSE streams ----------------------------------------------------------------------
for t in "${GWS[@]}"; do
  say "holding up to $STREAMS SSE streams: $t"
  sleep 1
  mapfile -d '' args < <(lg_args "$t" slow 1)
  timeout $((STREAMS / RATE + HOLD_S + 60)) taskset -c "$CPU_LOAD" "$LG" hold "${args[@]}" --streams "$STREAMS" \
    --rate "$RATE" --hold "$HOLD_S" --pids "${PID[$t]}" >"$RES/hold.$t.json" 2>>"$LOG/loadgen.log" || true
  alive "$t" || { say "$t died during the stream test"; echo '{"died":true}' >"$RES/hold.$t.json"; }
  IDLE_AFTER=$(rss_kb "${PID[$t]}")
  echo "{\"rss_kb\":$IDLE_AFTER}" >"$RES/after.$t.json"
done

# --- (e) instructions per request under callgrind ------------------------------------------------------------
CG_NOTE=""
cg_run() { # name port url-target cmd...
  local name=$1 port=$2 tgt=$3; shift 3
  local out=$TMP/cg/$name.out
  mkdir -p "$TMP/cg"
  start "cg_$name" "$CPU_GW" valgrind --tool=callgrind --callgrind-out-file="$out" "$@"
  local ok=0
  for _ in $(seq 600); do
    alive "cg_$name" || break
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { ok=1; break; }
    sleep 0.1
  done
  if ((!ok)); then
    echo "{\"error\":\"did not start under valgrind\"}" >"$RES/cg.$name.json"
    stop "cg_$name"
    return
  fi
  mapfile -d '' args < <(lg_args "$tgt" fast 0)
  args[1]=$CG_URL
  timeout 300 taskset -c "$CPU_LOAD" "$LG" loop "${args[@]}" --requests "$CG_WARM" >/dev/null 2>&1 || true
  callgrind_control -z "${PID[cg_$name]}" >/dev/null 2>&1
  timeout 600 taskset -c "$CPU_LOAD" "$LG" loop "${args[@]}" --requests "$CG_N" >"$RES/cgload.$name.json" 2>/dev/null || true
  callgrind_control -d "${PID[cg_$name]}" >/dev/null 2>&1
  sleep 0.5
  stop "cg_$name"
  local total
  total=$(grep -h '^totals:' "$out".* 2>/dev/null | head -1 | awk '{print $2}')
  # Self cost per function, for the report's "where the instructions go".
  if [[ -f $out.1 ]] && command -v callgrind_annotate >/dev/null; then
    callgrind_annotate --inclusive=no --threshold=100 "$out.1" 2>/dev/null |
      grep -E '^ *[0-9,]+ +\( *[0-9.]+%\)' | grep -v 'PROGRAM TOTALS' |
      awk '{p=$2; gsub(/[(%)]/, "", p); if (p + 0 < 99) print}' | head -20 >"$RES/cgprof.$name.txt" || true
  fi
  echo "{\"ir_total\":${total:-null},\"requests\":$CG_N}" >"$RES/cg.$name.json"
}
if ((NO_CG)); then
  CG_NOTE="skipped (--no-callgrind)"
elif ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
  CG_NOTE="valgrind is not installed"
else
  for t in direct llmux nginx; do
    [[ " ${LIVE[*]} " == *" $t "* ]] || continue
    say "callgrind: $CG_N requests through $t"
    new_port
    p=$PORT
    case $t in
      direct)
        CG_URL="http://127.0.0.1:$p/v1/chat/completions"
        cg_run direct "$p" direct "$BIN/mock_upstream" --port "$p" --chunks 8 --chunk-bytes 16 --max-seconds 900 ;;
      llmux)
        CG_URL="http://127.0.0.1:$p/api/v1/chat/completions"
        cg_run llmux "$p" llmux "$LLMUX" --config "$LLMUX_CFG" --listen "127.0.0.1:$p" --workers 1 ;;
      nginx)
        write_nginx_config "$TMP/nginx-cg" "$p"
        CG_URL="http://127.0.0.1:$p/fast/v1/chat/completions"
        cg_run nginx "$p" nginx "$NGINX" -p "$TMP/nginx-cg" -c "$TMP/nginx-cg/nginx.conf" -e "$TMP/nginx-cg/error.log" ;;
    esac
  done
fi

# --- report ----------------------------------------------------------------------------------------------------
STAMP=$(date -u +%Y-%m-%d-%H%M)
{
  echo "{"
  echo "\"stamp\":\"$STAMP\",\"quick\":$QUICK,\"rounds\":$ROUNDS,\"lat_s\":$LAT_S,\"rps_s\":$RPS_S,\"cap_s\":$CAP_S,"
  echo "\"streams_wanted\":$STREAMS_WANTED,\"streams\":$STREAMS,\"nofile\":$NOFILE,\"cg_n\":$CG_N,"
  echo "\"loadavg_start\":\"$LOADAVG_START\",\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "\"cpu\":\"$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)\",\"ncpu\":$(nproc),"
  echo "\"mem_gib\":$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo),\"kernel\":\"$(uname -r)\","
  echo "\"llmux_commit\":\"$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)\","
  echo "\"llmux_build\":\"$LLMUX_BUILD_TYPE\","
  echo "\"nginx_version\":\"$($NGINX -v 2>&1 | sed 's/.*nginx\///' || true)\","
  echo "\"node_version\":\"$(node --version 2>/dev/null || echo none)\",\"peer\":\"$PEER_PKG@$PEER_VERSION\","
  echo "\"cg_note\":\"$CG_NOTE\","
  echo "\"layout\":\"latency: all on cpu $CPU_LAT; throughput/streams: gateway on cpu $CPU_GW, load+mocks on cpu $CPU_LOAD\","
  echo "\"idle_rss_kb\":{"
  first=1
  for t in "${!IDLE_RSS[@]}"; do ((first)) || echo ","; first=0; printf '"%s":%s' "$t" "${IDLE_RSS[$t]}"; done
  echo "},\"unavailable\":{"
  first=1
  for t in "${!UNAVAIL[@]}"; do
    ((first)) || echo ","
    first=0
    printf '"%s":%s' "$t" "$(printf '%s' "${UNAVAIL[$t]}" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
  done
  echo "}}"
} >"$RES/meta.json"
python3 "$BENCH/report.py" "$RES" "$RESULTS/$STAMP"
say "wrote $RESULTS/$STAMP.md and $RESULTS/$STAMP.json"
cat "$RESULTS/$STAMP.md"
