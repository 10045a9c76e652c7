#!/usr/bin/env bash
# Validates the deployment files; installs nothing (scripts/install-ci-tools.sh does).
#   1. renders the Kustomize base (kubectl kustomize), or, without kubectl, takes the files the
#      kustomization lists;
#   2. validates every object against the Kubernetes OpenAPI JSON schemas, strictly (unknown
#      fields are errors), for each version in K8S_VERSIONS: the oldest we support (1.30, for the
#      preStop `sleep` action) and the newest the validator ships;
#   3. validates deploy/secret.example.yaml (a template outside the kustomization) the same way;
#   4. cross-checks what no schema can: selectors match pod labels, the HPA targets the
#      Deployment, the termination grace period covers preStop + SHUTDOWN_GRACE_SECONDS, the
#      Prometheus annotations name the container port, every Secret key used exists in the
#      template, every deploy/*.yaml is either listed or the template;
#   5. lints the Dockerfile with hadolint.
# Exits non-zero on the first failing step.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$root/deploy"
CI_TOOLS_DIR="${CI_TOOLS_DIR:-/opt/backend-ai-ci}"
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"

tool() {
    if [ -x "$CI_TOOLS_DIR/venv/bin/$1" ]; then
        echo "$CI_TOOLS_DIR/venv/bin/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        echo "check-manifests: $1 not found; run scripts/install-ci-tools.sh" >&2
        return 1
    fi
}
validate="$(tool kubernetes-validate)"
hadolint="$(tool hadolint)"
python="$CI_TOOLS_DIR/venv/bin/python"
[ -x "$python" ] || python="$(command -v python3)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rendered="$tmp/rendered.yaml"

echo "== render deploy/ (kustomize)"
if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$deploy" >"$rendered"
    echo "rendered $(grep -c '^kind:' "$rendered") objects with kubectl kustomize"
else
    echo "kubectl not found: validating the files kustomization.yaml lists, unrendered"
    "$python" - "$deploy" >"$rendered" <<'PY'
import sys, pathlib, yaml
base = pathlib.Path(sys.argv[1])
kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
for name in kustomization["resources"]:
    print("---")
    print((base / name).read_text())
PY
fi

echo "== render deploy-overlays/redis-cluster"
if command -v kubectl >/dev/null 2>&1; then
    overlay="$tmp/redis-cluster.yaml"
    kubectl kustomize "$deploy/../deploy-overlays/redis-cluster" >"$overlay"
    # The overlay runs on an external cluster: no in-cluster Redis, and one Redis family only
    # (two would make the pods exit 2).
    if grep -q 'name: backend-ai-redis' "$overlay"; then
        echo "  FAILED: the redis-cluster overlay still renders the in-cluster Redis" >&2
        exit 1
    fi
    if grep -qE '^  REDIS_URL:' "$overlay" || ! grep -qE '^  REDIS_CLUSTER_NODES:' "$overlay"; then
        echo "  FAILED: the redis-cluster overlay must set REDIS_CLUSTER_NODES and not REDIS_URL" >&2
        exit 1
    fi
    echo "rendered $(grep -c '^kind:' "$overlay") objects, no in-cluster Redis"
else
    echo "kubectl not found: overlay not rendered"
fi

echo "== schema validation (strict) against Kubernetes $K8S_VERSIONS"
for version in $K8S_VERSIONS; do
    "$validate" --strict --quiet -k "$version" "$rendered"
    "$validate" --strict --quiet -k "$version" "$deploy/secret.example.yaml"
    echo "Kubernetes $version: OK"
done

echo "== cross-checks"
"$python" - "$deploy" "$rendered" <<'PY'
import sys, pathlib, re, yaml

base, rendered = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
objects = [o for o in yaml.safe_load_all(rendered.read_text()) if o]
by_kind = {}
for o in objects:
    by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
problems = []

def need(condition, message):
    if not condition:
        problems.append(message)

def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())

