#!/usr/bin/env bash
# Every test the project has: the README's test command and what CI runs.
# Installs what the tests need and is missing (redis-server, promtool, the manifest validator,
# Schemathesis, Chromium and Playwright), then runs the Rust tests, the OpenAPI fuzzing, the pages
# in a real browser and the operational checks (the Grafana dashboard against a real Prometheus,
# the container image built and run with podman).
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-ci-tools.sh
cargo test --locked --all-targets --no-fail-fast
bash scripts/check-openapi.sh
bash scripts/check-browser.sh
bash scripts/check-prometheus.sh
bash scripts/check-dashboard.sh
bash scripts/check-manifests.sh
bash scripts/check-image.sh
