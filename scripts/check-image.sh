#!/usr/bin/env bash
# Builds the repository's Dockerfile with podman and runs the image the way Kubernetes does:
# /health answers, the process is uid 65532, it serves from a read-only root filesystem with a
# tmpfs at the disk-cache directory (and a disk-cache write there succeeds), the image's
# HEALTHCHECK exits 0, SIGTERM ends it with exit 0 inside the grace period; prints the size.
#
# No container registry can be reached from CI, so the Dockerfile's two bases (build arguments
# whose defaults stay the official images) are replaced by local stand-ins made here:
#   builder  a debootstrapped bookworm (ca-certificates, gcc, libc6-dev: what rust:*-slim has)
#            with the host's Rust toolchain (the one `rustc` runs) at /usr/local/rust;
#   runtime  distroless/cc's contents taken from that bookworm: glibc, libgcc, CA certificates,
#            tzdata, netbase, /etc/passwd with `nonroot` (65532), nothing else (no shell).
# Both are kept in podman's image store, tagged by a hash of the recipe below and the
# toolchain's version, so a second run skips them; stale tags are removed.
# Crates are fetched by the host's cargo before the build and the host's registry cache is
# mounted into it, so the build needs no network of its own (`--network host` and the host's CA
# certificates are still given, for a Dockerfile step that installs a Debian package).
#
# Skips (exit 0, with the reason) where podman cannot run containers, or with
# SKIP_IMAGE_CHECK=1. CHECK_IMAGE_KEEP=1 keeps the built image (its name is printed);
# CHECK_IMAGE=<image> runs the checks on that image instead of building one. Installs podman, runc and debootstrap from Debian when missing.
# Runs podman as these machines need: runc, cgroupfs, ulimits no higher than the sandbox's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'check-image: %s\n' "$*" >&2; }
skip() {
    log "SKIPPED: $*"
    exit 0
}
fail() {
    log "FAILED: $*"
    exit 1
}

[ "${SKIP_IMAGE_CHECK:-0}" = 1 ] && skip "SKIP_IMAGE_CHECK=1"
if [ "$(id -u)" -ne 0 ] && ! sudo --non-interactive true 2>/dev/null; then
    skip "needs root (rootful podman, debootstrap) and there is no password-less sudo"
fi
# shellcheck source=scripts/lib/debian.sh
. "$root/scripts/lib/debian.sh"
need podman podman
need runc runc
need debootstrap debootstrap
need curl curl

DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
started=$SECONDS

podman_bin="$(command -v podman)"
podman() {
    as_root "$podman_bin" --runtime runc --cgroup-manager cgroupfs "$@"
}
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

if ! podman info >/dev/null 2>"${TMPDIR:-/tmp}/check-image-info.$$"; then
    reason="$(tail -n 1 "${TMPDIR:-/tmp}/check-image-info.$$")"
    rm -f "${TMPDIR:-/tmp}/check-image-info.$$"
    skip "podman cannot run here: $reason"
fi
rm -f "${TMPDIR:-/tmp}/check-image-info.$$"

sysroot="$(rustc --print sysroot)"
[ -x "$sysroot/bin/cargo" ] || fail "no cargo next to rustc in $sysroot"

# --- the stand-in bases ------------------------------------------------------------------------

# Debian packages of the builder (rust:*-slim-bookworm installs these) and the runtime's subset
# (distroless/cc-debian12's packages that exist in a minbase bookworm).
builder_packages=ca-certificates,gcc,libc6-dev
runtime_packages="base-files netbase tzdata libc6 libgcc-s1 ca-certificates"

make_rootfs() { # make_rootfs DIR: a minbase bookworm with the builder's and runtime's packages
    as_root debootstrap --variant=minbase --include="$builder_packages,${runtime_packages// /,}" \
        "$SUITE" "$1" "$DEBIAN_MIRROR" >&2
    as_root rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/doc \
        "$1"/usr/share/man "$1"/usr/share/locale
}

import_builder() { # import_builder ROOTFS TAG
    # The toolchain without share/ (documentation, 800 MB): bin, lib, libexec, etc.
    as_root mkdir -p "$1/usr/local/rust" "$1/usr/local/cargo"
    for part in bin lib libexec etc; do
        [ -e "$sysroot/$part" ] && as_root cp -a "$sysroot/$part" "$1/usr/local/rust/"
    done
    as_root tar -C "$1" -c . | podman import \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
        --change 'WORKDIR /' \
        --change 'CMD ["/bin/bash"]' - "$2" >/dev/null
}

