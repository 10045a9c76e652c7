#!/usr/bin/env bash
# Makes tests/fixtures/audio/reading/: "The North Wind and the Sun", one Ogg/Opus file per
# sentence, spoken by espeak-ng. The long-reading tests (tests/api/readings.rs) decode them and
# join them with silence of a known length, so they know where every sentence and pause is.
# Not run by CI: the files are committed; this is how they were made (Debian 12: espeak-ng 1.51,
# sox 14.4.2, opus-tools 0.2).
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo_dir/tests/fixtures/audio/reading"
work="$(mktemp -d "${TMPDIR:-/tmp}/make-reading-fixtures.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

i=0
while IFS= read -r sentence; do
    i=$((i + 1))
    espeak-ng -v en-us -s 150 -w "$work/raw$i.wav" "$sentence"
    sox "$work/raw$i.wav" -r 16000 -c 1 -b 16 "$work/s$i.wav"
    opusenc --quiet --bitrate 20 --comp 10 "$work/s$i.wav" "$out/north-wind-$i.ogg"
done <<'TEXT'
The North Wind and the Sun were disputing which was the stronger, when a traveler came along wrapped in a warm cloak.
They agreed that the one who first succeeded in making the traveler take his cloak off should be considered stronger than the other.
Then the North Wind blew as hard as he could, but the more he blew the more closely did the traveler fold his cloak around him.
And at last the North Wind gave up the attempt.
Then the Sun shined out warmly, and immediately the traveler took off his cloak.
And so the North Wind was obliged to confess that the Sun was the stronger of the two.
TEXT
