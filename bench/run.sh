#!/usr/bin/env bash
# The benchmarks behind BENCHMARKS.md, in one command:
#
#   bash bench/run.sh           full run (several minutes), rewrites BENCHMARKS.md
#   bash bench/run.sh --quick   smoke run, a few seconds per scenario, writes bench/out/BENCHMARKS.md
#
# It builds the release binary (unless BENCH_BIN names one), installs what the chosen scenarios
# need and is missing (wrk, nginx-light, redis-server and valgrind from Debian, oha from
# crates.io, locust from PyPI into a venv), and starts a private
# Redis, the standalone simulator, the service and nginx, all on 127.0.0.1 and free ports only.
# Everything it starts is stopped on exit, by PID. Results: bench/out/.
#
# Scenarios (see BENCHMARKS.md for what each one measures and why):
#   a  gateway overhead at fixed rates, service vs the simulator straight, cache missing
#   b  cached hits, service vs nginx (one worker) returning the same bytes from a file and from
#      memory (`return 200 '...'`), from one user and from 10,000 different X-User-IDs
#      (bench/many_users.lua), beside the previous release's binary (PREVIOUS_REV)
#   c  ~10,000 requests in flight against a 2 s upstream: all succeed, peak RSS
#   d  the upgrade guide's locustfile (tests/load/locustfile.py), headless, 100 requests/s
#   e  instructions per cached hit, under callgrind (robust on a noisy shared machine)
#   f  normalising 30 s recordings on one core (criterion: `cargo bench --bench audio`)
#   h  cache misses at c=4 against a static stub: the service's added latency beside an nginx
#      proxy hop's, and CACHE_MODE=tiered beside redis_only (bench/scenario_h.sh)
#   s  the disk tier's stall: CACHE_MODE=tiered, a burst of misses at c=64, then c=4 of the same
#      generator (bench/scenario_s.sh; not in the default set: BENCH_SCENARIOS=s)
# Pick some with BENCH_SCENARIOS=abcdefh (default: all). Section g of BENCHMARKS.md comes from
# bench/redis-topologies.sh. The report rewrites only the sections of the scenarios that ran.
#
# The service runs as in production unless BENCH_CONFIG=bare: CACHE_MODE=redis_only, JSON logs,
# API_KEYS set (wrk and oha send X-API-Key: BENCH_API_KEY), both rate limits on
# (RATE_LIMIT_PER_MINUTE and RATE_LIMIT_PER_KEY_PER_MINUTE at BENCH_LIMIT, 1,000,000,000, so
# the load is never refused; requests carry X-User-ID: BENCH_USER_ID). BENCH_CONFIG=bare is the
# configuration this script used before: no API keys, no X-User-ID, per scenario
# RATE_LIMIT_PER_MINUTE=0 (b, c, e), 10000000 (a), 1000000 (d). Scenario d keeps auth off either
# way: the guide's locustfile sends X-API-Key on one of its three tasks only. nginx runs
# BENCH_NGINX_WORKERS worker processes (default 1).
set -euo pipefail

MODE=full
case "${1:-}" in
  --quick) MODE=quick ;;
  "") ;;
  *) echo "usage: bash bench/run.sh [--quick]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="$ROOT/bench/out"
TOOLS="${BENCH_TOOLS:-$HOME/.cache/backend-ai-bench}"
SCENARIOS="${BENCH_SCENARIOS:-abcdefh}"
mkdir -p "$OUT" "$TOOLS"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/backend-ai-bench.XXXXXX")
chmod 755 "$RUN_DIR" # nginx's workers run as nobody
RESULTS="$OUT/results.jsonl"
COMMANDS="$OUT/commands.txt"
: >"$RESULTS"
: >"$COMMANDS"
: >"$OUT/service.log"
: >"$OUT/simulator.log"

if [[ $MODE == quick ]]; then
  RUNS=1; A_SECONDS=3; B_SECONDS=3; C_SECONDS=5; D_TIME=10s; E_SECONDS=5; H_SECONDS=3
  S_SECONDS=3
else
  RUNS=${BENCH_RUNS:-3}; A_SECONDS=15; B_SECONDS=10; C_SECONDS=9; D_TIME=2m; E_SECONDS=20; H_SECONDS=10
  S_SECONDS=8
fi
A_RATES=(1000 2500 5000)
C_IN_FLIGHT=${BENCH_IN_FLIGHT:-10000}
C_H2_CONNECTIONS=100

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- configuration
CONFIG="${BENCH_CONFIG:-production}"
[[ $CONFIG == production || $CONFIG == bare ]] || { echo "BENCH_CONFIG must be production or bare" >&2; exit 2; }
NGINX_WORKERS="${BENCH_NGINX_WORKERS:-1}"
LIMIT="${BENCH_LIMIT:-1000000000}"
if [[ $CONFIG == production ]]; then
  # Read by bench/*.lua; CLIENT_HEADERS for oha and curl.
  export BENCH_API_KEY="${BENCH_API_KEY:-bench-api-key}" BENCH_USER_ID="${BENCH_USER_ID:-bench-user}"
  CLIENT_HEADERS=(-H "X-API-Key: $BENCH_API_KEY" -H "X-User-ID: $BENCH_USER_ID")
