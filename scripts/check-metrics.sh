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
echo "check-metrics: $url OK ($(grep -c '^# TYPE' "$body") metric families)"