import_runtime() { # import_runtime ROOTFS TAG
    local out
    out="$(mktemp -d)"
    # Every file of the runtime packages (dpkg's own list), plus the certificate bundle that
    # ca-certificates' postinst generated; --no-recursion so a directory brings only itself.
    # shellcheck disable=SC2086
    # dpkg lists /lib/... where merged /usr made /lib a link: the files are under /usr/lib.
    as_root dpkg --admindir="$1/var/lib/dpkg" -L $runtime_packages | grep '^/.' |
        while read -r path; do
            top="${path#/}"
            top="${top%%/*}"
            if [ -L "$1/$top" ]; then
                [ "$path" = "/$top" ] && continue
                path="/usr$path"
            fi
            if [ -e "$1$path" ] || [ -L "$1$path" ]; then printf '.%s\n' "$path"; fi
        done >"$out/listed"
    (cd "$1" && find ./etc/ssl -print) >>"$out/listed"
    mkdir -p "$out/root/etc" "$out/root/tmp" "$out/root/home/nonroot" "$out/root/root"
    chmod 1777 "$out/root/tmp"
    chmod 0700 "$out/root/home/nonroot" "$out/root/root"
    # merged /usr: bookworm's /lib, /lib64, /bin, /sbin are links into /usr.
    for link in bin sbin lib lib64; do
        [ -L "$1/$link" ] && cp -a "$1/$link" "$out/root/$link"
    done
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
        >"$out/root/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$out/root/etc/group"
    # Once each: a path the skeleton above has already is left out of the package files.
    sort -u "$out/listed" | while read -r path; do
        if [ ! -e "$out/root/$path" ] && [ ! -L "$out/root/$path" ]; then printf '%s\n' "$path"; fi
    done >"$out/files"
    as_root chown -R 0:0 "$out/root"
    as_root chown 65532:65532 "$out/root/home/nonroot"
    as_root tar -C "$out/root" -cf "$out/base.tar" .
    as_root tar -C "$1" --no-recursion -rf "$out/base.tar" -T "$out/files"
    podman import --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
        "$out/base.tar" "$2" >/dev/null
    as_root rm -rf "$out"
}

# The cache keys: the recipe and the toolchain. A change to either makes new stand-ins.
rootfs_key="$({
    declare -f make_rootfs
    echo "$builder_packages $runtime_packages $SUITE $DEBIAN_MIRROR"
} | sha256sum | cut -c1-16)"
key="$({
    echo "$rootfs_key"
    declare -f import_builder import_runtime
    rustc -vV
} | sha256sum | cut -c1-16)"
builder_base="localhost/backend-ai-stand-in-builder:$key"
runtime_base="localhost/backend-ai-stand-in-runtime:$key"

if podman image exists "$builder_base" && podman image exists "$runtime_base"; then
    log "stand-in bases cached ($key)"
else
    log "making the stand-in bases ($key): debootstrap $SUITE from $DEBIAN_MIRROR"
    # Kept until both images are made, so a failed import does not debootstrap again.
    work="/var/tmp/backend-ai-check-image-rootfs-$rootfs_key"
    if [ ! -e "$work/.complete" ]; then
        as_root rm -rf "$work"
        make_rootfs "$work/rootfs"
        as_root touch "$work/.complete"
    fi
    podman image exists "$runtime_base" || import_runtime "$work/rootfs" "$runtime_base"
    podman image exists "$builder_base" || import_builder "$work/rootfs" "$builder_base"
    as_root rm -rf "$work"
    # Older rootfs of another key, left by a run that failed.
    as_root find /var/tmp -maxdepth 1 -name 'backend-ai-check-image-rootfs-*' -exec rm -rf {} + 2>/dev/null || true
    # Older stand-ins (another toolchain or recipe) only take disk space now.
    for name in backend-ai-stand-in-builder backend-ai-stand-in-runtime; do
        for stale in $(podman images --format '{{.Repository}}:{{.Tag}}' "localhost/$name" | grep -v ":$key\$" || true); do
            podman rmi "$stale" >/dev/null || true
        done
    done
    log "stand-in bases made in $((SECONDS - started)) s"
fi

# --- can podman run a container here at all? -----------------------------------------------------

probe_err="$(mktemp)"
if ! podman run --rm --network none "${ulimits[@]}" "$builder_base" true 2>"$probe_err"; then
    reason="$(tail -n 3 "$probe_err")"
    rm -f "$probe_err"
    skip "podman cannot run a container here: $reason"
fi
rm -f "$probe_err"

# --- build ------------------------------------------------------------------------------------------

