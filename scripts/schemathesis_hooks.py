"""Schemathesis hooks for scripts/check-openapi.sh (loaded through SCHEMATHESIS_HOOKS).

Random bytes are never a recording, so without help every upload would stop at the 415 and
the 200 responses of /api/transcribe and /api/pronunciation would never be checked against the
document. Generated files are therefore replaced by a real WAV recording, so schema-valid uploads
travel the whole way: multipart parsing, field checks, cache, simulator, and the response schema.
"""

import io
import struct
import wave

import schemathesis
from schemathesis.transport.serialization import Binary

AUDIO_PATHS = ("/api/transcribe", "/api/pronunciation")


def _wav_tone(samples: int = 8000) -> bytes:
    """Half a second of a 16 kHz mono 16-bit square wave: speech-shaped enough for the simulator."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"".join(struct.pack("<h", 6000 if (i // 20) % 2 == 0 else -6000) for i in range(samples)))
    return buffer.getvalue()


# Wrapped as Schemathesis wraps generated `format: binary` values: sent as a file part, and still
# a valid `audio` to Schemathesis' own view of the case.
WAV = Binary(_wav_tone())


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is not None and not meta.generation.mode.is_negative


@schemathesis.hook
def map_body(ctx, body):
    # Only a generated file (a `Binary`) is replaced: when a negative case broke the `audio` part
    # itself (left it out, made it a number), it stays broken. Anything else the case broke stays
    # broken too, so a negative case remains negative.
    if ctx.operation.path in AUDIO_PATHS and isinstance(body, dict) and isinstance(body.get("audio"), Binary):
        body = {**body, "audio": WAV}
    return body


TEXT_PARTS = ("audio_url", "language", "reference_text", "user_id", "session_id")


@schemathesis.hook
def filter_case(ctx, case):
    # Multipart carries text only: a number or array generated for a text part arrives as its
    # JSON text, often a perfectly valid string, so "wrong type accepted" would be a false
    # alarm. (In JSON bodies types survive, and those cases stay.)
    if case.operation.path in AUDIO_PATHS and (case.media_type or "").startswith("multipart/") and isinstance(case.body, dict):
        return all(isinstance(case.body[name], str) for name in TEXT_PARTS if name in case.body)
    return True


@schemathesis.check
def refused_only_for_its_audio(ctx, response, case):
    """A schema-valid request to an audio endpoint may be refused only for what no schema can
    say: 415 when the uploaded bytes are no recording (the coverage phase sends its own files,
    past `map_body`), 422 when they are a damaged one or its audio_url cannot be fetched (there is
    no network here). Never because of its other fields."""
    if case.operation.path not in AUDIO_PATHS or not _is_positive(case):
        return None
    if response.status_code == 415:
        audio = case.body.get("audio") if isinstance(case.body, dict) else None
        data = getattr(audio, "data", audio)
        if isinstance(data, (bytes, bytearray)) and data[:4] in (b"RIFF", b"OggS"):
            raise AssertionError("a WAV or Ogg upload was refused as unsupported")
    if response.status_code == 422:
        message = response.json().get("error", "")
        if not (message.startswith("audio_url ") or " recording is damaged: " in message):
            raise AssertionError(f"a schema-valid request was refused for its fields: {message!r}")
    return None


@schemathesis.check
def refused_only_for_its_range(ctx, response, case):
    """A schema-valid `/api/usage` request may be refused only for its range of days (more than
    92, or `from` after `to`), which the document states in words but no schema can."""
    if case.operation.path != "/api/usage" or not _is_positive(case) or response.status_code != 422:
        return None
    message = response.json().get("error", "")
    if not (message.startswith("at most ") or " is after " in message):
        raise AssertionError(f"a schema-valid usage request was refused for its fields: {message!r}")
    return None