else
  unset BENCH_API_KEY BENCH_USER_ID
  CLIENT_HEADERS=()
fi

# service_config BARE_LIMIT [AUTH]: sets SVC_CONFIG (VAR=value words for start_service) and
# SVC_CONFIG_JSON (the same, for the report). BARE_LIMIT is the scenario's RATE_LIMIT_PER_MINUTE
# under BENCH_CONFIG=bare; AUTH=noauth leaves API_KEYS unset (scenario d).
service_config() {
  local bare_limit=$1 auth=${2:-auth} keys=0 user=false per_user per_key
  if [[ $CONFIG == production ]]; then
    per_user=$LIMIT per_key=$LIMIT
    SVC_CONFIG=(RATE_LIMIT_PER_MINUTE="$LIMIT" RATE_LIMIT_PER_KEY_PER_MINUTE="$LIMIT")
    # Scenario d's locustfile sends neither header.
    [[ $auth == noauth ]] || { SVC_CONFIG+=(API_KEYS="$BENCH_API_KEY"); keys=1; user=true; }
  else
    # The service's default ceiling is 100 users' worth of the per-user limit.
    per_user=$bare_limit per_key=$((bare_limit * 100))
    SVC_CONFIG=(RATE_LIMIT_PER_MINUTE="$bare_limit")
  fi
  SVC_CONFIG_JSON="{\"set\": \"$CONFIG\", \"cache_mode\": \"redis_only\", \"api_keys\": $keys, \"rate_limit_per_minute\": $per_user, \"rate_limit_per_key_per_minute\": $per_key, \"user_header\": $user, \"log_format\": \"json\"}"
}

# ---------------------------------------------------------------- tools
apt_install() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
# Only what the chosen scenarios use: oha (a, c) is a long compile, locust (d) a venv.
wanted=(wrk:wrk redis-server:redis-server curl:curl)
[[ $SCENARIOS == *[bdh]* ]] && wanted+=(nginx:nginx-light)
[[ $SCENARIOS == *e* ]] && wanted+=(valgrind:valgrind)
apt_install "${wanted[@]}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

OHA="${BENCH_OHA:-$TOOLS/bin/oha}"
if [[ ! -x $OHA && $SCENARIOS == *[ac]* ]]; then
  # Default features: oha 1.16 does not compile without its TLS feature.
  log "installing oha from crates.io (a long compile on 2 cores)"
  cargo install oha --locked --root "$TOOLS" >"$OUT/oha-install.log" 2>&1
fi
VENV="$TOOLS/venv"
if [[ ! -x $VENV/bin/locust && $SCENARIOS == *d* ]]; then
  log "installing locust from PyPI into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q locust >"$OUT/locust-install.log" 2>&1
fi

# BENCH_BIN=path measures another build instead of building this one. BENCH_BEFORE_BIN=path
# adds that build (e.g. the commit before an optimisation) to scenarios b and e, side by side.
# Without it, PREVIOUS_REV (a git revision; default 241eca0, the release before this one; `none`
# to skip) is built in a temporary git worktree and is that build, so a regression shows in the
# same run.
BIN="${BENCH_BIN:-}"
BEFORE_BIN="${BENCH_BEFORE_BIN:-}"
PREVIOUS_REV="${PREVIOUS_REV-241eca0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PREV_WORKTREE=""
if [[ -z $BIN ]]; then
  log "building the release binary"
  cargo build --release --bin backend-ai >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; exit 1; }
  # Aside: building the previous release below reuses (and overwrites) the target directory.
  cp "$TARGET_DIR/release/backend-ai" "$RUN_DIR/backend-ai"
  BIN="$RUN_DIR/backend-ai"
fi
if [[ -z $BEFORE_BIN && -n $PREVIOUS_REV && $PREVIOUS_REV != none && $SCENARIOS == *[be]* ]]; then
  PREV_WORKTREE="$RUN_DIR/previous-src"
  log "building the previous release ($PREVIOUS_REV) in a temporary git worktree"
  {
    git -C "$ROOT" worktree add --detach "$PREV_WORKTREE" "$PREVIOUS_REV" &&
      (cd "$PREV_WORKTREE" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --bin backend-ai)
  } >"$OUT/build-previous.log" 2>&1 || {
    tail -20 "$OUT/build-previous.log" >&2
    git -C "$ROOT" worktree remove --force "$PREV_WORKTREE" 2>/dev/null || true
    exit 1
  }
  cp "$TARGET_DIR/release/backend-ai" "$RUN_DIR/backend-ai-previous"
  git -C "$ROOT" worktree remove --force "$PREV_WORKTREE"
  PREV_WORKTREE=""
  BEFORE_BIN="$RUN_DIR/backend-ai-previous"
  # Read by bench/report.py: the name of that build in the rows and the commands.
  BENCH_BEFORE_COMMIT="$(git -C "$ROOT" rev-parse --short "$PREVIOUS_REV")"
  export BENCH_BEFORE_COMMIT BENCH_BEFORE_BIN="$BEFORE_BIN" BENCH_PREVIOUS_REV="$PREVIOUS_REV"