image="${CHECK_IMAGE:-localhost/backend-ai-check-image:$$}"
container="backend-ai-check-image-$$"
cleanup() {
    podman rm --force --time 0 "$container" >/dev/null 2>&1 || true
    if [ -n "${CHECK_IMAGE:-}" ]; then
        return
    elif [ "${CHECK_IMAGE_KEEP:-0}" = 1 ]; then
        log "kept $image (CHECK_IMAGE_KEEP=1)"
    else
        podman rmi --force "$image" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
log "fetching crates on the host (cargo fetch --locked)"
(cd "$root" && cargo fetch --locked --quiet)

if [ -z "${CHECK_IMAGE:-}" ]; then
    log "building the Dockerfile (podman build --format docker)"
    build_started=$SECONDS
    # --layers=false: no intermediate image is kept (the builder stage's target/ is GBs).
    podman build --format docker --pull=never --layers=false \
        --network host -v /etc/ssl/certs:/etc/ssl/certs:ro \
        -v "$cargo_home/registry:/usr/local/cargo/registry" \
        "${ulimits[@]}" \
        --build-arg BUILDER_IMAGE="$builder_base" \
        --build-arg RUNTIME_IMAGE="$runtime_base" \
        -t "$image" -f "$root/Dockerfile" "$root"
    log "built in $((SECONDS - build_started)) s"
fi

healthcheck="$(podman image inspect --format '{{json .Config.Healthcheck}}' "$image")"
case "$healthcheck" in
    *healthcheck*) ;;
    *) fail "the image has no HEALTHCHECK ($healthcheck): build with --format docker" ;;
esac
size="$(podman image inspect --format '{{.Size}}' "$image")"

# --- run ----------------------------------------------------------------------------------------------

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cache_dir=/var/cache/backend-ai
grace=25
# As the README and deploy/ run it: read-only root, the disk-cache directory a tmpfs the
# service's user owns (a plain --tmpfs comes up root-owned: every disk write fails; podman's `U`
# is docker's `uid=65532,gid=65532`). disk_only, so the cache write an analysis makes lands on
# that tmpfs. The host's network with the service bound to a free loopback port: nothing but
# loopback carries the checks' traffic (a published port would go through a bridge).
# Without systemd podman logs that it cannot set a timer for the HEALTHCHECK: harmless, the
# check runs it below.
podman run -d --name "$container" "${ulimits[@]}" \
    --read-only --tmpfs "$cache_dir:rw,size=64m,mode=0700,U" \
    --tmpfs /tmp:rw,size=16m,mode=1777 \
    --network host -e BIND_ADDRESS=127.0.0.1 -e PORT="$port" \
    -e API_KEYS=check-image-key -e CACHE_MODE=disk_only -e SHUTDOWN_GRACE_SECONDS="$grace" \
    "$image" >/dev/null

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl --silent --fail --max-time 2 "$base/health" >/dev/null 2>&1 && break
    if [ "$(podman inspect --format '{{.State.Running}}' "$container")" != true ]; then
        podman logs "$container" >&2 || true
        fail "the container exited before /health answered"
    fi
    sleep 0.2
done
health="$(curl --silent --fail --max-time 5 "$base/health")" || {
    podman logs "$container" >&2 || true
    fail "/health did not answer on $base"
}
log "/health: $health"

pid="$(podman inspect --format '{{.State.Pid}}' "$container")"
uid="$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")"
[ "$uid" = 65532 ] || fail "the service runs as uid $uid, not 65532"
log "runs as uid $uid"
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$container")" = true ] ||
    fail "the root filesystem is not read-only"

analysis="$(curl --silent --show-error --max-time 30 -w '\n%{http_code}' "$base/api/analyze" \
    -H 'X-API-Key: check-image-key' -H 'Content-Type: application/json' \
    -d '{"text": "I go to the store yesterday.", "user_id": "check-image"}')"
[ "${analysis##*$'\n'}" = 200 ] || fail "an analysis answered ${analysis##*$'\n'}: ${analysis%$'\n'*}"
metrics="$(curl --silent --fail --max-time 5 "$base/metrics")"
disk_ok="$(awk '/^cache_operations_total\{/ && /operation="set"/ && /result="ok"/ && /tier="disk"/ { print $2 }' <<<"$metrics")"
disk_err="$(awk '/^cache_operations_total\{/ && /operation="set"/ && /result="error"/ && /tier="disk"/ { print $2 }' <<<"$metrics")"
if [ "${disk_ok:-0}" -lt 1 ] || [ "${disk_err:-0}" -ne 0 ]; then
    podman logs "$container" >&2 || true
    fail "the disk cache on the tmpfs did not take a write (set ok=${disk_ok:-none}, error=${disk_err:-none})"
fi
log "read-only root; a disk-cache write on the tmpfs at $cache_dir succeeded"

podman healthcheck run "$container" >/dev/null || fail "the HEALTHCHECK command failed"
log "HEALTHCHECK exits 0"

stop_started="$(date +%s.%N)"
podman kill --signal TERM "$container" >/dev/null
exit_code="$(timeout "$((grace + 5))" podman wait "$container")" || fail "still running $((grace + 5)) s after SIGTERM"
stop_seconds="$(python3 -c "import time; print(round(time.time() - $stop_started, 2))")"
[ "$exit_code" = 0 ] || {
    podman logs "$container" >&2 || true
    fail "SIGTERM ended it with exit $exit_code"
}
log "SIGTERM: exit 0 after ${stop_seconds} s (grace ${grace} s)"

log "image size: $((size / 1024 / 1024)) MiB ($size bytes)"
log "OK in $((SECONDS - started)) s"
