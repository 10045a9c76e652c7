#!/usr/bin/env bash
# Cached hits and cache misses with the service on one Redis and on a 3-master Redis Cluster
# (3 masters + 3 replicas), in one run, for BENCHMARKS.md section g:
#
#   bash bench/redis-topologies.sh [SECONDS]    (default 10 per measurement)
#
# Everything on 127.0.0.1 and free ports; the standalone simulator (50 ms) is the upstream; the
# service runs as in Kubernetes (redis_only, JSON logs) with both rate limiters on, set high
# enough never to refuse (so each request pays the limiter's Redis script, as in production).
# Hits: wrk's same_body.lua; misses: unique_analyze.lua. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
source bench/standalone.sh redis-topologies wrk redis-server redis-cli
# A port whose cluster bus port (+10000) is also below 65536.
cluster_port() { local p; while p=$(free_port); ((p > 55000)); do :; done; echo "$p"; }
wait_redis() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done; exit 1; }

SINGLE=$(free_port)
redis-server --bind 127.0.0.1 --port "$SINGLE" --save '' --appendonly no --dir "$TMP" >/dev/null &
PIDS+=($!)
wait_redis "$SINGLE"
NODES=()
for i in 1 2 3 4 5 6; do
  port=$(cluster_port)
  mkdir -p "$TMP/node-$port"
  redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-node-timeout 1000 \
    --cluster-config-file "nodes-$port.conf" --dir "$TMP/node-$port" --save '' --appendonly no >/dev/null &
  PIDS+=($!)
  NODES+=("$port")
done
for port in "${NODES[@]}"; do wait_redis "$port"; done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${NODES[@]}") --cluster-replicas 1 --cluster-yes >/dev/null
for _ in $(seq 100); do
  redis-cli -p "${NODES[0]}" cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.1
done
SEEDS=$(printf 'redis://127.0.0.1:%s,' "${NODES[@]}"); SEEDS=${SEEDS%,}

SIM=$(free_port)
SIMULATOR_LATENCY_MS=50 RUST_LOG=warn "$BIN" simulator "$SIM" >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5

start_service() { # PORT VAR=value...
  local port=$1; shift
  env BIND_ADDRESS=127.0.0.1 PORT="$port" CACHE_MODE=redis_only LOG_FORMAT=json RATE_LIMIT_PER_MINUTE=1000000000 \
    RATE_LIMIT_PER_KEY_PER_MINUTE=1000000000 \
    AZURE_SPEECH_KEY=bench AZURE_SPEECH_ENDPOINT="http://127.0.0.1:$SIM" GEMINI_API_KEY=bench \
    GEMINI_BASE_URL="http://127.0.0.1:$SIM" UPSTREAM_HTTP2_PRIOR_KNOWLEDGE=true "$@" "$BIN" >>"$TMP/service.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && return; sleep 0.1; done
  exit 1
}
ON_SINGLE=$(free_port); start_service "$ON_SINGLE" REDIS_URL="redis://127.0.0.1:$SINGLE/0"
ON_CLUSTER=$(free_port); start_service "$ON_CLUSTER" REDIS_CLUSTER_NODES="$SEEDS"

printf '%s' '{"text":"I go to the store yesterday and buy three apple.","user_id":"bench"}' >"$TMP/body.json"
export BENCH_BODY_FILE="$TMP/body.json"
measure() { # LABEL URL SCRIPT [ARGS]
  local label=$1 url=$2 script=$3; shift 3
  # The warm-up's texts must not be the measured run's (a miss would become a hit): its own run id.
  local warm=("$@")
  ((${#warm[@]} == 0)) || warm[-1]="${warm[-1]}-warm-up"
  wrk -t2 -c64 -d2s -s "$script" "$url" "${warm[@]}" >/dev/null
  wrk -t2 -c64 "-d${SECONDS_EACH}s" --latency -s "$script" "$url" "$@" >"$TMP/wrk.txt"
  python3 - "$label" "$TMP/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[2]).read()
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"| {sys.argv[1]} | {rate:,.0f} | {ms(50):.2f} | {ms(99):.2f} | {errors.group(1) if errors else 0} |")
PY
}
echo "| configuration | req/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|"
for target in single:$ON_SINGLE cluster:$ON_CLUSTER; do
  name=${target%%:*} port=${target##*:}
  url="http://127.0.0.1:$port/api/analyze"
  curl -fsS -o /dev/null -X POST -H 'content-type: application/json' --data-binary @"$TMP/body.json" "$url"
  measure "hits, $name Redis" "$url" bench/same_body.lua
done
for target in single:$ON_SINGLE cluster:$ON_CLUSTER; do
  name=${target%%:*} port=${target##*:}
  measure "misses (50 ms upstream), $name Redis" "http://127.0.0.1:$port/api/analyze" bench/unique_analyze.lua -- "$name-$$"
done
echo
echo "keys per master after the run: $(for p in "${NODES[@]}"; do
  role=$(redis-cli -p "$p" role | head -1); [[ $role == master ]] && printf '%s ' "$(redis-cli -p "$p" dbsize)"; done)"
