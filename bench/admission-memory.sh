#!/usr/bin/env bash
# The long-recording attack against the release binary: many uploads at once of a 10-minute AAC
# (ADTS), which fast transcription does not take, so each is decoded to 19.2 MB of 16 kHz WAV.
# Reports the service's peak RSS (VmHWM) against the pod's 512 MiB limit, the highest
# `audio_bytes_reserved` seen against AUDIO_BYTES_IN_FLIGHT, and the answers' statuses.
# Memory, not timing: the result holds on a busy machine.
#
# Usage: bash bench/admission-memory.sh [UPLOADS] (default 40), from the repository root.
set -euo pipefail
source bench/standalone.sh admission-memory
UPLOADS=${1:-40}

SIM_PORT=$(free_port)
SIMULATOR_LATENCY_MS=50 RUST_LOG=warn "$BIN" simulator "$SIM_PORT" >"$TMP/simulator.log" 2>&1 &
PIDS+=($!)
SVC_PORT=$(free_port)
env -i PATH="$PATH" PORT="$SVC_PORT" BIND_ADDRESS=127.0.0.1 CACHE_MODE=disk_only DISK_CACHE_DIR="$TMP/cache" \
  REDIS_URL="redis://127.0.0.1:$(free_port)/0" RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn \
  AZURE_SPEECH_KEY=bench AZURE_SPEECH_ENDPOINT="http://127.0.0.1:$SIM_PORT" \
  GEMINI_API_KEY=bench GEMINI_BASE_URL="http://127.0.0.1:$SIM_PORT" \
  "$BIN" >"$TMP/service.log" 2>&1 &
SVC_PID=$!
PIDS+=("$SVC_PID")

python3 - "$SVC_PORT" "$SVC_PID" "$UPLOADS" <<'EOF'
import concurrent.futures, http.client, json, sys, threading, time, urllib.request, uuid

port, pid, uploads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/health", timeout=1)
        break
    except OSError:
        time.sleep(0.05)

# 210 x 2.84 s of the ADTS fixture: 596 s, under AUDIO_MAX_SECONDS (600).
one = open("tests/fixtures/audio/adts-aac.aac", "rb").read()
long_aac = one * 210

def status_of(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields

def kib(value):
    return int(value.split()[0])

def scrape():
    text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("audio_bytes_reserved "):
            return int(float(line.split()[1]))
    return 0

idle_rss = kib(status_of(pid)["VmRSS"])
highest, done = [0], threading.Event()

def watch():
    while not done.is_set():
        try:
            highest[0] = max(highest[0], scrape())
        except OSError:
            pass
        time.sleep(0.02)

def upload(index):
    # Each one different in its last byte (inside the last AAC frame's payload), as forty
    # learners' recordings are: nothing is merged or answered from the cache.
    body_audio = long_aac[:-1] + bytes([index % 256])
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"{index}.aac\"\r\n"
            f"Content-Type: audio/aac\r\n\r\n").encode() + body_audio + \
           f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"user_id\"\r\n\r\nu{index}\r\n--{boundary}--\r\n".encode()
    # http.client, not urllib: a request refused while its body is still being sent (503 once
    # its wait for room is over) is answered before the rest is read; that answer is the result.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.putrequest("POST", "/api/transcribe")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        try:
            connection.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = connection.getresponse()
        answer = response.read()
        code = "" if response.status == 200 else json.loads(answer or b"{}").get("code", "")
        return response.status, code
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return 0, "connection closed"
    finally:
        connection.close()

watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
started = time.time()
results = []
with concurrent.futures.ThreadPoolExecutor(max_workers=uploads) as pool:
    futures = [pool.submit(upload, index) for index in range(uploads)]
    results = [future.result() for future in futures]
done.set()
watcher.join()
status = status_of(pid)
counts = {}
for code, kind in results:
    counts[f"{code} {kind}".strip()] = counts.get(f"{code} {kind}".strip(), 0) + 1
print(json.dumps({
    "uploads": uploads,
    "recording_bytes": len(long_aac),
    "answers": counts,
    "seconds": round(time.time() - started, 1),
    "rss_idle_mib": round(idle_rss / 1024, 1),
    "rss_peak_mib": round(kib(status["VmHWM"]) / 1024, 1),
    "audio_bytes_reserved_peak_mib": round(highest[0] / 2**20, 1),
    "pod_limit_mib": 512,
}, indent=1))
EOF