fi

# File descriptors: ~10,000 requests in flight through a gateway need two sockets each.
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)

# ---------------------------------------------------------------- processes
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -z $PREV_WORKTREE ]] || git -C "$ROOT" worktree remove --force "$PREV_WORKTREE" 2>/dev/null || true
  [[ -n ${BENCH_KEEP_TMP:-} ]] || rm -rf "$RUN_DIR"
}
trap cleanup EXIT

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {
  local url=$1 tries=${2:-300}
  for _ in $(seq "$tries"); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}

load1() { cut -d' ' -f1 /proc/loadavg; }
# CPU seconds used so far: by one process (user + system), or by the whole machine (busy time).
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / hz}' /proc/"$1"/stat; }
machine_busy_seconds() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat; }

REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize no \
  --logfile "$OUT/redis.log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# start_simulator LATENCY_MS: sets SIM_PID and SIM_PORT.
start_simulator() {
  SIM_PORT=$(free_port)
  SIMULATOR_LATENCY_MS=$1 RUST_LOG=warn "$BIN" simulator "$SIM_PORT" >>"$OUT/simulator.log" 2>&1 &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  wait_http "http://127.0.0.1:$SIM_PORT/_simulator/faults"
}

# start_service UPSTREAM_PORT [VAR=value...]: sets SVC_PID and SVC_PORT. The service's own
# defaults otherwise, except: loopback only, the private Redis, redis_only (the mode it runs in
# under Kubernetes), JSON logs to a file; callers add service_config's SVC_CONFIG (auth, limits).
start_service() {
  local upstream=$1; shift
  SVC_PORT=$(free_port)
  env BIND_ADDRESS=127.0.0.1 PORT="$SVC_PORT" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" CACHE_MODE=redis_only \
    AZURE_SPEECH_KEY=bench AZURE_SPEECH_ENDPOINT="http://127.0.0.1:$upstream" \
    GEMINI_API_KEY=bench GEMINI_BASE_URL="http://127.0.0.1:$upstream" \
    UPSTREAM_HTTP2_PRIOR_KNOWLEDGE=true LOG_FORMAT=json "$@" ${SERVICE_WRAPPER:-} "${SERVICE_BIN:-$BIN}" >>"$OUT/service.log" 2>&1 &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  wait_http "http://127.0.0.1:$SVC_PORT/health" "${SERVICE_START_TRIES:-300}"
}

# metric NAME_AND_LABELS_REGEX: the sum of matching samples on the service's /metrics.
metric() {
  curl -fsS "http://127.0.0.1:${METRIC_PORT:-$SVC_PORT}/metrics" | awk -v re="$1" '$0 !~ /^#/ && $1 ~ re {s += $2} END {printf "%d\n", s}'
}

record() { printf '%s\n' "$1" >>"$RESULTS"; }
# Commands the private Redis has executed so far, by name: {"get": 12, ...}.
redis_commands() {
  redis-cli -p "$REDIS_PORT" info commandstats |
    python3 -c 'import json, re, sys; print(json.dumps({m[1]: int(m[2]) for m in re.finditer(r"cmdstat_([\w|]+):calls=(\d+)", sys.stdin.read())}))'
}
command_line() { printf '%s: %s\n' "$1" "${2//$RUN_DIR/\$TMP}" >>"$COMMANDS"; }

# ---------------------------------------------------------------- machine
python3 - "$OUT/machine.json" "$MODE" "$FD_LIMIT" "$SCENARIOS" "$CONFIG" "$NGINX_WORKERS" "$BIN" "${BENCH_BIN:+given}" <<'EOF'
import datetime, hashlib, json, os, platform, subprocess, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except Exception:
        return "?"
