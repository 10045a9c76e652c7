#!/usr/bin/env bash
# Proves the Grafana dashboard (deploy/grafana/backend-ai.json) against a real Prometheus:
#   1. the file is a dashboard Grafana imports as is: unique panel ids, every query on the
#      ${DS_PROMETHEUS} data source variable, the variables it uses defined;
#   2. every alert's runbook section in docs/operations.md links a panel that exists;
#   3. Debian's `prometheus` (loopback, free port, 1 s scrapes) scrapes the debug binary running
#      on the simulator (with a private redis-server, so the Redis panels have series, and some
#      simulated upstream failures, so the error panels do) while a short load goes through every
#      endpoint; then every panel's every query runs through Prometheus' HTTP API and the check
#      fails on a query that errors or returns no series.
# Needs prometheus and redis-server (Debian packages; installed when missing) and cargo.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dashboard="$root/deploy/grafana/backend-ai.json"
log() { printf 'check-dashboard: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/debian.sh
. "$root/scripts/lib/debian.sh"
need redis-server redis-server
need curl curl
if ! command -v prometheus >/dev/null 2>&1; then
    # Its postinst would start a daemon on :9090 where there is no systemd: policy-rc.d says no,
    # as in install-ci-tools.sh (only when the machine has no policy of its own).
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        own_policy=1
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    fi
    need prometheus prometheus
    [ "$own_policy" -eq 0 ] || as_root rm -f /usr/sbin/policy-rc.d
fi

echo "== dashboard structure and runbook links"
python3 - "$dashboard" "$root/prometheus/alerts.yml" "$root/docs/operations.md" <<'PY'
import json, re, sys

dash = json.load(open(sys.argv[1]))
problems = []
variables = {v["name"]: v for v in dash["templating"]["list"]}
if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource" or variables["DS_PROMETHEUS"].get("query") != "prometheus":
    problems.append("no DS_PROMETHEUS data source variable of type prometheus")
panels = [p for top in dash["panels"] for p in [top] + top.get("panels", [])]
ids = [p["id"] for p in panels]
if len(ids) != len(set(ids)):
    problems.append(f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}")
builtin = {"__rate_interval", "__interval", "__range"}
for p in panels:
    if p["type"] == "row":
        continue
    if not p.get("title") or not p.get("gridPos") or not p.get("targets"):
        problems.append(f"panel {p['id']}: needs a title, gridPos and targets")
    for t in [p] + p.get("targets", []):
        if t.get("datasource") != {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}:
            problems.append(f"panel {p['id']} ({p.get('title')}): data source is not ${{DS_PROMETHEUS}}")
    for t in p.get("targets", []):
        for name in re.findall(r"\$\{?(\w+)", t["expr"]):
            if name not in variables and name not in builtin:
                problems.append(f"panel {p['id']}: query uses undefined variable ${name}")
for v in variables.values():
    if v["type"] == "query" and v["datasource"] != {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}:
        problems.append(f"variable {v['name']}: data source is not ${{DS_PROMETHEUS}}")

# Each alert's runbook section (### Name up to the next heading) links its panel:
# `/d/backend-ai/backend-ai?viewPanel=N`, N an id of a panel of this dashboard.
import yaml
alerts = [r["alert"] for g in yaml.safe_load(open(sys.argv[2]))["groups"] for r in g["rules"] if "alert" in r]
sections, current = {}, None
for line in open(sys.argv[3]):
    if line.startswith("#"):
        current = line.lstrip("#").strip()
        sections[current] = ""
    elif current:
        sections[current] += line
titles = {p["id"]: p.get("title") for p in panels if p["type"] != "row"}
for alert in alerts:
    links = [int(n) for n in re.findall(r"viewPanel=(\d+)", sections.get(alert, ""))]
    if not links:
        problems.append(f"runbook section {alert}: links no dashboard panel (viewPanel=N)")
    for n in links:
        if n not in titles:
            problems.append(f"runbook section {alert}: viewPanel={n} is no panel of the dashboard")
if problems:
    print("\n".join(f"  FAILED: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(titles)} panels, {sum(len(p.get('targets', [])) for p in panels)} queries; {len(alerts)} alerts link a panel")
PY

echo "== every panel's query against a real Prometheus"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --locked --quiet --bin backend-ai)
binary="$CARGO_TARGET_DIR/debug/backend-ai"

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for URL WHAT
    for _ in $(seq 1 150); do
        curl --silent --fail --max-time 1 "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "FAILED: $2 did not come up ($1)"
    cat "$tmp"/*.log >&2 || true
    exit 1
}

redis_port="$(free_port)"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$tmp" \
    >"$tmp/redis.log" 2>&1 &
pids+=($!)

service_port="$(free_port)"
# Upstream faults in the simulator so that error, retry and fallback panels have something (a
# fallback model, so that analyses the faults hit are handed over);
# a small per-user limit that one user of the load exceeds.
BIND_ADDRESS=127.0.0.1 PORT="$service_port" API_KEYS=dashboard-key CACHE_MODE=tiered \
    REDIS_URL="redis://127.0.0.1:$redis_port/0" DISK_CACHE_DIR="$tmp/cache" \
    RATE_LIMIT_PER_MINUTE=30 GEMINI_FALLBACK_MODELS=gemini-2.5-flash-lite SIMULATOR_SERVER_ERROR_RATE=0.2 SIMULATOR_MALFORMED_RATE=0.3 \
    LOG_FORMAT=json RUST_LOG=warn \
    "$binary" >"$tmp/service.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$service_port"
wait_for "$base/health" "the service"

prom_port="$(free_port)"
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: backend-ai-local
    static_configs:
      - targets: ["127.0.0.1:$service_port"]
        labels:
          namespace: local
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
prom="http://127.0.0.1:$prom_port"
wait_for "$prom/-/ready" "prometheus"

log "load through every endpoint for about 20 s"
wav="$root/examples/hello.wav"
api() { # api PATH USER CURL-ARGS...: prints the status
    local path="$1" user="$2"
    shift 2
    curl --silent --output /dev/null --write-out '%{http_code}\n' --max-time 30 "$base$path" \
        -H 'X-API-Key: dashboard-key' -H "X-User-ID: $user" "$@"
}
statuses="$tmp/statuses"
end=$((SECONDS + 20))
round=0
while [ "$SECONDS" -lt "$end" ]; do
    round=$((round + 1))
    user="learner-$((round % 4))"
    # New texts (misses), then a repeat (a hit).
    load=()
    api /api/analyze "$user" -H 'Content-Type: application/json' \
        -d "{\"text\": \"I go to the store yesterday number $round.\", \"user_id\": \"$user\"}" >>"$statuses" &
    load+=($!)
    api /api/analyze "$user" -H 'Content-Type: application/json' \
        -d '{"text": "She have two cat.", "user_id": "repeat"}' >>"$statuses" &
    load+=($!)
    api /api/transcribe "$user" -F "audio=@$wav" -F language=en-US >>"$statuses" &
    load+=($!)
    api /api/pronunciation "$user" -F "audio=@$wav" -F "reference_text=Hello number $round" >>"$statuses" &
    load+=($!)
    wait "${load[@]}"
    # A validation error, an unauthorised call, a 404, and the operations endpoints.
    api /api/analyze "$user" -H 'Content-Type: application/json' -d '{"text": ""}' >>"$statuses"
    curl --silent --output /dev/null --write-out '%{http_code}\n' "$base/api/analyze" -d '{}' >>"$statuses"
    curl --silent --output /dev/null --write-out '%{http_code}\n' "$base/no-such-route" >>"$statuses"
    for path in /health /health/ready /health/cache /health/upstreams /openapi.json /docs; do
        curl --silent --output /dev/null --fail "$base$path" || { log "FAILED: $path"; exit 1; }
    done
    # One user over RATE_LIMIT_PER_MINUTE: 429s.
    if [ "$round" -eq 2 ]; then
        for _ in $(seq 1 35); do
            api /api/analyze burst -H 'Content-Type: application/json' \
                -d '{"text": "Burst text.", "user_id": "burst"}' >>"$statuses"
        done
    fi
done
log "answers: $(sort "$statuses" | uniq -c | tr -s ' \n' ' ')"
# Two more scrapes after the load, so rates see its end.
sleep 3

python3 - "$dashboard" "$prom" <<'PY'
import json, sys, urllib.parse, urllib.request

dash, prom = json.load(open(sys.argv[1])), sys.argv[2]
panels = [p for top in dash["panels"] for p in [top] + top.get("panels", [])]
# What Grafana would substitute: every namespace and job, a rate window of several scrapes.
substitutions = {"$namespace": ".*", "$job": ".*", "$__rate_interval": "1m"}
# Every series starts at zero, so "has series" alone proves little: the panels the load surely
# moves must show a value above zero in their first query. (Random faults, 5xx and retries, are
# left out of this.)
moved = {
    "Request rate by route and status", "Errors by route and status", "API latency quantiles",
    "p95 latency by route", "Scrape health", "Cache hit ratio", "Cache operations by tier and result",
    "Upstream latency by operation", "Rate-limit refusals", "Refused share of API requests",
    "Redis health", "Redis slot coverage", "Analysis parse quality", "Audio seconds sent to Azure",
    "Gemini tokens", "Recordings taken in",
}
titles = {p.get("title") for p in panels}
assert moved <= titles, f"not panels of the dashboard: {moved - titles}"
failed = 0
for p in panels:
    for t in p.get("targets", []):
        expr = t["expr"]
        for name, value in substitutions.items():
            expr = expr.replace(name, value)
        url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = json.load(urllib.request.urlopen(url, timeout=10))
        except urllib.error.HTTPError as e:
            answer = json.load(e)
        if answer.get("status") != "success":
            print(f"  FAILED: panel {p['id']} {p['title']!r} {t['refId']}: {answer.get('error')}\n    {expr}", file=sys.stderr)
            failed += 1
        elif not answer["data"]["result"]:
            print(f"  FAILED: panel {p['id']} {p['title']!r} {t['refId']}: no series\n    {expr}", file=sys.stderr)
            failed += 1
        elif p["title"] in moved and t["refId"] == "A" and not any(float(s["value"][1]) > 0 for s in answer["data"]["result"]):
            print(f"  FAILED: panel {p['id']} {p['title']!r} {t['refId']}: no series above zero after the load\n    {expr}", file=sys.stderr)
            failed += 1
        else:
            series = answer["data"]["result"]
            print(f"  ok  panel {p['id']:>2} {t['refId']} {p['title']}: {len(series)} series")
if failed:
    sys.exit(1)
PY

echo "check-dashboard: OK"
