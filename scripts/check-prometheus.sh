#!/usr/bin/env bash
# Checks the Prometheus files: rule syntax, the alert unit tests, and the server config.
# Needs promtool (scripts/install-ci-tools.sh). Exits non-zero on the first failure.
#
# Debian's promtool (package prometheus 2.42) is built without Kubernetes service discovery, so
# it rejects `kubernetes_sd_configs` as an unknown field. When that happens the config is
# checked in two parts: promtool checks a copy where each kubernetes_sd_configs block is
# replaced by an equivalent file_sd_configs block (so everything else — relabel regexes, rule
# files, intervals — is still promtool's verdict), and the Kubernetes SD blocks themselves are
# checked for known keys and roles here. An upstream promtool checks the file as it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/prometheus"
CI_TOOLS_DIR="${CI_TOOLS_DIR:-/opt/backend-ai-ci}"

if ! command -v promtool >/dev/null 2>&1; then
    echo "check-prometheus: promtool not found; run scripts/install-ci-tools.sh" >&2
    exit 1
fi
python="$CI_TOOLS_DIR/venv/bin/python"
[ -x "$python" ] || python="$(command -v python3)"

echo "== promtool check rules"
promtool check rules "$dir/alerts.yml"

echo "== promtool test rules"
# rule_files in the test file are relative to the test file's directory.
(cd "$dir" && promtool test rules alerts_test.yml)

echo "== promtool check config"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if promtool check config "$dir/prometheus.yml" >"$tmp/out" 2>&1; then
    cat "$tmp/out"
elif grep -q "field kubernetes_sd_configs not found" "$tmp/out"; then
    echo "promtool lacks Kubernetes SD (Debian build): checking a file_sd copy plus the SD blocks"
    # The copy lives in a temporary directory, so rule files (relative to the config file) are
    # linked next to it to keep their relative paths valid.
    "$python" - "$dir/prometheus.yml" "$tmp/prometheus.yml" <<'PY'
import sys
import yaml

source, target = sys.argv[1], sys.argv[2]
# An empty target list, so promtool has a real file to check instead of warning about a
# missing one.
stand_in = target.rsplit("/", 1)[0] + "/kubernetes-sd-stand-in.json"
with open(stand_in, "w") as f:
    f.write("[]\n")
with open(source) as f:
    config = yaml.safe_load(f)

roles = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}
keys = {
    "role", "api_server", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
    "basic_auth", "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
    "proxy_connect_header", "follow_redirects", "enable_http2", "tls_config",
}
problems = []
for job in config.get("scrape_configs") or []:
    blocks = job.pop("kubernetes_sd_configs", None)
    if blocks is None:
        continue
    name = job.get("job_name", "?")
    if not isinstance(blocks, list) or not blocks:
        problems.append(f"{name}: kubernetes_sd_configs must be a non-empty list")
        continue
    for block in blocks:
        if not isinstance(block, dict):
            problems.append(f"{name}: kubernetes_sd_configs entry is not a mapping")
            continue
        if block.get("role") not in roles:
            problems.append(f"{name}: kubernetes_sd_configs role {block.get('role')!r} not one of {sorted(roles)}")
        for key in sorted(set(block) - keys):
            problems.append(f"{name}: kubernetes_sd_configs has unknown field {key!r}")
    job.setdefault("file_sd_configs", []).append({"files": [stand_in]})
if problems:
    print("\n".join(f"  FAILED: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
with open(target, "w") as f:
    yaml.safe_dump(config, f, sort_keys=False)
PY
    for rule_file in "$dir"/*.yml; do
        [ "$(basename "$rule_file")" = prometheus.yml ] || ln -s "$rule_file" "$tmp/$(basename "$rule_file")"
    done
    promtool check config "$tmp/prometheus.yml"
else
    cat "$tmp/out" >&2
    exit 1
fi

echo "== runbook links and test coverage"
# Every alert's runbook_url must land on a heading of docs/operations.md (GitHub anchors:
# lower-cased heading text).
"$python" - "$dir/alerts.yml" "$root/docs/operations.md" <<'PY'
import re, sys
import yaml

rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
anchors = {
    re.sub(r"[^a-z0-9 _-]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
    for line in open(sys.argv[2])
    if line.startswith("#")
}
broken = []
for rule in rules:
    url = rule.get("annotations", {}).get("runbook_url", "")
    if not url.startswith("docs/operations.md#") or url.split("#", 1)[1] not in anchors:
        broken.append(f"{rule['alert']}: runbook_url {url!r} has no matching heading in docs/operations.md")
    for key in ("summary", "description"):
        if not rule.get("annotations", {}).get(key):
            broken.append(f"{rule['alert']}: no {key} annotation")
    if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
        broken.append(f"{rule['alert']}: severity label missing or unknown")
# Every alert needs a test where it fires, and a test (a whole scenario, not just the pending
# minutes before a firing) where it never does.
tests = yaml.safe_load(open(sys.argv[1].rsplit("/", 1)[0] + "/alerts_test.yml"))["tests"]
for rule in rules:
    scenarios = [
        [c for c in t.get("alert_rule_test", []) if c["alertname"] == rule["alert"]] for t in tests
    ]
    scenarios = [s for s in scenarios if s]
    if not any(any(c.get("exp_alerts") for c in s) for s in scenarios):
        broken.append(f"{rule['alert']}: no test in alerts_test.yml where it fires")
    if not any(all(not c.get("exp_alerts") for c in s) for s in scenarios):
        broken.append(f"{rule['alert']}: no test in alerts_test.yml where it stays quiet")
if broken:
    print("\n".join(f"  FAILED: {b}" for b in broken), file=sys.stderr)
    sys.exit(1)
print(f"{len(rules)} alerts: runbook sections exist, each has firing and quiet test cases")
PY

echo "check-prometheus: OK"