json.dump({
    "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(int(mem) / 1048576, 1),
    "kernel": platform.release(), "mode": sys.argv[2], "fd_limit": sys.argv[3],
    "rustc": version(["rustc", "--version"]),
    "date": subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip(),
    "commit": version(["git", "rev-parse", "--short", "HEAD"]),
    "scenarios": sys.argv[4], "config": sys.argv[5], "nginx_workers": sys.argv[6],
    # BENCH_BIN: a build made elsewhere, named by its time and digest (not necessarily `commit`).
    "binary": {"given": sys.argv[8] == "given", "path": sys.argv[7],
               "built": datetime.datetime.fromtimestamp(os.stat(sys.argv[7]).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "sha256": hashlib.sha256(open(sys.argv[7], "rb").read()).hexdigest()[:12]},
}, open(sys.argv[1], "w"))
EOF
{
  [[ ! -x $OHA ]] || "$OHA" --version 2>&1 | head -1
  wrk -v 2>&1 | head -1 | cut -d' ' -f1-2
  [[ ! -x $NGINX ]] || "$NGINX" -v 2>&1 | head -1
  redis-server --version | cut -d' ' -f1-3
  [[ ! -x $VENV/bin/locust ]] || "$VENV/bin/locust" --version 2>&1 | head -1 | cut -d' ' -f1-2
  ! command -v valgrind >/dev/null || valgrind --version
} >"$OUT/versions.txt" 2>/dev/null || true

# ---------------------------------------------------------------- a: gateway overhead
oha_run() { # LABEL RATE CONNECTIONS BODIES URL [extra oha args...]
  local label=$1 rate=$2 conns=$3 bodies=$4 url=$5; shift 5
  local cmd=("$OHA" -z "${OHA_SECONDS:-$A_SECONDS}s" -q "$rate" --latency-correction -w -c "$conns" --no-tui
    --output-format json -m POST -T application/json -Z "$bodies" "$@" "$url")
  command_line "a/$label" "$(printf '%q ' "${cmd[@]}")"
  "${cmd[@]}" >"$RUN_DIR/oha.json"
}

# capture_gemini_request: the exact Gemini request the service sends, for "Benchmark placeholder
# sentence.", into $RUN_DIR/gemini.json; its path into GEMINI_PATH.
capture_gemini_request() {
  local capture_port; capture_port=$(free_port)
  python3 bench/capture_upstream.py "$capture_port" "$RUN_DIR/gemini.json" &
  local capture_pid=$!
  # The capture server speaks HTTP/1.1 only.
  start_service "$capture_port" RATE_LIMIT_PER_MINUTE=0 UPSTREAM_HTTP2_PRIOR_KNOWLEDGE=false
  curl -sS -o /dev/null -X POST -H 'content-type: application/json' \
    -d '{"text":"Benchmark placeholder sentence.","user_id":"bench"}' "http://127.0.0.1:$SVC_PORT/api/analyze"
  wait "$capture_pid"
  stop "$SVC_PID"
  GEMINI_PATH=$(cat "$RUN_DIR/gemini.json.path")
}

scenario_a() {
  log "a: gateway overhead (upstream latency 50 ms, cache missing)"
  start_simulator 50
  # The exact Gemini request the service sends, captured once, replayed straight at the simulator.
  capture_gemini_request
  local gemini_path=$GEMINI_PATH

  # Per-user limiting stays on (as in production), with a budget the load never reaches.
  service_config 10000000
  start_service "$SIM_PORT" "${SVC_CONFIG[@]}"
  python3 bench/make_bodies.py gemini 20000 direct "$RUN_DIR/gemini.json" "$RUN_DIR/direct.lines"

  local run rate conns lines
  for rate in "${A_RATES[@]}"; do
    conns=$((rate / 10))
    # Warm both paths (connection pools, allocator) before measuring.
    python3 bench/make_bodies.py analyze 20000 "warm$rate" "$RUN_DIR/svc.lines"
    OHA_SECONDS=3 oha_run warmup "$rate" "$conns" "$RUN_DIR/svc.lines" "http://127.0.0.1:$SVC_PORT/api/analyze" \
      "${CLIENT_HEADERS[@]}"
    OHA_SECONDS=3 oha_run warmup "$rate" "$conns" "$RUN_DIR/direct.lines" "http://127.0.0.1:$SIM_PORT$gemini_path" \
      -H 'x-goog-api-key: bench'
    for run in $(seq "$RUNS"); do
      # Fresh texts per run: a line repeats only by oha's random pick, never across runs.
      lines=$((rate * A_SECONDS * 40))
      python3 bench/make_bodies.py analyze "$lines" "r${run}q${rate}x" "$RUN_DIR/svc.lines"
      local hits_before misses_before
      hits_before=$(metric 'cache_operations_total[{].*operation="get".*result="hit"')
      misses_before=$(metric 'cache_operations_total[{].*operation="get".*result="miss".*tier="redis"')
      local load; load=$(load1)
      local redis_before; redis_before=$(redis_commands)
      local cpu_before; cpu_before="$(cpu_seconds "$SVC_PID") $(cpu_seconds "$SIM_PID") $(cpu_seconds "$REDIS_PID") $(machine_busy_seconds)"
      oha_run "service-$rate" "$rate" "$conns" "$RUN_DIR/svc.lines" "http://127.0.0.1:$SVC_PORT/api/analyze" \
        "${CLIENT_HEADERS[@]}"
      local cpu; cpu=$(python3 -c 'import json, sys; a, b = map(float, sys.argv[1].split()), map(float, sys.argv[2].split()); print(json.dumps(dict(zip(["service", "simulator", "redis", "machine"], [round(y - x, 2) for x, y in zip(a, b)]))))' \
        "$cpu_before" "$(cpu_seconds "$SVC_PID") $(cpu_seconds "$SIM_PID") $(cpu_seconds "$REDIS_PID") $(machine_busy_seconds)")
      local hits misses redis_delta
      hits=$(( $(metric 'cache_operations_total[{].*operation="get".*result="hit"') - hits_before ))
      misses=$(( $(metric 'cache_operations_total[{].*operation="get".*result="miss".*tier="redis"') - misses_before ))
      redis_delta=$(python3 -c 'import json, sys; a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]); print(json.dumps({k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}))' "$redis_before" "$(redis_commands)")
      record "$(python3 bench/report.py oha-record a service "$rate" "$run" "$load" "$RUN_DIR/oha.json" \
        "{\"cache_hits\": $hits, \"cache_misses\": $misses, \"redis_commands\": $redis_delta, \"cpu_seconds\": $cpu, \"seconds\": $A_SECONDS, \"config\": $SVC_CONFIG_JSON}")"
      load=$(load1)
      oha_run "direct-$rate" "$rate" "$conns" "$RUN_DIR/direct.lines" "http://127.0.0.1:$SIM_PORT$gemini_path" \
        -H 'x-goog-api-key: bench'
      record "$(python3 bench/report.py oha-record a direct "$rate" "$run" "$load" "$RUN_DIR/oha.json" \
        '{"config": {"server": "simulator"}}')"
    done
  done
  stop "$SVC_PID"
  stop "$SIM_PID"
}

# ---------------------------------------------------------------- b: cached hits vs nginx
NGINX_PID=""
NGINX_CONFIG_JSON="{\"server\": \"nginx\", \"nginx_workers\": \"$NGINX_WORKERS\"}"
# nginx_head DIR: the top of an nginx.conf (NGINX_WORKERS workers, no access log, temp files in DIR).
nginx_head() {
  cat <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp;
  proxy_temp_path $1/tmp;
  fastcgi_temp_path $1/tmp;
  uwsgi_temp_path $1/tmp;
  scgi_temp_path $1/tmp;
  keepalive_requests 1000000;
EOF
}

start_nginx() { # serves the cached reply for POST /api/analyze and a WAV for scenario d
  NGINX_PORT=$(free_port)
  mkdir -p "$RUN_DIR/nginx/www/api" "$RUN_DIR/nginx/tmp"
  printf 'ok\n' >"$RUN_DIR/nginx/www/index.html"
  nginx_head "$RUN_DIR/nginx" >"$RUN_DIR/nginx/nginx.conf"
  cat >>"$RUN_DIR/nginx/nginx.conf" <<EOF
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $RUN_DIR/nginx/www;
    location = /api/analyze {
      default_type application/json;
      # The static module answers POST with 405; this serves the file instead.
      error_page 405 =200 \$uri;
    }
    location / { }
  }
}
EOF
  "$NGINX" -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$NGINX_PORT/"
}