app = by_kind.get("Deployment", {}).get("backend-ai")
need(app is not None, "Deployment backend-ai is missing")
if app:
    pod = app["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    container = spec["containers"][0]
    need(selects(app["spec"]["selector"]["matchLabels"], labels), "Deployment selector does not match its pod labels")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}

    for name, svc in by_kind.get("Service", {}).items():
        targets = [d for d in by_kind["Deployment"].values() if selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        need(len(targets) == 1, f"Service {name} selects {len(targets)} Deployments, expected exactly 1")
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort")
            if targets and isinstance(tp, str):
                named = {p.get("name") for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                need(tp in named, f"Service {name} targetPort {tp!r} is not a container port name")
    need(by_kind.get("Service", {}).get("backend-ai", {}).get("spec", {}).get("ports", [{}])[0].get("port") == 80, "Service backend-ai must listen on 80")

    for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        need(selects(pdb["spec"]["selector"]["matchLabels"], labels), f"PDB {name} does not select the backend-ai pods")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        need(ref["kind"] == "Deployment" and ref["name"] in by_kind["Deployment"], f"HPA {name} targets a missing {ref['kind']} {ref['name']}")
        need(hpa["spec"].get("minReplicas", 1) >= 2, f"HPA {name} minReplicas below 2 leaves no pod during a disruption")
    need("replicas" not in app["spec"], "Deployment backend-ai sets replicas although an HPA owns them")

    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/health/ready")):
        got = container.get(probe, {}).get("httpGet", {})
        need(got.get("path") == path, f"{probe} must GET {path}, got {got.get('path')!r}")
        need(got.get("port") in ports or got.get("port") in ports.values(), f"{probe} port {got.get('port')!r} is not a container port")

    annotations = pod["metadata"].get("annotations", {})
    need(annotations.get("prometheus.io/scrape") == "true", "pod template lacks prometheus.io/scrape: \"true\"")
    need(annotations.get("prometheus.io/port", "").isdigit() and int(annotations["prometheus.io/port"]) in ports.values(),
         "prometheus.io/port does not name a container port")

    config = {}
    for ref in container.get("envFrom", []):
        cm = by_kind.get("ConfigMap", {}).get(ref.get("configMapRef", {}).get("name"))
        need(cm is not None, f"envFrom names a ConfigMap that is not in the base: {ref}")
        config.update((cm or {}).get("data", {}))
    need(int(config.get("PORT", "8000")) in ports.values(), "PORT in the ConfigMap is not the container port")
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    sleep = pre_stop.get("sleep", {}).get("seconds", 0)
    grace = int(config.get("SHUTDOWN_GRACE_SECONDS", "25"))
    period = spec.get("terminationGracePeriodSeconds", 30)
    need(period > sleep + grace, f"terminationGracePeriodSeconds {period} must exceed preStop {sleep}s + SHUTDOWN_GRACE_SECONDS {grace}s")

    redis_host = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+)", config.get("REDIS_URL", ""))
    need(redis_host is not None, "REDIS_URL missing or unparsable")
    if redis_host and "." not in redis_host.group(1):
        need(redis_host.group(1) in by_kind.get("Service", {}), f"REDIS_URL host {redis_host.group(1)} is not a Service of the base")

    secret = yaml.safe_load((base / "secret.example.yaml").read_text())
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            need(ref["name"] == secret["metadata"]["name"], f"{env['name']} reads Secret {ref['name']}, the template is {secret['metadata']['name']}")
            need(ref["key"] in secret_keys, f"{env['name']} reads key {ref['key']} missing from secret.example.yaml")

    sc = container.get("securityContext", {})
    need(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False, "container must be read-only and without privilege escalation")
    need(spec.get("securityContext", {}).get("runAsNonRoot") is True, "pod must run as non-root")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    need(config.get("DISK_CACHE_DIR") in mounts, "DISK_CACHE_DIR is not a mounted (writable) volume")

kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
listed = set(kustomization.get("resources", []))
for path in sorted(base.glob("*.yaml")):
    if path.name not in listed | {"kustomization.yaml", "secret.example.yaml"}:
        problems.append(f"deploy/{path.name} is neither listed in kustomization.yaml nor the secret template")

if problems:
    print("\n".join(f"  FAILED: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(objects)} objects consistent")
PY

echo "== hadolint Dockerfile"
"$hadolint" --no-color "$root/Dockerfile"
echo "Dockerfile: OK"

echo "check-manifests: OK"
