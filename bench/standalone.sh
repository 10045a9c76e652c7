# Sourced by the bench scripts that run on their own (redis-topologies.sh, profile-hot-path.sh):
# the binary to measure, the tools it needs, a scratch directory and every process started
# stopped on exit. Usage: `source bench/standalone.sh NAME TOOL...` from the repository root.
BIN=${BENCH_BIN:-target/release/backend-ai}
[[ -x $BIN ]] || cargo build --release
standalone_name=$1; shift
for tool in "$@" curl python3; do
  command -v "$tool" >/dev/null || { echo "$standalone_name: $tool missing (bench/run.sh installs the bench tools)" >&2; exit 1; }
done
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