# start_nginx_memory REPLY_FILE: a second nginx (same head, own port) answering POST /api/analyze
# with the reply held in its configuration (`return 200 '...'`): no file read per request.
start_nginx_memory() {
  local dir="$RUN_DIR/nginx-memory" text
  mkdir -p "$dir/tmp"
  # In nginx's single-quoted strings \ and ' are escaped with \; a $ would name a variable.
  grep -q '[$]' "$1" && { echo "the cached reply holds a \$: nginx would read it as a variable" >&2; exit 1; }
  text=$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" "$1")
  NGINX_MEMORY_PORT=$(free_port)
  nginx_head "$dir" >"$dir/nginx.conf"
  cat >>"$dir/nginx.conf" <<EOF
  server {
    listen 127.0.0.1:$NGINX_MEMORY_PORT;
    location = /api/analyze {
      default_type application/json;
      return 200 '$text';
    }
  }
}
EOF
  "$NGINX" -c "$dir/nginx.conf" -p "$dir" &
  PIDS+=("$!")
  local url="http://127.0.0.1:$NGINX_MEMORY_PORT/api/analyze"
  wait_http "$url"
  cmp -s <(curl -fsS -X POST --data-binary @"$RUN_DIR/body.json" "$url") "$1" \
    || { echo "nginx from memory does not return the cached reply" >&2; exit 1; }
}

wrk_run() { # LABEL OUTFILE wrk args...
  local label=$1 out=$2; shift 2
  command_line "$label" "wrk $*"
  wrk "$@" >"$out" 2>&1
}

