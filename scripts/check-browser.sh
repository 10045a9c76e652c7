#!/usr/bin/env bash
# The pages in a real browser: the debug binary on the built-in simulator, Debian's Chromium
# driven by Playwright (tests/browser/pages.test.mjs) with a fake microphone playing speech that
# espeak-ng and sox make here (48 kHz mono WAV). It records in /playground, sends the recording
# for transcription and pronunciation assessment, analyses a text, picks a file, and checks that
# /docs shows every operation. Exits non-zero on any failure, printing the page's console and
# the service's log.
#
# Artifacts (gitignored): target/e2e/ keeps the browser's recording, screenshots of both pages
# at desktop and phone widths, the console log and the service log.
#
# Only loopback is used: when it can, the script runs in a private network namespace that has
# nothing but `lo` (as scripts/check-openapi.sh does); Chromium is also told to resolve no name
# and to send anything not on loopback to a closed port. Bounded: 60 s a step, 300 s in all.
#
# Needs (scripts/install-ci-tools.sh installs them): chromium, espeak-ng, sox, node, and
# playwright-core in scripts/browser/node_modules.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
artifacts="$root/target/e2e"
api_key="browser-test-key"
spoken="I go to the store yesterday and buy some apples."

log() { printf 'check-browser: %s\n' "$*" >&2; }

if [ "${CHECK_BROWSER_IN_NETNS:-}" != 1 ]; then
    for tool in chromium espeak-ng sox node; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            log "$tool not found; run scripts/install-ci-tools.sh"
            exit 1
        fi
    done
    if [ ! -f "$root/scripts/browser/node_modules/playwright-core/package.json" ]; then
        log "playwright-core not installed in scripts/browser; run scripts/install-ci-tools.sh"
        exit 1
    fi
    (cd "$root" && cargo build --locked --quiet --bin backend-ai)
    unshare_args=(--net)
    [ "$(id -u)" -eq 0 ] || unshare_args+=(--map-root-user)
    if unshare "${unshare_args[@]}" true 2>/dev/null; then
        exec unshare "${unshare_args[@]}" env CHECK_BROWSER_IN_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
    fi
    log "no private network namespace here (unshare --net); running on the machine's loopback"
else
    ip link set lo up
    log "in a private network namespace: only loopback exists"
fi

rm -rf "$artifacts"
mkdir -p "$artifacts"
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

# The fake microphone's speech: espeak-ng's 22.05 kHz voice made into what a microphone gives
# Chromium (48 kHz mono 16-bit), with a little silence before and after.
espeak-ng -v en-us -w "$tmp/espeak.wav" "$spoken"
sox "$tmp/espeak.wav" -r 48000 -c 1 -b 16 "$artifacts/speech-48k.wav" pad 0.3 0.2

port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"

env -i PATH="$PATH" \
    PORT="$port" BIND_ADDRESS=127.0.0.1 \
    API_KEYS="$api_key" \
    CACHE_MODE=disk_only DISK_CACHE_DIR="$tmp/cache" \
    REDIS_URL="redis://127.0.0.1:1/0" \
    RATE_LIMIT_PER_MINUTE=0 \
    LOG_FORMAT=pretty RUST_LOG=info \
    "$root/target/debug/backend-ai" >"$artifacts/service.log" 2>&1 &
service_pid=$!

for attempt in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$service_pid" 2>/dev/null || [ "$attempt" -eq 200 ]; then
        log "backend-ai did not start:"
        cat "$artifacts/service.log" >&2
        exit 1
    fi
    sleep 0.1
done

status=0
BASE_URL="http://127.0.0.1:$port" API_KEY="$api_key" SPEECH_WAV="$artifacts/speech-48k.wav" \
    ARTIFACTS="$artifacts" CHROMIUM="$(command -v chromium)" \
    timeout --kill-after=10 300 node --test --test-reporter=spec "$root/tests/browser/pages.test.mjs" || status=$?

kill -TERM "$service_pid"
service_status=0
wait "$service_pid" || service_status=$?
service_pid=""
if [ "$service_status" -ne 0 ]; then
    log "backend-ai exited $service_status after SIGTERM"
    status=1
fi
if [ "$status" -ne 0 ]; then
    [ "$status" -ne 124 ] || log "timed out after 300 s"
    log "the page's console (target/e2e/console.log):"
    tail -n 80 "$artifacts/console.log" >&2 || true
    log "the service's log (target/e2e/service.log):"
    tail -n 80 "$artifacts/service.log" >&2 || true
    exit "$status"
fi
log "passed; artifacts in target/e2e: $(cd "$artifacts" && ls | tr '\n' ' ')"
