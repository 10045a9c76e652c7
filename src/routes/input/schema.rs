//! The request bodies of the audio endpoints as the OpenAPI document describes them.

// The request bodies as the OpenAPI document describes them. The handlers read `AudioFields`
// (one shape for both encodings and both endpoints); these say, per endpoint and encoding, what
// the handlers' checks accept, so that a request valid by the document is never refused for
// its fields and one invalid by it always is.
//
// The patterns are written for ECMA-262 and Python alike (Schemathesis reads them as Python):
// no `\s` (whose meaning differs between the two and Rust's `str::trim`), and `(?![\s\S])` in
// place of `$`, which in Python also matches before a final newline.
//   text fields:  [^...]          at least one visible character (`input::is_invisible`)
//   identifiers:  ^[^\u0000-...]  no control character (`char::is_control`, category Cc)
//   language:     empty (the default) or a locale exactly as `language()` reads it

/// `POST /api/transcribe` with a JSON body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the body; the handler reads AudioFields")]
pub struct TranscribeJson {
    /// http(s) URL of a recording on the public internet: WAV, Ogg, WebM/Matroska, MP4/M4A/3GP, MP3, AAC (ADTS) or FLAC, recognised by its bytes.
    #[schema(
        example = "https://cdn.example.com/recordings/42.wav",
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    audio_url: String,
    /// Azure locale, language and region (`en-US`, `zh-Hans-CN`); absent, null or empty: `en-US`.
    #[schema(example = "en-US", max_length = 35, pattern = r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)?(?![\s\S])")]
    language: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    user_id: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    session_id: Option<String>,
    /// Read by /api/pronunciation; ignored here, but a string when present (one body shape
    /// serves both endpoints).
    reference_text: Option<String>,
}

/// `POST /api/transcribe` as `multipart/form-data`. An `audio_url` text part may stand in for
/// the `audio` file; the file wins when both are sent.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the body; the handler reads AudioFields")]
pub struct TranscribeUpload {
    /// The recording as the device made it: WAV, Ogg, WebM/Matroska, MP4/M4A/3GP, MP3, AAC (ADTS) or FLAC, recognised by its bytes; at most AUDIO_MAX_BYTES and AUDIO_MAX_SECONDS.
    #[schema(value_type = String, format = Binary)]
    audio: Vec<u8>,
    /// Azure locale, language and region (`en-US`, `zh-Hans-CN`); absent or empty: `en-US`.
    #[schema(nullable = false, max_length = 35, pattern = r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)?(?![\s\S])")]
    language: Option<String>,
    #[schema(nullable = false, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    user_id: Option<String>,
    #[schema(nullable = false, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    session_id: Option<String>,
}

/// `POST /api/pronunciation` with a JSON body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the body; the handler reads AudioFields")]
pub struct PronunciationJson {
    /// http(s) URL of a recording on the public internet: WAV, Ogg, WebM/Matroska, MP4/M4A/3GP, MP3, AAC (ADTS) or FLAC, recognised by its bytes.
    #[schema(
        example = "https://cdn.example.com/recordings/42.wav",
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    audio_url: String,
    /// The text the learner read (scripted). Absent or null: free speech (unscripted), assessed
    /// against its own transcript.
    #[schema(
        example = "I went to the store yesterday.",
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u00ad\u034f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff]"
    )]
    reference_text: Option<String>,
    /// Azure locale, language and region (`en-US`, `zh-Hans-CN`); absent, null or empty: `en-US`.
    #[schema(example = "en-US", max_length = 35, pattern = r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)?(?![\s\S])")]
    language: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    user_id: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    session_id: Option<String>,
}

/// `POST /api/pronunciation` as `multipart/form-data`; `audio_url` may stand in for `audio`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the body; the handler reads AudioFields")]
pub struct PronunciationUpload {
    /// The recording as the device made it: WAV, Ogg, WebM/Matroska, MP4/M4A/3GP, MP3, AAC (ADTS) or FLAC, recognised by its bytes; at most AUDIO_MAX_BYTES and AUDIO_MAX_SECONDS.
    #[schema(value_type = String, format = Binary)]
    audio: Vec<u8>,
    /// The text the learner read (scripted). Absent: free speech (unscripted), assessed against
    /// its own transcript.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u00ad\u034f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff]"
    )]
    reference_text: Option<String>,
    /// Azure locale, language and region (`en-US`, `zh-Hans-CN`); absent or empty: `en-US`.
    #[schema(nullable = false, max_length = 35, pattern = r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)?(?![\s\S])")]
    language: Option<String>,
    #[schema(nullable = false, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    user_id: Option<String>,
    #[schema(nullable = false, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    session_id: Option<String>,
}
