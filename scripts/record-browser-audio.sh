#!/usr/bin/env bash
# Records the browser's own MediaRecorder output for tests/fixtures/audio/ (the chrome-*.webm/.mp4
# files and bench-30s-webm-opus.webm) with the machine's Chromium, playing speech-48k.wav (and
# the 30 s benchmark speech) through Chromium's fake microphone. Then rewrites fixtures.json and
# the README table there. Not run by CI: the recordings are committed; this is how they were made.
# A recording is live: two runs give slightly different bytes (timing), so it is not
# byte-deterministic like scripts/make-audio-fixtures.sh; the manifest records what each one is.
#
#   scripts/record-browser-audio.sh        (from any cwd)
#
# Needs (installed from Debian if missing): node and npm (`nodejs`, `npm`), chromium (`chromium`),
# ffmpeg/ffprobe (`ffmpeg`), mkvinfo (`mkvtoolnix`), python3; and playwright-core from the npm
# registry, by `npm ci` in scripts/browser/ (its node_modules/ is not committed). Playwright's
# own browser download is never used: the script drives /usr/bin/chromium. All traffic stays on
# 127.0.0.1 (see scripts/record-browser-audio.mjs).
set -euo pipefail

scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$scripts_dir/.." && pwd)"
fixtures_dir="$repo_dir/tests/fixtures/audio"
browser_dir="$scripts_dir/browser"
log() { printf 'record-browser-audio: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/debian.sh
. "$scripts_dir/lib/debian.sh"

need node nodejs
need npm npm
need chromium chromium
need ffmpeg ffmpeg
need ffprobe ffmpeg
need mkvinfo mkvtoolnix
need python3 python3

if [ -f "$browser_dir/node_modules/playwright-core/package.json" ] \
    && [ "$(node -p "require('$browser_dir/node_modules/playwright-core/package.json').version")" \
        = "$(node -p "require('$browser_dir/package.json').dependencies['playwright-core']")" ]; then
    log "playwright-core present in scripts/browser/node_modules"
else
    log "installing playwright-core (npm ci in scripts/browser)"
    (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

audio_fixtures() { python3 "$scripts_dir/audio_fixtures.py" "$@"; }
record() { node "$scripts_dir/record-browser-audio.mjs" "$@"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/record-browser-audio.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ ! -f "$fixtures_dir/speech-48k.wav" ]; then
    log "no speech-48k.wav yet: running make-audio-fixtures.sh first"
    "$scripts_dir/make-audio-fixtures.sh"
fi
cd "$fixtures_dir"
notes="$work/notes.jsonl"
: >"$notes"
log "$(chromium --version 2>/dev/null | head -n 1)"

# The speech is 2.8 s: stop 0.5 s after it.
SECONDS_SPEECH=3.3
SPEECH="$fixtures_dir/speech-48k.wav"

# note FILE DURATION_MS TOLERANCE_MS BASIS STANDS_FOR COMMAND [--truncated]
#   BASIS: why that tolerance, one of TOLERANCE_BASES in scripts/audio_fixtures.py.
note() {
    local file="$1" duration="$2" tolerance="$3" basis="$4" stands="$5" cmd="$6"
    shift 6
    audio_fixtures note --notes "$notes" --file "$file" --source speech-48k.wav \
        --duration-ms "$duration" --tolerance-ms "$tolerance" --tolerance-basis "$basis" \
        --stands-for "$stands" --command "$cmd" "$@"
}

# 1. The live shape: timeslice 250 ms, all dataavailable blobs concatenated. 32 kbps, as voice
#    apps set (hybrid SILK+CELT frames; it also keeps this file and the cut one below small).
log "recording chrome-webm-opus-timeslice.webm"
record --input "$SPEECH" --out chrome-webm-opus-timeslice.webm --mime 'audio/webm;codecs=opus' \
    --timeslice 250 --seconds "$SECONDS_SPEECH" --bits-per-second 32000 >&2
note chrome-webm-opus-timeslice.webm "$(audio_fixtures decoded-ms chrome-webm-opus-timeslice.webm)" 1 \
    chrome_webm \
    "Chrome/Edge desktop & Android Chrome MediaRecorder audio/webm;codecs=opus, start(250), 32 kbps: the live shape (unknown-size Segment and Clusters, no Duration, no Cues)" \
    "scripts/record-browser-audio.sh: MediaRecorder(stream, {mimeType: 'audio/webm;codecs=opus', audioBitsPerSecond: 32000}).start(250), stopped after 3.3 s, blobs concatenated"

# 2. start() without timeslice: one blob at stop(). Chrome's default bitrate (128 kbps: CELT
#    frames), as a page that sets nothing gets.
log "recording chrome-webm-opus-no-timeslice.webm"
record --input "$SPEECH" --out chrome-webm-opus-no-timeslice.webm --mime 'audio/webm;codecs=opus' \
    --seconds "$SECONDS_SPEECH" >&2
note chrome-webm-opus-no-timeslice.webm "$(audio_fixtures decoded-ms chrome-webm-opus-no-timeslice.webm)" 1 \
    chrome_webm \
    "Chrome/Edge MediaRecorder audio/webm;codecs=opus, start() without timeslice (one blob at stop), default 128 kbps: Chrome finishes this one (sizes, Duration, Cues)" \
    "scripts/record-browser-audio.sh: MediaRecorder(stream, {mimeType: 'audio/webm;codecs=opus'}).start(), stopped after 3.3 s"

# 3. MP4, if this Chromium can: the first supported of these types, named after what it wrote.
record --probe >"$work/probe.json"
log "isTypeSupported: $(cat "$work/probe.json")"
mp4_mime="$(node -e '
    const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const t = ["audio/mp4;codecs=mp4a.40.2", "audio/mp4;codecs=opus", "audio/mp4"]
        .find((m) => p.isTypeSupported[m]);
    process.stdout.write(t || "");' "$work/probe.json")"
rm -f chrome-mp4-*.mp4
if [ -n "$mp4_mime" ]; then
    log "recording $mp4_mime"
    record --input "$SPEECH" --out "$work/chrome.mp4" --mime "$mp4_mime" --timeslice 250 \
        --seconds "$SECONDS_SPEECH" --bits-per-second 32000 | tee "$work/mp4.json" >&2
    codec="$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name -of csv=p=0 "$work/chrome.mp4")"
    mp4_file="chrome-mp4-$codec.mp4"
    cp "$work/chrome.mp4" "$mp4_file"
    note "$mp4_file" "$(audio_fixtures decoded-ms "$mp4_file")" 1 \
        chrome_mp4 \
        "Chrome/Edge MediaRecorder $mp4_mime (answered as $(node -p "require('$work/mp4.json').mimeType")), start(250), 32 kbps: fragmented MP4, empty moov, one moof+mdat per blob" \
        "scripts/record-browser-audio.sh: MediaRecorder(stream, {mimeType: '$mp4_mime', audioBitsPerSecond: 32000}).start(250), stopped after 3.3 s"
else
    log "this Chromium records no audio/mp4 at all"
fi

# 4. The tab closed mid-recording: the timeslice bytes cut part-way into a block of the last
#    Cluster. What is left to decode: the complete blocks.
log "making chrome-webm-opus-cut.webm"
audio_fixtures cut-webm chrome-webm-opus-timeslice.webm chrome-webm-opus-cut.webm | tee "$work/cut.json" >&2
cut_tolerance="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["tolerance_ms"])' "$work/cut.json")"
cut_ms="$(audio_fixtures ebml --json chrome-webm-opus-cut.webm | python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["opus_decodable_ms"])')"
note chrome-webm-opus-cut.webm "$cut_ms" "$cut_tolerance" \
    truncated_webm \
    "chrome-webm-opus-timeslice.webm truncated part-way into a SimpleBlock of its last Cluster: a tab closed while recording" \
    "python3 scripts/audio_fixtures.py cut-webm chrome-webm-opus-timeslice.webm chrome-webm-opus-cut.webm" \
    --truncated

# 5. The benchmark's 30 s in the live shape, 16 kbps, timeslice 1 s.
"$scripts_dir/make-audio-fixtures.sh" --bench-source "$work/bench-48k.wav"
log "recording bench-30s-webm-opus.webm (31 s)"
record --input "$work/bench-48k.wav" --out bench-30s-webm-opus.webm --mime 'audio/webm;codecs=opus' \
    --timeslice 1000 --seconds 30.5 --bits-per-second 16000 >&2
audio_fixtures note --notes "$notes" --file bench-30s-webm-opus.webm \
    --source "bench speech (30 s, 12 espeak-ng sentences; not kept: make-audio-fixtures.sh --bench-source makes it)" \
    --duration-ms "$(audio_fixtures decoded-ms bench-30s-webm-opus.webm)" --tolerance-ms 1 \
    --tolerance-basis chrome_webm \
    --stands-for "Benchmark: 30 s Chrome MediaRecorder live-shape WebM Opus, 16 kbps mono, timeslice 1000 ms" \
    --command "scripts/record-browser-audio.sh: MediaRecorder(stream, {mimeType: 'audio/webm;codecs=opus', audioBitsPerSecond: 16000}).start(1000), stopped after 30.5 s, 30 s bench speech"

# -- Checks --------------------------------------------------------------------------------------
live="$(audio_fixtures ebml --json chrome-webm-opus-timeslice.webm)"
python3 - "$live" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
ok = (s["segment_size"] == "unknown" and s["clusters"] > 0
      and s["clusters_unknown_size"] == s["clusters"] and not s["cues"] and s["info_duration"] is None)
print(f"record-browser-audio: timeslice file: Segment size field {s['segment_size_field']}, "
      f"{s['clusters_unknown_size']}/{s['clusters']} Clusters of unknown size, Cues {s['cues']}, "
      f"Duration {s['info_duration']}, OpusHead {s.get('opus_head')}, CodecDelay {s['codec_delay_ns']}",
      file=sys.stderr)
sys.exit(0 if ok else "record-browser-audio: chrome-webm-opus-timeslice.webm is not the live shape")
EOF
mkvinfo chrome-webm-opus-timeslice.webm 2>&1 | grep -E 'Segment:|Cluster' | head -n 3 >&2 || true
# -show_format/-show_streams read only the start (silent, no duration, as for the uncut file);
# -show_packets reads to the end and meets the torn block.
ffprobe -v warning -show_streams -show_format chrome-webm-opus-cut.webm >/dev/null 2>"$work/cut-ffprobe.txt" || true
ffprobe -v warning -show_packets chrome-webm-opus-cut.webm >/dev/null 2>>"$work/cut-ffprobe.txt" || true
log "ffprobe on the cut file says: $(sed 's/ @ 0x[0-9a-f]*//' "$work/cut-ffprobe.txt" | tr '\n' ' ')"

audio_fixtures manifest --dir "$fixtures_dir" --notes "$notes"
audio_fixtures verify --dir "$fixtures_dir" >&2
log "done: $(du -cb "$fixtures_dir"/* | tail -n 1 | cut -f1) bytes in $fixtures_dir"
