#!/usr/bin/env bash
# Makes the recordings in tests/fixtures/audio/ (all but the browser's own: those come from
# scripts/record-browser-audio.sh) from ONE speech source, and writes fixtures.json and the table
# in README.md there. Not run by CI: the fixtures are committed; this is how they were made.
#
#   scripts/make-audio-fixtures.sh                  regenerate everything (from any cwd)
#   scripts/make-audio-fixtures.sh --bench-source F write the 30 s benchmark speech (48 kHz) to F
#
# Deterministic as far as the tools allow: espeak-ng, sox (-R: repeatable dither), libopus,
# libvorbis, lame, ffmpeg's aac and flac encoders and its muxers (+bitexact) give the same bytes
# on every run with the same package versions (Debian 12: ffmpeg 5.1, sox 14.4.2, espeak-ng
# 1.51, opus-tools 0.2, mkvtoolnix 74). Tools that are missing are installed from Debian:
#
#   espeak-ng   Debian `espeak-ng`      the speech
#   sox, soxi   Debian `sox`            resampling, trimming, channel mixing (`rate -v`)
#   ffmpeg      Debian `ffmpeg`         libopus, aac, libmp3lame, libvorbis, flac and the muxers
#   opusenc     Debian `opus-tools`     Ogg Opus as the reference encoder writes it
#   mkvmerge    Debian `mkvtoolnix`     Matroska as mkvtoolnix writes it
#   python3     Debian `python3`        scripts/audio_fixtures.py (header writing, checks)
set -euo pipefail

scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$scripts_dir/.." && pwd)"
fixtures_dir="$repo_dir/tests/fixtures/audio"
log() { printf 'make-audio-fixtures: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/debian.sh
. "$scripts_dir/lib/debian.sh"

need espeak-ng espeak-ng
need sox sox
need soxi sox
need ffmpeg ffmpeg
need ffprobe ffmpeg
need opusenc opus-tools
need mkvmerge mkvtoolnix
need python3 python3

# The commands below are shown in README.md exactly as run: `audio_fixtures` is
# scripts/audio_fixtures.py, `$work` a temporary directory, the current directory the fixtures'.
audio_fixtures() { python3 "$scripts_dir/audio_fixtures.py" "$@"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/make-audio-fixtures.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# -- The speech -------------------------------------------------------------------------------

SENTENCE="I go to the store yesterday and buy some apples."
BENCH_SENTENCES=(
    "I go to the store yesterday and buy some apples."
    "My brother have two dogs and he walk them every morning."
    "When I was child, I live in a small village near the sea."
    "She don't like coffee, so she drink tea with milk."
    "Yesterday we goes to the cinema and watch a very funny film."
    "I am studying English since three years and I want to speak better."
    "Can you tell me where is the station, please?"
    "If I will have more time, I would learn to play the piano."
    "The weather was so nice that we decided to eat outside."
    "Next summer my family and me are going to travel to Spain."
    "I think this book is more interesting than the film."
    "Thank you for listening, and see you next week."
)
BENCH_SECONDS=30

# espeak-ng speaks at 22050 Hz. The speech is padded with silence to a whole number of 20 ms
# (441 samples) so that its length is a whole number of samples at every rate used here
# (8000, 16000, 22050, 44100, 48000 Hz) and of 20 ms Opus frames.
make_speech() { # make_speech OUT.wav: espeak-ng's 22050 Hz output, padded to a multiple of 20 ms
    espeak-ng -v en-us -w "$work/espeak.wav" "$SENTENCE"
    local n pad
    n="$(soxi -s "$work/espeak.wav")"
    pad=$(((441 - n % 441) % 441))
    sox -R "$work/espeak.wav" "$1" pad 0 "${pad}s"
}

make_bench_speech() { # make_bench_speech OUT.wav: 30.000 s of sentences at 48 kHz
    local i=0 parts=()
    for sentence in "${BENCH_SENTENCES[@]}"; do
        espeak-ng -v en-us -w "$work/bench-$i.wav" "$sentence"
        parts+=("$work/bench-$i.wav")
        i=$((i + 1))
    done
    # Concatenate (espeak-ng ends each sentence with ~0.3 s of silence), loop if short, cut to
    # exactly BENCH_SECONDS, then resample.
    sox -R "${parts[@]}" "$work/bench-once.wav"
    sox -R "$work/bench-once.wav" "$work/bench-22k.wav" repeat 2 trim 0 "$((BENCH_SECONDS * 22050))s"
    sox -R "$work/bench-22k.wav" -b 16 "$1" rate -v 48000
}

if [ "${1:-}" = "--bench-source" ]; then
    [ $# -eq 2 ] || { log "usage: $0 --bench-source OUT.wav"; exit 2; }
    make_bench_speech "$(realpath -m "$2")"
    exit 0
fi
[ $# -eq 0 ] || { log "usage: $0 [--bench-source OUT.wav]"; exit 2; }

mkdir -p "$fixtures_dir"
cd "$fixtures_dir"
notes="$work/notes.jsonl"
: >"$notes"

# fixture FILE SOURCE SPAN DURATION_MS TOLERANCE_MS BASIS STANDS_FOR COMMAND
#   Runs COMMAND (in the fixtures directory) to make FILE, and notes what FILE is for
#   fixtures.json: SOURCE and SPAN ("start,end" in ms of SOURCE), what it must decode to and how
#   exactly (BASIS: why that tolerance), and the device or app it stands for.
fixture() {
    local file="$1" source="$2" span="$3" duration="$4" tolerance="$5" basis="$6" stands="$7" cmd="$8"
    log "making $file"
    rm -f "$file"
    eval "$cmd"
    [ -s "$file" ] || { log "$file was not made"; exit 1; }
    audio_fixtures note --notes "$notes" --file "$file" --source "$source" --span "$span" \
        --duration-ms "$duration" --tolerance-ms "$tolerance" --tolerance-basis "$basis" \
        --stands-for "$stands" --command "$cmd"
}

FF='ffmpeg -nostdin -v error -y'
BITEXACT='-fflags +bitexact -flags:a +bitexact -map_metadata -1'

# The tolerance of each file (ms) rests on one of the bases explained in scripts/audio_fixtures.py
# (TOLERANCE_BASES) and in README.md: pcm, flac, ogg_opus, matroska_opus, mp4_elst, ...

S48=speech-48k.wav
S16=speech-16k.wav
FULL=2800.0 # ms, checked below

# -- Source --------------------------------------------------------------------------------------

make_speech "$work/speech-22k.wav"
fixture speech-16k.wav espeak-ng "0,$FULL" "$FULL" 1 pcm \
    "Passthrough case (16 kHz mono 16-bit, 44-byte header) and the reference envelope for every other file" \
    'sox -R $work/speech-22k.wav -b 16 speech-16k.wav rate -v 16000'
fixture speech-48k.wav espeak-ng "0,$FULL" "$FULL" 1 pcm \
    "The 48 kHz source all other fixtures are made from" \
    'sox -R $work/speech-22k.wav -b 16 speech-48k.wav rate -v 48000'
[ "$(soxi -s speech-16k.wav)" -eq 44800 ] && [ "$(soxi -s speech-48k.wav)" -eq 134400 ] || {
    log "the speech is $(soxi -s speech-16k.wav) samples at 16 kHz, not 44800 (2800 ms): espeak-ng changed; update FULL and the README"
    exit 1
}

# -- WAV -------------------------------------------------------------------------------------------
# Short, each under ~100 KB: trimmed to the first 0.3 s, 0.5 s or 1.0 s of the speech where needed
# (0.3 s for the 48 and 44.1 kHz ones with 4-byte frames, to keep the whole set under 1.6 MB).
# The stereo ones have the right channel 6 dB quieter (x0.5), so a wrong down-mix shows.

fixture wav-44k1-stereo-s16.wav "$S48" 0,300 300.0 1 pcm \
    "Desktop recorder / editor export (44.1 kHz stereo 16-bit, right channel 6 dB quieter)" \
    'sox -R speech-48k.wav -b 16 wav-44k1-stereo-s16.wav trim 0 0.3 remix 1 1v0.5 rate -v 44100'
fixture wav-48k-mono-f32.wav "$S48" 0,300 300.0 1 pcm \
    "Web Audio / DAW export: IEEE float 32-bit, WAVE_FORMAT_IEEE_FLOAT (3), 18-byte fmt + fact chunk" \
    'sox -R speech-48k.wav -t raw -e floating-point -b 32 - trim 0 0.3 | audio_fixtures wav wav-48k-mono-f32.wav --rate 48000 --channels 1 --bits 32 --format float'
fixture wav-22k05-mono-s24.wav "$S48" 0,1000 1000.0 1 pcm \
    "Field recorder / DAW: 24-bit, plain WAVE_FORMAT_PCM (1) header" \
    'sox -R speech-48k.wav -t raw -e signed -b 24 - trim 0 1 rate -v 22050 | audio_fixtures wav wav-22k05-mono-s24.wav --rate 22050 --channels 1 --bits 24 --format pcm'
fixture wav-8k-mono-u8.wav "$S48" "0,$FULL" "$FULL" 1 pcm \
    "Telephony / old voice recorder: 8 kHz 8-bit unsigned PCM, the whole speech" \
    'sox -R speech-48k.wav -t raw -e unsigned -b 8 - rate -v 8000 | audio_fixtures wav wav-8k-mono-u8.wav --rate 8000 --channels 1 --bits 8 --format pcm'
fixture wav-16k-mono-s16-extensible.wav "$S16" 0,1000 1000.0 1 pcm \
    "Windows recorders: WAVE_FORMAT_EXTENSIBLE (0xFFFE), KSDATAFORMAT_SUBTYPE_PCM, 16-bit valid, mask FRONT_CENTER" \
    'sox -R speech-16k.wav -t raw - trim 0 1 | audio_fixtures wav wav-16k-mono-s16-extensible.wav --rate 16000 --channels 1 --bits 16 --format extensible'
fixture wav-48k-mono-s32.wav "$S48" 0,300 300.0 1 pcm \
    "32-bit integer PCM, WAVE_FORMAT_EXTENSIBLE with the PCM GUID (as ffmpeg and most tools write >16-bit)" \
    'sox -R speech-48k.wav -t raw -e signed -b 32 - trim 0 0.3 | audio_fixtures wav wav-48k-mono-s32.wav --rate 48000 --channels 1 --bits 32 --format extensible'
fixture wav-16k-mono-s16-streaming-0.wav "$S16" 0,1000 1000.0 1 pcm \
    "Streaming WAV writer that never seeks back: RIFF and data sizes left 0 (read the data to the end of the file)" \
    'sox -R speech-16k.wav $work/16k-1s.wav trim 0 1 && audio_fixtures size-fields $work/16k-1s.wav wav-16k-mono-s16-streaming-0.wav 0'
fixture wav-16k-mono-s16-streaming-ffffffff.wav "$S16" 0,1000 1000.0 1 pcm \
    "Streaming WAV writer (e.g. a pipe from sox/ffmpeg/arecord): RIFF and data sizes 0xFFFFFFFF" \
    'sox -R speech-16k.wav $work/16k-1s.wav trim 0 1 && audio_fixtures size-fields $work/16k-1s.wav wav-16k-mono-s16-streaming-ffffffff.wav 0xFFFFFFFF'
fixture wav-16k-stereo-s16.wav "$S16" 0,500 500.0 1 pcm \
    "16 kHz but stereo (right 6 dB quieter): looks like the passthrough format, must be down-mixed" \
    'sox -R speech-16k.wav -b 16 wav-16k-stereo-s16.wav trim 0 0.5 remix 1 1v0.5'

# -- Opus --------------------------------------------------------------------------------------------

fixture ogg-opus-mono.ogg "$S48" "0,$FULL" "$FULL" 1 ogg_opus \
    "Firefox MediaRecorder's default audio/ogg;codecs=opus, WhatsApp/Telegram voice notes (Ogg Opus), opusenc" \
    'opusenc --quiet --bitrate 24 --serial 1 speech-48k.wav ogg-opus-mono.ogg'
fixture webm-opus-mono.webm "$S48" "0,$FULL" "$FULL" 1 matroska_opus \
    "A finished WebM Opus file (known sizes, Duration, Cues, CodecDelay, DiscardPadding), as ffmpeg or a server-side remux writes it" \
    "$FF -i speech-48k.wav -c:a libopus -b:a 24k $BITEXACT -f webm webm-opus-mono.webm"
fixture webm-opus-stereo.webm "$S48" "0,$FULL" "$FULL" 1 matroska_opus \
    "Stereo Opus in WebM (right 6 dB quieter): cannot be re-packaged as mono, must be decoded and down-mixed" \
    "sox -R speech-48k.wav -t wav - remix 1 1v0.5 | $FF -f wav -i - -c:a libopus -b:a 32k $BITEXACT -f webm webm-opus-stereo.webm"
fixture mp4-opus-mono.mp4 "$S48" "0,$FULL" "$FULL" 1 mp4_elst \
    "Opus in MP4 (Opus sample entry with dOps; edit list), moov after mdat" \
    "$FF -i speech-48k.wav -c:a libopus -b:a 24k $BITEXACT -f mp4 mp4-opus-mono.mp4"
fixture mp4-opus-fragmented.mp4 "$S48" "0,$FULL" "$FULL" 21 fragmented_mp4_opus \
    "Chrome/Edge MediaRecorder audio/mp4 (Opus): empty moov then one moof+mdat per 250 ms" \
    "$FF -i speech-48k.wav -c:a libopus -b:a 24k $BITEXACT -movflags frag_keyframe+empty_moov+default_base_moof -frag_duration 250000 -f mp4 mp4-opus-fragmented.mp4"
fixture webm-opus-laced.webm "$S48" "0,$FULL" "$FULL" 1 matroska_opus \
    "WebM Opus with laced SimpleBlocks (5 frames each, Xiph and EBML lacing alternately), no Cues" \
    "$FF -i speech-48k.wav -c:a libopus -b:a 24k $BITEXACT -f webm \$work/unlaced.webm && audio_fixtures lace-webm \$work/unlaced.webm webm-opus-laced.webm"
fixture mka-opus-mono.mka "$S48" "0,$FULL" "$FULL" 1 matroska_opus \
    "Matroska (DocType matroska) Opus as mkvmerge writes it, from the Ogg Opus file" \
    'mkvmerge --quiet --deterministic 1 --no-date -o mka-opus-mono.mka ogg-opus-mono.ogg'

# -- AAC, MP3, FLAC, Vorbis, PCM-in-Matroska ---------------------------------------------------------------

fixture m4a-aac-moov-end.m4a "$S48" "0,$FULL" "$FULL" 1 mp4_elst \
    "Android recorder apps / ffmpeg default M4A: AAC-LC 48 kHz mono, moov after mdat" \
    "$FF -i speech-48k.wav -c:a aac -b:a 48k $BITEXACT m4a-aac-moov-end.m4a"
fixture m4a-aac-moov-start.m4a "$S48" "0,$FULL" "$FULL" 1 mp4_elst \
    "iPhone Voice Memos / faststart M4A: AAC-LC 48 kHz mono, moov before mdat" \
    "$FF -i speech-48k.wav -c:a aac -b:a 48k $BITEXACT -movflags +faststart m4a-aac-moov-start.m4a"
fixture mp4-aac-fragmented.mp4 "$S48" "0,$FULL" "$FULL" 45 fragmented_mp4_aac \
    "Safari (macOS/iOS) MediaRecorder audio/mp4: fragmented MP4, AAC-LC 48 kHz mono, one fragment per 250 ms" \
    "$FF -i speech-48k.wav -c:a aac -b:a 48k $BITEXACT -movflags frag_keyframe+empty_moov+default_base_moof -frag_duration 250000 -f mp4 mp4-aac-fragmented.mp4"
fixture 3gp-aac.3gp "$S48" "0,$FULL" "$FULL" 1 mp4_elst \
    "Android MediaRecorder THREE_GPP with AAC (16 kHz mono)" \
    "sox -R speech-48k.wav -t wav - rate -v 16000 | $FF -f wav -i - -c:a aac -b:a 24k $BITEXACT -f 3gp 3gp-aac.3gp"
fixture mp3-id3v2.mp3 "$S48" "0,$FULL" "$FULL" 1 mp3_lame_tag \
    "An MP3 from a recorder app or converter: ID3v2.3 tag, Xing/LAME info frame, 48 kHz mono 48 kbps" \
    "$FF -i speech-48k.wav -c:a libmp3lame -b:a 48k -fflags +bitexact -flags:a +bitexact -id3v2_version 3 -metadata title='Fixture speech' -metadata artist='backend-ai tests' mp3-id3v2.mp3"
fixture mp3-no-id3.mp3 "$S48" "0,$FULL" "$FULL" 50 mp3_no_tag \
    "A bare MP3 stream (first bytes a frame sync, no ID3, no Xing/LAME frame), 48 kHz mono 48 kbps" \
    "$FF -i speech-48k.wav -c:a libmp3lame -b:a 48k $BITEXACT -write_xing 0 -id3v2_version 0 mp3-no-id3.mp3"
fixture adts-aac.aac "$S48" "0,$FULL" "$FULL" 45 adts \
    "Raw AAC (ADTS) as some Android apps and streaming encoders write it, AAC-LC 48 kHz mono" \
    "$FF -i speech-48k.wav -c:a aac -b:a 48k $BITEXACT -f adts adts-aac.aac"
fixture flac-44k1-mono.flac "$S48" "0,$FULL" "$FULL" 1 flac \
    "FLAC 44.1 kHz mono 16-bit (desktop recorders, Android apps that offer lossless)" \
    "sox -R speech-48k.wav -t wav - rate -v 44100 | $FF -f wav -i - -c:a flac -compression_level 12 $BITEXACT flac-44k1-mono.flac"
fixture ogg-vorbis-mono.ogg "$S48" "0,$FULL" "$FULL" 1 ogg_vorbis \
    "Ogg Vorbis (older Firefox/Android apps, games), 48 kHz mono" \
    "$FF -i speech-48k.wav -c:a libvorbis -q:a 0 $BITEXACT ogg-vorbis-mono.ogg"
fixture webm-pcm-f32.mka "$S16" 0,500 500.0 1 pcm \
    "PCM float in Matroska, like Chrome's audio/webm;codecs=pcm (that one is 48 kHz, DocType webm); 16 kHz, 0.5 s, DocType matroska here" \
    "$FF -i speech-16k.wav -t 0.5 -c:a pcm_f32le $BITEXACT -f matroska webm-pcm-f32.mka"

# -- Benchmarks: 30 s, low bitrate ---------------------------------------------------------------

make_bench_speech "$work/bench-48k.wav"
BENCH="bench speech (30 s, 12 espeak-ng sentences; not kept: make-audio-fixtures.sh --bench-source makes it)"
fixture bench-30s-aac.m4a "$BENCH" 0,30000 30000.0 1 mp4_elst \
    "Benchmark: 30 s phone memo, AAC-LC 32 kbps mono 48 kHz" \
    "$FF -i \$work/bench-48k.wav -c:a aac -b:a 32k $BITEXACT bench-30s-aac.m4a"
fixture bench-30s-mp3.mp3 "$BENCH" 0,30000 30000.0 1 mp3_lame_tag \
    "Benchmark: 30 s MP3, 32 kbps mono 24 kHz (MPEG-2 Layer III, as low-bitrate encoders choose)" \
    "sox -R \$work/bench-48k.wav -t wav - rate -v 24000 | $FF -f wav -i - -c:a libmp3lame -b:a 32k $BITEXACT bench-30s-mp3.mp3"
if [ ! -e bench-30s-webm-opus.webm ]; then
    # The browser's own live-shape recording is preferred (scripts/record-browser-audio.sh makes
    # it); this stands in until that has run.
    fixture bench-30s-webm-opus.webm "$BENCH" 0,30000 30000.0 1 matroska_opus \
        "Benchmark: 30 s WebM Opus 16 kbps mono (ffmpeg's finished shape)" \
        "$FF -i \$work/bench-48k.wav -c:a libopus -b:a 16k $BITEXACT -f webm bench-30s-webm-opus.webm"
fi

# -- Checks and the manifest -----------------------------------------------------------------------

head -c 2 mp3-no-id3.mp3 | od -An -tx1 | grep -Eq '^ ff f[0-9a-f]$' \
    || { log "mp3-no-id3.mp3 does not start with a frame sync"; exit 1; }
head -c 3 mp3-id3v2.mp3 | grep -q '^ID3' || { log "mp3-id3v2.mp3 has no ID3v2 tag"; exit 1; }

audio_fixtures manifest --dir "$fixtures_dir" --notes "$notes"
audio_fixtures verify --dir "$fixtures_dir" >&2
log "done: $(du -cb "$fixtures_dir"/* | tail -n 1 | cut -f1) bytes in $fixtures_dir"