scenario_b() {
  log "b: cached hits vs nginx ($NGINX_WORKERS worker(s)), service configuration: $CONFIG"
  start_simulator 50
  service_config 0
  start_service "$SIM_PORT" "${SVC_CONFIG[@]}"
  local body='{"text":"I go to the store yesterday and buy three apple.","user_id":"bench"}'
  printf '%s' "$body" >"$RUN_DIR/body.json"
  local url="http://127.0.0.1:$SVC_PORT/api/analyze"
  curl -fsS -o /dev/null -X POST -H 'content-type: application/json' "${CLIENT_HEADERS[@]}" \
    --data-binary @"$RUN_DIR/body.json" "$url"
  start_nginx
  curl -fsS -X POST -H 'content-type: application/json' "${CLIENT_HEADERS[@]}" --data-binary @"$RUN_DIR/body.json" "$url" \
    >"$RUN_DIR/nginx/www/api/analyze"
  grep -q '"cached":true' "$RUN_DIR/nginx/www/api/analyze" || { echo "second request was not a cache hit" >&2; exit 1; }
  cp "$RUN_DIR/nginx/www/api/analyze" "$OUT/cached-reply.json"
  local nginx_url="http://127.0.0.1:$NGINX_PORT/api/analyze"
  cmp -s <(curl -fsS -X POST --data-binary @"$RUN_DIR/body.json" "$nginx_url") "$RUN_DIR/nginx/www/api/analyze" \
    || { echo "nginx does not return the cached reply" >&2; exit 1; }
  start_nginx_memory "$RUN_DIR/nginx/www/api/analyze"
  local memory_url="http://127.0.0.1:$NGINX_MEMORY_PORT/api/analyze"

  # *-10k: the same body from 10,000 different X-User-IDs (each its own per-user bucket).
  local targets=(service service-10k nginx nginx-memory nginx-memory-10k) before_url="" before_pid="" before_port=""
  local main_port=$SVC_PORT main_pid=$SVC_PID
  if [[ -n $BEFORE_BIN ]]; then
    SERVICE_BIN=$BEFORE_BIN start_service "$SIM_PORT" "${SVC_CONFIG[@]}"
    before_url="http://127.0.0.1:$SVC_PORT/api/analyze" before_pid=$SVC_PID before_port=$SVC_PORT
    curl -fsS -o /dev/null -X POST -H 'content-type: application/json' "${CLIENT_HEADERS[@]}" \
      --data-binary @"$RUN_DIR/body.json" "$before_url"
    SVC_PORT=$main_port SVC_PID=$main_pid
    targets+=(service-before service-before-10k)
  fi

  local run load target target_url hits hits_before config script redis_before redis_delta
  export BENCH_BODY_FILE="$RUN_DIR/body.json" BENCH_USERS=10000
  for target_url in "$url" "$nginx_url" "$memory_url" $before_url; do
    wrk -t2 -c64 -d2s -s bench/same_body.lua "$target_url" >/dev/null
  done
  for run in $(seq "$RUNS"); do
    for target in "${targets[@]}"; do
      case $target in
        service | service-10k) target_url=$url METRIC_PORT=$main_port config=$SVC_CONFIG_JSON ;;
        nginx) target_url=$nginx_url METRIC_PORT=$main_port config=$NGINX_CONFIG_JSON ;;
        nginx-memory*) target_url=$memory_url METRIC_PORT=$main_port config="${NGINX_CONFIG_JSON%\}}, \"from\": \"memory\"}" ;;
        service-before*) target_url=$before_url METRIC_PORT=$before_port config=$SVC_CONFIG_JSON ;;
      esac
      script=bench/same_body.lua
      [[ $target == *-10k ]] && script=bench/many_users.lua
      hits_before=$(metric 'cache_operations_total[{].*operation="get".*result="hit"')
      redis_before=$(redis_commands)
      load=$(load1)
      wrk_run "b/$target" "$RUN_DIR/wrk.txt" -t2 -c64 "-d${B_SECONDS}s" --latency -s "$script" "$target_url"
      hits=$(( $(metric 'cache_operations_total[{].*operation="get".*result="hit"') - hits_before ))
      redis_delta=$(python3 -c 'import json, sys; a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]); print(json.dumps({k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}))' "$redis_before" "$(redis_commands)")
      record "$(python3 bench/report.py wrk-record b "$target" 0 "$run" "$load" "$RUN_DIR/wrk.txt" \
        "{\"cache_hits\": $hits, \"redis_commands\": $redis_delta, \"config\": $config}")"
    done
  done
  unset METRIC_PORT
  stop "$SVC_PID"
  [[ -z $before_pid ]] || stop "$before_pid"
  stop "$SIM_PID"
}

# ---------------------------------------------------------------- c: ~10,000 in flight
scenario_c() {
  log "c: $C_IN_FLIGHT requests in flight against a 2 s upstream"
  start_simulator 2000
  # oha picks body lines at random: with a million distinct texts, a burst of 10,000 repeats
  # about 50 of them (single-flight merges those; the report counts the upstream calls made).
  python3 bench/make_bodies.py analyze 1000000 "c$$-" "$RUN_DIR/c.lines"
  local run
  for run in $(seq "$RUNS"); do
    hold_in_flight "$run" http2
    hold_in_flight "$run" http1
  done
  stop "$SIM_PID"
}

