# Scenario s of bench/run.sh, which sources this file (its helpers, variables and PIDS).
#
# The disk tier's stall (issue 25): CACHE_MODE=tiered, the private Redis, the simulator at 0 ms,
# a fresh DISK_CACHE_DIR, then two phases back to back on the same service:
#   phase1  wrk -t2 -c64 -d8s of texts no earlier request used (unique_analyze.lua): every
#           request a miss, a disk write each
#   phase2  wrk -t1 -c4 -d8s of the same generator and run id, so its first texts repeat
#           phase 1's (hits from memory, Redis or disk) and the rest are new misses
# Before the fix, phase 2 stalled: every in-flight request ended at the same instant after
# about 1.1 s, p99 about 1 s (bench/FINDINGS.md, finding 11). Recorded per run: both phases'
# wrk figures, their max latency, and the disk tier's own figures from /health/cache.
# Beside them, per run, the reference for issue 25's goal (tiered misses at least 0.5x
# redis_only's throughput, p99 at most 2x): phase 1's load against a fresh service in
# CACHE_MODE=redis_only, before the tiered pair in odd runs and after it in even ones.

scenario_s() {
  # BENCH_S_SECONDS: the issue's 8 s phases in a --quick run too (quick's own is 3 s).
  local S_SECONDS=${BENCH_S_SECONDS:-$S_SECONDS}
  log "s: the disk tier under a burst of misses, then a trickle (two phases), CACHE_MODE=tiered, service configuration: $CONFIG"
  start_simulator 0
  service_config 0
  local tiered_json=${SVC_CONFIG_JSON/\"redis_only\"/\"tiered\"} run phase health extra max_ms
  # s_redis_only RUN: phase 1's load against CACHE_MODE=redis_only, recorded as redis_only-phase1.
  s_redis_only() {
    start_service "$SIM_PORT" "${SVC_CONFIG[@]}"
    local load
    load=$(load1)
    wrk_run "s/redis_only-phase1" "$RUN_DIR/wrk.txt" -t2 -c64 "-d${S_SECONDS}s" --latency -s bench/unique_analyze.lua "http://127.0.0.1:$SVC_PORT" -- "sr$1$$"
    record "$(python3 bench/report.py wrk-record s redis_only-phase1 0 "$1" "$load" "$RUN_DIR/wrk.txt" "{\"config\": $SVC_CONFIG_JSON}")"
    stop "$SVC_PID"
  }
  for run in $(seq "$RUNS"); do
    local dir="$RUN_DIR/s$run"
    mkdir -p "$dir"
    ((run % 2 == 0)) || s_redis_only "$run"
    start_service "$SIM_PORT" "${SVC_CONFIG[@]}" CACHE_MODE=tiered DISK_CACHE_DIR="$dir/disk-cache"
    METRIC_PORT=$SVC_PORT
    local run_id="s$run$$"
    for phase in phase1 phase2; do
      local load
      load=$(load1)
      case $phase in
        phase1) wrk_run "s/$phase" "$RUN_DIR/wrk.txt" -t2 -c64 "-d${S_SECONDS}s" --latency -s bench/unique_analyze.lua "http://127.0.0.1:$SVC_PORT" -- "$run_id" ;;
        phase2) wrk_run "s/$phase" "$RUN_DIR/wrk.txt" -t1 -c4 "-d${S_SECONDS}s" --latency -s bench/unique_analyze.lua "http://127.0.0.1:$SVC_PORT" -- "$run_id" ;;
      esac
      max_ms=$(python3 -c 'import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", t)
v = m.group(1) if m else "0ms"
n = float(re.match(r"[\d.]+", v).group(0))
print(n * {"us": 0.001, "ms": 1, "s": 1000}[re.sub(r"[\d.]+", "", v)])' "$RUN_DIR/wrk.txt")
      health=$(curl -fsS "http://127.0.0.1:$SVC_PORT/health/cache" | python3 -c 'import json, sys
h = json.load(sys.stdin); d = h.get("disk") or {}; c = h["counts"].get("disk", {})
print(json.dumps({k: d.get(k) for k in ("entries", "bytes", "max_bytes", "queued")} | {"sets": c.get("sets"), "set_dropped": c.get("set_dropped")}))')
      extra="\"config\": $tiered_json, \"max_ms\": $max_ms, \"disk\": $health"
      record "$(python3 bench/report.py wrk-record s "tiered-$phase" 0 "$run" "$load" "$RUN_DIR/wrk.txt" "{$extra}")"
    done
    unset METRIC_PORT
    stop "$SVC_PID"
    ((run % 2 == 1)) || s_redis_only "$run"
  done
  stop "$SIM_PID"
}
