#!/usr/bin/env bash
# Where a cached hit's and a miss's CPU goes, in the production configuration (redis_only, auth,
# both rate limits, JSON logs): `perf record` of the release binary under `wrk -t2 -c4` (misses,
# the built-in simulator at 0 ms as the upstream) and `wrk -t2 -c64` (hits), then the top
# symbols, grouped. For BENCHMARKS.md's "where the time goes". Needs perf (Debian linux-perf).
#
#   bash bench/profile-hot-path.sh [SECONDS]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
source bench/standalone.sh profile-hot-path perf wrk redis-server
REDIS=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS" --save '' --appendonly no --dir "$TMP" >/dev/null &
PIDS+=($!)
SIM=$(free_port)
SIMULATOR_LATENCY_MS=0 RUST_LOG=warn "$BIN" simulator "$SIM" >/dev/null 2>&1 &
PIDS+=($!)
PORT=$(free_port)
env BIND_ADDRESS=127.0.0.1 PORT="$PORT" CACHE_MODE=redis_only REDIS_URL="redis://127.0.0.1:$REDIS/0" \
  API_KEYS=profile-key RATE_LIMIT_PER_MINUTE=1000000000 RATE_LIMIT_PER_KEY_PER_MINUTE=1000000000 LOG_FORMAT=json \
  AZURE_SPEECH_KEY=p AZURE_SPEECH_ENDPOINT="http://127.0.0.1:$SIM" GEMINI_API_KEY=p GEMINI_BASE_URL="http://127.0.0.1:$SIM" \
  UPSTREAM_HTTP2_PRIOR_KNOWLEDGE=true "$BIN" >"$TMP/service.log" 2>&1 &
SVC=$!
PIDS+=($SVC)
for _ in $(seq 300); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break; sleep 0.1; done
export BENCH_API_KEY=profile-key BENCH_USER_ID=profiler
printf '%s' '{"text":"I go to the store yesterday and buy three apple."}' >"$TMP/body.json"
export BENCH_BODY_FILE="$TMP/body.json"
url="http://127.0.0.1:$PORT/api/analyze"
curl -fsS -o /dev/null -X POST -H 'content-type: application/json' -H "X-API-Key: $BENCH_API_KEY" --data-binary @"$TMP/body.json" "$url"

profile() { # NAME WRK-ARGS... (the URL among them)
  local name=$1; shift
  wrk "$@" >/dev/null &
  local load=$!
  sleep 1
  perf record -F 997 -g -p "$SVC" -o "$TMP/$name.data" -- sleep "$SECONDS_EACH" >/dev/null 2>&1
  wait "$load" || true
  echo "== $name: kernel vs user, then the top symbols (self time, share of the service's samples)"
  perf report -i "$TMP/$name.data" --no-children --sort dso --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | sed -E 's/ +/ /g' | head -8 || true
  perf report -i "$TMP/$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | sed -E 's/ +/ /g' | cut -c1-140 | head -30 || true
  echo
}
profile misses -t2 -c4 "-d$((SECONDS_EACH + 2))s" -s bench/unique_analyze.lua "$url" -- "profile-$$"
profile hits -t2 -c64 "-d$((SECONDS_EACH + 2))s" -s bench/same_body.lua "$url"