# hold_in_flight RUN PROTOCOL: C_IN_FLIGHT requests at once, each a different learner text.
# HTTP/2 (a mesh or an h2c ingress): oha sends exactly C_IN_FLIGHT at once over C_H2_CONNECTIONS
# connections. HTTP/1.1 (an ingress proxy, one connection per request): a burst of 10,000
# connections takes this box longer than the 2 s a request is held, so the early ones finish
# before the last are open; wrk instead keeps C_IN_FLIGHT connections busy for C_SECONDS, each
# sending its next request as soon as one is answered. A fresh service per run, so `VmHWM` is
# this run's peak; the service's own in-flight gauge and its open files are sampled meanwhile.
hold_in_flight() {
  local run=$1 protocol=$2 load
  # 10,000 HTTP/1.1 clients are 10,000 connections: above the default MAX_CONNECTIONS (4096);
  # and 10,000 requests above the default MAX_IN_FLIGHT (3000), which this run measures past.
  service_config 0
  start_service "$SIM_PORT" "${SVC_CONFIG[@]}" MAX_CONNECTIONS=20000 MAX_IN_FLIGHT=0
  local base_fds; base_fds=$(find /proc/"$SVC_PID"/fd -mindepth 1 -maxdepth 1 | wc -l)
  local cmd
  if [[ $protocol == http2 ]]; then
    cmd=("$OHA" -n "$C_IN_FLIGHT" --http2 -c "$C_H2_CONNECTIONS" -p $((C_IN_FLIGHT / C_H2_CONNECTIONS)) -t 60s
      --no-tui --output-format json -m POST -T application/json -Z "$RUN_DIR/c.lines" "${CLIENT_HEADERS[@]}"
      "http://127.0.0.1:$SVC_PORT/api/analyze")
  else
    cmd=(wrk -t2 -c"$C_IN_FLIGHT" "-d${C_SECONDS}s" --timeout 30s --latency -s bench/unique_analyze.lua
      "http://127.0.0.1:$SVC_PORT" -- "c$run$protocol$$")
  fi
  command_line "c/$protocol" "$(printf '%q ' "${cmd[@]}")"
  load=$(load1)
  "${cmd[@]}" >"$RUN_DIR/c.out" 2>&1 &
  local generator=$! peak_fds=0 peak_in_flight=0 fds in_flight
  while kill -0 "$generator" 2>/dev/null; do
    fds=$(find /proc/"$SVC_PID"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    ((fds > peak_fds)) && peak_fds=$fds
    in_flight=$(metric '^http_requests_in_flight$' 2>/dev/null || echo 0)
    # Less the scrape's own request.
    ((in_flight - 1 > peak_in_flight)) && peak_in_flight=$((in_flight - 1))
    sleep 0.2
  done
  wait "$generator"
  local hwm sim_hwm calls
  hwm=$(awk '/^VmHWM/ {print $2}' /proc/"$SVC_PID"/status)
  sim_hwm=$(awk '/^VmHWM/ {print $2}' /proc/"$SIM_PID"/status)
  calls=$(metric 'ai_operation_duration_seconds_count[{].*operation="analyze"')
  local kind=oha-record; [[ $protocol == http1 ]] && kind=wrk-record
  record "$(python3 bench/report.py "$kind" c "$protocol" 0 "$run" "$load" "$RUN_DIR/c.out" \
    "{\"vm_hwm_kib\": $hwm, \"simulator_vm_hwm_kib\": $sim_hwm, \"peak_fds\": $peak_fds, \"base_fds\": $base_fds, \"peak_in_flight\": $peak_in_flight, \"upstream_calls\": $calls, \"in_flight\": $C_IN_FLIGHT, \"h2_connections\": $C_H2_CONNECTIONS, \"seconds\": $C_SECONDS, \"config\": $SVC_CONFIG_JSON}")"
  stop "$SVC_PID"
  # A fresh simulator too, so its peak is this run's own.
  stop "$SIM_PID"
  start_simulator 2000
}

# ---------------------------------------------------------------- d: the guide's locustfile
scenario_d() {
  log "d: locust, 100 requests/s for $D_TIME"
  [[ -n $NGINX_PID ]] || start_nginx
  python3 - "$RUN_DIR/nginx/www/test.wav" <<'EOF'
import math, struct, sys, wave
# 1.5 s of 16 kHz mono 16-bit PCM: the format Azure's short-audio REST takes.
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / 16000))) for i in range(24000)))
EOF
  start_simulator 50
  # The guide's users send no X-User-ID, so all of them share one client-address bucket: a
  # budget above the test's total keeps the limiter in the path without refusing anyone. Auth
  # stays off: the guide's file sends X-API-Key on its transcribe task only.
  service_config 1000000 noauth
  start_service "$SIM_PORT" AUDIO_FETCH_ALLOW_PRIVATE=true "${SVC_CONFIG[@]}"
  # wait_time = between(1, 3): 2 s mean think time per user, so 200 users make ~100 requests/s.
  local load; load=$(load1)
  local cmd=("$VENV/bin/locust" -f tests/load/locustfile.py --headless -u 200 -r 50 -t "$D_TIME"
    --host "http://127.0.0.1:$SVC_PORT" --csv "$RUN_DIR/locust" --only-summary)
  command_line d "BENCH_AUDIO_URL=http://127.0.0.1:$NGINX_PORT/test.wav ${cmd[*]}"
  BENCH_AUDIO_URL="http://127.0.0.1:$NGINX_PORT/test.wav" "${cmd[@]}" >"$OUT/locust.txt" 2>&1 || true
  record "$(python3 bench/report.py locust-record d service 100 1 "$load" "$RUN_DIR/locust_stats.csv" \
    "{\"config\": $SVC_CONFIG_JSON}")"
  cp "$RUN_DIR/locust_stats.csv" "$OUT/locust_stats.csv"
  stop "$SVC_PID"
  stop "$SIM_PID"
}

