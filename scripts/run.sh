#!/usr/bin/env bash
# The README's run command. Building the service needs cmake and make besides Rust (the `opus`
# crate compiles the libopus source it bundles and links it statically), and a fresh machine may
# lack them: install them from Debian when missing, then run the release build. With them
# present this is exactly `cargo run --release`; arguments go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'run: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/debian.sh
. scripts/lib/debian.sh
need cmake cmake
need make make
exec cargo run --release "$@"
