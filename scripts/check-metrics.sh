#!/usr/bin/env bash
# Lints a running instance's /metrics with promtool (names, HELP/TYPE lines, counters ending
# in _total, histogram structure...). Usage: scripts/check-metrics.sh http://127.0.0.1:8000
# Only loopback targets are intended (tests, CI); promtool reads the exposition from stdin.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 <base-url>   e.g. $0 http://127.0.0.1:8000" >&2
    exit 2
fi
base="${1%/}"
url="$base/metrics"
[ "${base##*/}" = metrics ] && url="$base"

if ! command -v promtool >/dev/null 2>&1; then
    echo "check-metrics: promtool not found; run scripts/install-ci-tools.sh" >&2
    exit 1
fi

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
curl --fail --silent --show-error --max-time 10 "$url" >"$body"
if [ ! -s "$body" ]; then
    echo "check-metrics: $url answered an empty body" >&2
    exit 1
fi
# promtool prints each lint finding (e.g. a counter without _total) and exits non-zero
# (3 with promtool 2.42) on any finding or parse error.
promtool check metrics <"$body"
# One name per upstream across metrics, so that a query can join them (an operation's latency to
# its upstream's breaker): every `provider` and every non-Redis `service` value must be an
# `upstream` value too (src/metrics/labels.rs spells them once).
labels="$(grep -v '^#' "$body" | grep -oE '[{,](upstream|provider|service)="[^"]*"' | tr -d '{,' | sort -u)"
upstreams="$(sed -n 's/^upstream="\(.*\)"$/\1/p' <<<"$labels")"
strays=""
while IFS= read -r pair; do
    value="${pair#*=}"
    value="${value//\"/}"
    case "$value" in redis | redis_limits) continue ;; esac
    grep -qxF "$value" <<<"$upstreams" || strays="$strays $pair"
done < <(grep -E '^(provider|service)=' <<<"$labels")
if [ -n "$strays" ]; then
    echo "check-metrics: label values naming no upstream (upstream=$(echo $upstreams | tr ' ' '|')):$strays" >&2
    exit 1
fi
echo "check-metrics: $url OK ($(grep -c '^# TYPE' "$body") metric families)"
