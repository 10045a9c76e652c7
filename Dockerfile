# syntax=docker/dockerfile:1
# backend-ai container image: release build in the official Rust image, run from distroless.
#   docker build -t backend-ai:dev .
#   docker run --rm -p 8000:8000 -e API_KEYS=dev-key backend-ai:dev
# Read-only like Kubernetes runs it: the disk-cache tmpfs must belong to the service's user (a
# plain --tmpfs is root's, and every disk-cache write would fail):
#   docker run --rm -p 8000:8000 -e API_KEYS=dev-key --read-only --tmpfs /tmp \
#     --tmpfs /var/cache/backend-ai:uid=65532,gid=65532,mode=0700 backend-ai:dev
# (podman: --tmpfs /var/cache/backend-ai:mode=0700,U)
# Without registry access: scripts/check-image.sh builds it from local stand-in bases.

ARG RUST_VERSION=1.95
# The two bases are build arguments so that a build without registry access can name local
# stand-ins (scripts/check-image.sh does); the defaults are the official images.
ARG BUILDER_IMAGE=rust:${RUST_VERSION}-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /build

# cmake and make build the libopus source the `opus` crate bundles; it is linked statically, so
# the runtime image needs no libopus. Versions unpinned: bookworm only ever ships fixes for them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake make \
    && rm -rf /var/lib/apt/lists/*

# Dependency layer, rebuilt only when Cargo.toml / Cargo.lock change: compile every dependency
# against stub sources. Explicit [[bench]]/[[test]]/[[example]] sections are dropped from the
# manifest: cargo refuses to load one whose declared targets are missing, and benches/ and
# tests/ are not in the build context (.dockerignore). Dependencies and the lock file are
# untouched (--locked proves it).
COPY Cargo.toml Cargo.lock ./
RUN awk '/^\[\[(bench|test|example)\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' Cargo.toml > Cargo.deps.toml \
    && mv Cargo.deps.toml Cargo.toml \
    && mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real build. COPY keeps the sources' modification times, which can be older than the stub
# build's artefacts: touch them so cargo rebuilds the crate instead of shipping the stub.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin backend-ai \
    && install -D -m 0755 target/release/backend-ai /out/backend-ai \
    && mkdir -p /out/cache

# distroless/cc: glibc + libgcc + CA certificates, no shell, no package manager. The binary
# needs nothing else (TLS is rustls). `nonroot` is uid/gid 65532.
FROM ${RUNTIME_IMAGE}

COPY --from=builder /out/backend-ai /usr/local/bin/backend-ai
# Writable disk-cache directory for CACHE_MODE tiered/disk_only (docker run). In Kubernetes the
# root filesystem is read-only and an emptyDir is mounted here instead.
COPY --from=builder --chown=65532:65532 /out/cache /var/cache/backend-ai

ENV PORT=8000 \
    CACHE_MODE=auto \
    DISK_CACHE_DIR=/var/cache/backend-ai \
    LOG_FORMAT=json \
    SHUTDOWN_GRACE_SECONDS=25

# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 65532:65532
EXPOSE 8000

# No curl or shell here: the binary checks itself (`backend-ai healthcheck` GETs
# http://127.0.0.1:$PORT/health and exits 0 on 200, 1 otherwise). Kubernetes ignores
# HEALTHCHECK and uses the probes in deploy/deployment.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/backend-ai", "healthcheck"]

# The service drains on SIGTERM (readiness 503, in-flight requests finish); make it explicit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/backend-ai"]
