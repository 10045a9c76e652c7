#!/usr/bin/env bash
# Schemathesis against the OpenAPI document the real binary serves at /openapi.json: every
# operation, positive and negative data, all checks (no 5xx, responses and status codes as
# documented, valid data accepted, invalid data refused). Exits non-zero on any failure.
#
# The service runs on the built-in simulator (no cloud keys), without a rate limit, with a
# disk-only cache in a temporary directory. Generated `audio_url`s name arbitrary hosts, so the
# service and Schemathesis run in a private network namespace that has only a loopback
# interface: a lookup or connection to anything else fails at once and nothing leaves the
# machine. Without such a namespace the check refuses to run.
#
# Needs Schemathesis in $CI_TOOLS_DIR/venv (scripts/install-ci-tools.sh), `unshare` and `ip`.
# OPENAPI_MAX_EXAMPLES (default 50) bounds the cases per operation; OPENAPI_SEED replays a run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CI_TOOLS_DIR="${CI_TOOLS_DIR:-/opt/backend-ai-ci}"
schemathesis="$CI_TOOLS_DIR/venv/bin/schemathesis"
max_examples="${OPENAPI_MAX_EXAMPLES:-50}"
port=8080

log() { printf 'check-openapi: %s\n' "$*" >&2; }

if [ "${CHECK_OPENAPI_IN_NETNS:-}" != 1 ]; then
    if [ ! -x "$schemathesis" ]; then
        log "schemathesis not found in $CI_TOOLS_DIR/venv; run scripts/install-ci-tools.sh"
        exit 1
    fi
    (cd "$root" && cargo build --locked --quiet --bin backend-ai)
    # root creates the namespace directly; anyone else through a user namespace.
    unshare_args=(--net)
    [ "$(id -u)" -eq 0 ] || unshare_args+=(--map-root-user)
    if ! unshare "${unshare_args[@]}" true 2>/dev/null; then
        log "cannot create a private network namespace (unshare --net); refusing to fuzz with the network reachable"
        exit 1
    fi
    exec unshare "${unshare_args[@]}" env CHECK_OPENAPI_IN_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
fi

# Inside the namespace from here on: only `lo` exists, and it starts down.
ip link set lo up
if [ "$(ip -o link show | wc -l)" -ne 1 ]; then
    log "the network namespace has interfaces other than loopback; refusing to run"
    exit 1
fi

tmp="$(mktemp -d)"
service_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
        kill -KILL "$service_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

env -i PATH="$PATH" \
    PORT="$port" BIND_ADDRESS=127.0.0.1 \
    CACHE_MODE=disk_only DISK_CACHE_DIR="$tmp/cache" \
    REDIS_URL="redis://127.0.0.1:1/0" \
    RATE_LIMIT_PER_MINUTE=0 \
    RUST_LOG=warn \
    "$root/target/debug/backend-ai" >"$tmp/service.log" 2>&1 &
service_pid=$!

for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$service_pid" 2>/dev/null; then
        log "backend-ai exited during start-up:"
        cat "$tmp/service.log" >&2
        exit 1
    fi
    sleep 0.1
done

seed_args=()
[ -z "${OPENAPI_SEED:-}" ] || seed_args=(--seed "$OPENAPI_SEED")
status=0
(
    cd "$tmp"
    SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$root/scripts" timeout 170 \
        "$schemathesis" --config-file "$root/scripts/schemathesis.toml" run \
        "http://127.0.0.1:$port/openapi.json" \
        --checks all \
        --max-examples "$max_examples" \
        --generation-database none \
        --no-color \
        "${seed_args[@]}"
) || status=$?

kill -TERM "$service_pid"
service_status=0
wait "$service_pid" || service_status=$?
service_pid=""
if [ "$service_status" -ne 0 ]; then
    log "backend-ai exited $service_status after SIGTERM"
    status=1
fi
if [ "$status" -ne 0 ]; then
    log "service log:"
    tail -n 50 "$tmp/service.log" >&2
fi
exit "$status"