# ---------------------------------------------------------------- e: instructions per request
scenario_e() {
  log "e: callgrind, instructions per cached hit and per cache miss"
  start_simulator 0
  local body='{"text":"I go to the store yesterday and buy three apple.","user_id":"bench"}'
  printf '%s' "$body" >"$RUN_DIR/body.json"
  export BENCH_BODY_FILE="$RUN_DIR/body.json"
  profile_requests hit service "$BIN" bench/same_body.lua
  [[ -z $BEFORE_BIN ]] || profile_requests hit service-before "$BEFORE_BIN" bench/same_body.lua
  profile_requests miss service "$BIN" bench/unique_analyze.lua
  [[ -z $BEFORE_BIN ]] || profile_requests miss service-before "$BEFORE_BIN" bench/unique_analyze.lua
  stop "$SIM_PID"
}

# profile_requests KIND LABEL BINARY WRK_SCRIPT: instructions the service executes per request
# while wrk drives WRK_SCRIPT (same_body.lua: memory-tier hits; unique_analyze.lua: misses).
profile_requests() {
  local kind=$1 label=$2
  service_config 0
  SERVICE_BIN=$3 SERVICE_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=$RUN_DIR/callgrind.out.%p" \
    SERVICE_START_TRIES=1200 start_service "$SIM_PORT" "${SVC_CONFIG[@]}"
  local url="http://127.0.0.1:$SVC_PORT"
  [[ $kind == hit ]] && url="$url/api/analyze"
  wrk -t1 -c4 -d3s -s "$4" "$url" -- "warm$kind$label$$" >/dev/null
  callgrind_control -z "$SVC_PID" >/dev/null 2>&1
  local load; load=$(load1)
  wrk_run "e/$kind/$label" "$RUN_DIR/wrk.txt" -t1 -c4 "-d${E_SECONDS}s" --latency -s "$4" "$url" -- "e$kind$label$$"
  callgrind_control -d "$SVC_PID" >/dev/null 2>&1
  local dump; dump=$(ls -t "$RUN_DIR"/callgrind.out.*.* | head -1)
  cp "$dump" "$OUT/callgrind-$kind-$label.out"
  # Whole listings to files first: `| head` would end callgrind_annotate with SIGPIPE.
  callgrind_annotate --threshold=100 "$dump" >"$RUN_DIR/self.txt" 2>/dev/null || true
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$RUN_DIR/inclusive.txt" 2>/dev/null || true
  head -80 "$RUN_DIR/self.txt" >"$OUT/callgrind-$kind-$label-self.txt"
  head -120 "$RUN_DIR/inclusive.txt" >"$OUT/callgrind-$kind-$label-inclusive.txt"
  local ir; ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  record "$(python3 bench/report.py wrk-record e "$label" 0 1 "$load" "$RUN_DIR/wrk.txt" \
    "{\"instructions\": ${ir:-0}, \"kind\": \"$kind\", \"config\": $SVC_CONFIG_JSON}")"
  stop "$SVC_PID"
  rm -f "$RUN_DIR"/callgrind.out.*
}

# ---------------------------------------------------------------- f: normalising recordings
# Criterion on one core (the goal is per core); its medians go into the report.
scenario_f() {
  log "f: normalising 30 s recordings (criterion, one core)"
  local time=10; [[ $MODE == quick ]] && time=2
  command_line f "taskset -c 1 cargo bench --locked --bench audio -- --measurement-time $time"
  rm -rf "$ROOT/target/criterion/normalise 30 s"
  taskset -c 1 cargo bench --locked --bench audio -- --measurement-time "$time" >"$OUT/criterion-audio.txt" 2>&1
  local dir
  for dir in "$ROOT/target/criterion/normalise 30 s"/*/; do
    [[ -f $dir/new/estimates.json ]] || continue
    record "$(python3 bench/report.py criterion-record f "$(basename "$dir")" "$dir/new/estimates.json")"
  done
}

[[ $SCENARIOS == *a* ]] && scenario_a
[[ $SCENARIOS == *b* ]] && scenario_b
[[ $SCENARIOS == *c* ]] && scenario_c
[[ $SCENARIOS == *d* ]] && scenario_d
[[ $SCENARIOS == *e* ]] && scenario_e
[[ $SCENARIOS == *f* ]] && scenario_f
# shellcheck source=bench/scenario_h.sh
source "$ROOT/bench/scenario_h.sh"
[[ $SCENARIOS == *h* ]] && scenario_h
# shellcheck source=bench/scenario_s.sh
source "$ROOT/bench/scenario_s.sh"
[[ $SCENARIOS == *s* ]] && scenario_s

REPORT="$ROOT/BENCHMARKS.md"
[[ $MODE == quick ]] && REPORT="$OUT/BENCHMARKS.md"
# Sections of scenarios not run this time are kept from the real report (quick runs too).
python3 bench/report.py write "$OUT" "$REPORT" "$ROOT/BENCHMARKS.md"
log "wrote $REPORT"
