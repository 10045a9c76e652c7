# Scenario h of bench/run.sh, which sources this file (its helpers, variables and PIDS).
#
# Cache misses at c=4 against a static upstream stub: what the service adds to an upstream call,
# beside what an nginx proxy hop adds to the same call. Four targets, each `wrk -t2 -c4`:
#   service         POST /api/analyze, a new text per request (unique_analyze.lua), the service
#                   in its configuration (service_config), CACHE_MODE=redis_only, upstream = stub
#   service-tiered  the same with CACHE_MODE=tiered (memory + Redis + disk), so a disk-tier
#                   stall on the miss path shows against redis_only
#   nginx-hop       the service's own Gemini request (captured) through nginx `proxy_pass` to the stub
#   stub            the same request straight to the stub
# The stub is nginx answering every request with one canned generateContent reply: the
# simulator's answer to the captured request, saved once. It listens twice: HTTP/1.1 (wrk, the
# hop) and h2c (the service, which reaches Gemini over HTTP/2 as in production). Added latency
# = target minus stub, per run (back to back), then the median over runs.

# start_nginx_in DIR: nginx with DIR/nginx.conf; sets STARTED_PID.
start_nginx_in() {
  "$NGINX" -c "$1/nginx.conf" -p "$1" &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

scenario_h() {
  log "h: cache misses at c=4 against a static stub: service vs an nginx hop ($NGINX_WORKERS worker(s)), service configuration: $CONFIG"
  local dir="$RUN_DIR/h"
  mkdir -p "$dir/stub/www" "$dir/stub/tmp" "$dir/hop/tmp" "$dir/disk-cache"

  # The Gemini request the service sends, for the sentence scenario b uses.
  capture_gemini_request
  python3 - "$RUN_DIR/gemini.json" "$dir/request.json" <<'EOF'
import sys
text = open(sys.argv[1]).read()
assert "Benchmark placeholder sentence." in text
open(sys.argv[2], "w").write(text.replace("Benchmark placeholder sentence.", "I go to the store yesterday and buy three apple."))
EOF
  # The stub's reply: the simulator's, at 0 ms, to that very request.
  start_simulator 0
  curl -fsS -X POST -H 'content-type: application/json' -H 'x-goog-api-key: bench' \
    --data-binary @"$dir/request.json" -o "$dir/stub/www/reply.json" "http://127.0.0.1:$SIM_PORT$GEMINI_PATH"
  stop "$SIM_PID"
  grep -q '"candidates"' "$dir/stub/www/reply.json" || { echo "h: the simulator gave no generateContent reply" >&2; exit 1; }
  cp "$dir/stub/www/reply.json" "$OUT/stub-reply.json"

  STUB_PORT=$(free_port) STUB_H2_PORT=$(free_port) HOP_PORT=$(free_port)
  nginx_head "$dir/stub" >"$dir/stub/nginx.conf"
  cat >>"$dir/stub/nginx.conf" <<EOF
  server {
    listen 127.0.0.1:$STUB_PORT;
    listen 127.0.0.1:$STUB_H2_PORT http2;
    root $dir/stub/www;
    location / {
      # Any path, any method: the one canned reply. The static module answers POST with 405;
      # error_page serves the file instead.
      default_type application/json;
      rewrite ^ /reply.json break;
      error_page 405 =200 /reply.json;
    }
  }
}
EOF
  start_nginx_in "$dir/stub"
  local stub_pid=$STARTED_PID
  nginx_head "$dir/hop" >"$dir/hop/nginx.conf"
  cat >>"$dir/hop/nginx.conf" <<EOF
  upstream stub {
    server 127.0.0.1:$STUB_PORT;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$HOP_PORT;
    location / {
      proxy_pass http://stub;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  start_nginx_in "$dir/hop"
  local hop_pid=$STARTED_PID
  local stub_url="http://127.0.0.1:$STUB_PORT$GEMINI_PATH" hop_url="http://127.0.0.1:$HOP_PORT$GEMINI_PATH"
  wait_http "$stub_url"
  wait_http "$hop_url"
  cmp -s <(curl -fsS -X POST --data-binary @"$dir/request.json" "$hop_url") "$dir/stub/www/reply.json" \
    || { echo "h: the nginx hop does not return the stub's reply" >&2; exit 1; }

  # The two services, both on the stub's h2c port.
  service_config 0
  local redis_json=$SVC_CONFIG_JSON tiered_json=${SVC_CONFIG_JSON/\"redis_only\"/\"tiered\"}
  start_service "$STUB_H2_PORT" "${SVC_CONFIG[@]}"
  local svc_port=$SVC_PORT svc_pid=$SVC_PID
  start_service "$STUB_H2_PORT" "${SVC_CONFIG[@]}" CACHE_MODE=tiered DISK_CACHE_DIR="$dir/disk-cache"
  local tiered_port=$SVC_PORT tiered_pid=$SVC_PID
  local port reply
  for port in "$svc_port" "$tiered_port"; do
    # The service must take the stub's reply as Gemini's: 200 and an analysis.
    reply=$(curl -sS -w '\n%{http_code}' -X POST -H 'content-type: application/json' "${CLIENT_HEADERS[@]}" \
      -d "{\"text\":\"I go to the store yesterday check$port.\",\"user_id\":\"bench\"}" "http://127.0.0.1:$port/api/analyze")
    [[ ${reply##*$'\n'} == 200 && $reply == *'"success":true'* ]] \
      || { echo "h: the service on port $port refused the stub's reply: $reply" >&2; exit 1; }
  done

  export BENCH_BODY_FILE="$dir/request.json"
  local targets=(service service-tiered nginx-hop stub) target run load i hits_before calls_before hits calls extra
  local -A url=([service]="http://127.0.0.1:$svc_port" [service-tiered]="http://127.0.0.1:$tiered_port"
    [nginx-hop]=$hop_url [stub]=$stub_url)
  local -A config=([service]="$redis_json" [service-tiered]="$tiered_json"
    [nginx-hop]="{\"server\": \"nginx proxy_pass\", \"nginx_workers\": \"$NGINX_WORKERS\"}"
    [stub]="{\"server\": \"nginx stub\", \"nginx_workers\": \"$NGINX_WORKERS\"}")
  h_wrk() { # TARGET RUNID SECONDS [LABEL]: wrk -t2 -c4 against TARGET into $RUN_DIR/wrk.txt
    local target=$1 run_id=$2 seconds=$3 label=${4:-} cmd
    case $target in
      service*) cmd=(-t2 -c4 "-d${seconds}s" --latency -s bench/unique_analyze.lua "${url[$target]}" -- "$run_id") ;;
      *) cmd=(-t2 -c4 "-d${seconds}s" --latency -s bench/same_body.lua "${url[$target]}") ;;
    esac
    if [[ -n $label ]]; then wrk_run "$label" "$RUN_DIR/wrk.txt" "${cmd[@]}"; else wrk "${cmd[@]}" >/dev/null; fi
  }
  for target in "${targets[@]}"; do h_wrk "$target" "hwarm$target$$" 2; done
  for run in $(seq "$RUNS"); do
    # A different order each run, so no target always follows the same one.
    for i in 0 1 2 3; do
      target=${targets[$(((i + run - 1) % 4))]}
      METRIC_PORT=$svc_port
      [[ $target == service-tiered ]] && METRIC_PORT=$tiered_port
      hits_before=$(metric 'cache_operations_total[{].*operation="get".*result="hit"')
      calls_before=$(metric 'ai_operation_duration_seconds_count[{].*operation="analyze"')
      load=$(load1)
      h_wrk "$target" "h$run$target$$" "$H_SECONDS" "h/$target"
      extra="\"config\": ${config[$target]}"
      if [[ $target == service* ]]; then
        hits=$(( $(metric 'cache_operations_total[{].*operation="get".*result="hit"') - hits_before ))
        calls=$(( $(metric 'ai_operation_duration_seconds_count[{].*operation="analyze"') - calls_before ))
        extra="$extra, \"cache_hits\": $hits, \"upstream_calls\": $calls, \"upstream\": \"h2c\""
      fi
      record "$(python3 bench/report.py wrk-record h "$target" 0 "$run" "$load" "$RUN_DIR/wrk.txt" "{$extra}")"
    done
  done
  unset METRIC_PORT
  stop "$svc_pid"
  stop "$tiered_pid"
  stop "$hop_pid"
  stop "$stub_pid"
}
