//! Reading request bodies into typed input, with every failure as a contract error: malformed
//! JSON and wrong types are 422, oversize bodies 413, never axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::audio::AudioError;
use crate::error::AppError;
use crate::middleware::body_deadline::BodyDeadlineElapsed;

/// The fields the audio endpoints take, from JSON or from multipart text parts.
#[derive(Debug, Default, Deserialize)]
pub struct AudioFields {
    /// http(s) URL of a recording (or upload it as the multipart part `audio`).
    pub audio_url: Option<String>,
    /// BCP-47, default `en-US`.
    pub language: Option<String>,
    /// Required by `/api/pronunciation`: the text the learner read, 1..1000 characters.
    pub reference_text: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
}

/// Largest multipart text part read; every documented field is far shorter.
const TEXT_PART_MAX_BYTES: usize = 64 * 1024;
/// Largest JSON body of any route: 5000 characters of up to 4 UTF-8 bytes, JSON escaping and
/// the other fields fit in it. The audio routes' JSON carries only a URL and short fields.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Longest `language` accepted, in characters (RFC 5646's recommended buffer).
pub const LANGUAGE_MAX_CHARS: usize = 35;
/// The locale used when a request names none.
pub const DEFAULT_LANGUAGE: &str = "en-US";

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
    /// The text the learner read.
    #[schema(
        example = "I went to the store yesterday.",
        min_length = 1,
        max_length = 1000,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u00ad\u034f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff]"
    )]
    reference_text: String,
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
    /// The text the learner read.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u00ad\u034f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff]"
    )]
    reference_text: String,
    /// Azure locale, language and region (`en-US`, `zh-Hans-CN`); absent or empty: `en-US`.
    #[schema(nullable = false, max_length = 35, pattern = r"^(?:[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})+)?(?![\s\S])")]
    language: Option<String>,
    #[schema(nullable = false, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    user_id: Option<String>,
    #[schema(nullable = false, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    session_id: Option<String>,
}

/// Where the audio comes from.
#[derive(Debug)]
pub enum AudioSource {
    Url(String),
    Upload(Bytes),
}

#[derive(Debug)]
pub struct AudioInput {
    pub fields: AudioFields,
    pub source: AudioSource,
}

enum BodyKind {
    Json,
    Multipart,
}

fn body_kind(request: &Request) -> Result<BodyKind, AppError> {
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        // A missing type is read as JSON, as most HTTP clients' "send JSON" shortcuts intend.
        "" | "application/json" => Ok(BodyKind::Json),
        other if other.ends_with("+json") => Ok(BodyKind::Json),
        "multipart/form-data" => Ok(BodyKind::Multipart),
        _ => Err(AppError::Validation("Content-Type must be application/json or multipart/form-data".into())),
    }
}

/// Read a JSON body of at most `limit` bytes into `T`.
pub async fn json_body<T: DeserializeOwned>(request: Request, limit: usize) -> Result<T, AppError> {
    if let BodyKind::Multipart = body_kind(&request)? {
        return Err(AppError::Validation("this endpoint takes a JSON body".into()));
    }
    refuse_declared_over(&request, limit)?;
    let bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|error| body_error(error, limit))?;
    parse_json(&bytes)
}

/// A body that says it is longer than `limit` is refused before a byte of it is read: with
/// `Expect: 100-continue` the client never even sends it.
fn refuse_declared_over(request: &Request, limit: usize) -> Result<(), AppError> {
    match declared_length(request) {
        Some(length) if length > limit as u64 => Err(AppError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
}

/// Whether an error, or one of its causes, is a body that came too slowly: a pause past
/// `REQUEST_BODY_TIMEOUT_SECONDS`, or all of it past `REQUEST_BODY_DEADLINE_SECONDS`.
fn too_slow(mut cause: Option<&(dyn std::error::Error + 'static)>) -> bool {
    while let Some(current) = cause {
        if current.is::<tower_http::timeout::TimeoutError>() || current.is::<BodyDeadlineElapsed>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Why a body could not be read: too long (413), too slow (408), or cut off by the client (422).
fn body_error(error: axum::Error, limit: usize) -> AppError {
    let error = error.into_inner();
    if too_slow(Some(error.as_ref())) {
        return AppError::BodyTimeout;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(current) = cause {
        if current.is::<http_body_util::LengthLimitError>() {
            return AppError::BodyTooLarge { limit };
        }
        cause = current.source();
    }
    AppError::Validation("the request body could not be read to its end".into())
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::Validation("request body is empty; send a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(|error| AppError::Validation(format!("invalid JSON body: {error}")))
}

/// Read an audio request: JSON with `audio_url`, or multipart with an `audio` file part.
/// `audio_limit` bounds the uploaded audio; `body_limit` the whole body.
pub async fn audio_input(request: Request, body_limit: usize, audio_limit: usize) -> Result<AudioInput, AppError> {
    match body_kind(&request)? {
        BodyKind::Json => {
            let fields: AudioFields = json_body(request, JSON_BODY_LIMIT).await?;
            let url = fields.audio_url.clone().filter(|url| !url.trim().is_empty()).ok_or_else(|| {
                AudioError::Missing("audio_url is required (or upload an `audio` file as multipart/form-data)".into())
            })?;
            Ok(AudioInput { fields, source: AudioSource::Url(url.trim().to_string()) })
        }
        BodyKind::Multipart => {
            refuse_declared_over(&request, body_limit)?;
            // The upload is at most the body: room for it at once, so the buffer never doubles
            // past it while growing (a 10 MB upload briefly took 19 MB that way).
            let room = declared_length(&request).map_or(0, |length| (length as usize).min(audio_limit));
            let multipart = Multipart::from_request(request, &()).await.map_err(|rejection| {
                AppError::Validation(format!("invalid multipart body: {}", rejection.body_text()))
            })?;
            read_multipart(multipart, body_limit, audio_limit, room).await
        }
    }
}

async fn read_multipart(
    mut multipart: Multipart,
    body_limit: usize,
    audio_limit: usize,
    room: usize,
) -> Result<AudioInput, AppError> {
    let mut fields = AudioFields::default();
    let mut upload: Option<Bytes> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(multipart_error(&error, body_limit)),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "audio" {
            upload = Some(read_capped(field, audio_limit, body_limit, room).await?);
            continue;
        }
        let slot = match name.as_str() {
            "audio_url" => &mut fields.audio_url,
            "language" => &mut fields.language,
            "reference_text" => &mut fields.reference_text,
            "user_id" => &mut fields.user_id,
            "session_id" => &mut fields.session_id,
            // Unknown parts are ignored, as unknown JSON fields are; but they still count
            // against the body limit while being drained.
            _ => {
                let _ = read_capped(field, body_limit, body_limit, 0).await?;
                continue;
            }
        };
        // A text part over its cap is an invalid field (422, naming it), not oversized audio.
        let bytes = read_capped(field, TEXT_PART_MAX_BYTES, body_limit, 0).await.map_err(|error| match error {
            AppError::Audio(AudioError::TooLarge { .. }) => {
                AppError::Validation(format!("multipart field `{name}` is longer than {TEXT_PART_MAX_BYTES} bytes"))
            }
            other => other,
        })?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| AppError::Validation(format!("multipart field `{name}` must be UTF-8 text")))?;
        *slot = Some(text);
    }
    let source = match (upload, fields.audio_url.clone().filter(|url| !url.trim().is_empty())) {
        (Some(bytes), _) => AudioSource::Upload(bytes),
        (None, Some(url)) => AudioSource::Url(url.trim().to_string()),
        (None, None) => {
            return Err(AudioError::Missing(
                "multipart body needs an `audio` file part (or an `audio_url` field)".into(),
            )
            .into());
        }
    };
    Ok(AudioInput { fields, source })
}

async fn read_capped(
    mut field: axum::extract::multipart::Field<'_>,
    limit: usize,
    body_limit: usize,
    room: usize,
) -> Result<Bytes, AppError> {
    let mut buffer = Vec::with_capacity(room);
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if buffer.len() + chunk.len() > limit {
                    return Err(AudioError::TooLarge { limit }.into());
                }
                buffer.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(buffer)),
            Err(error) => return Err(multipart_error(&error, body_limit)),
        }
    }
}

fn multipart_error(error: &axum::extract::multipart::MultipartError, body_limit: usize) -> AppError {
    if too_slow(std::error::Error::source(error)) {
        return AppError::BodyTimeout;
    }
    if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        AppError::BodyTooLarge { limit: body_limit }
    } else {
        AppError::Validation(format!("invalid multipart body: {}", error.body_text()))
    }
}

/// A locale as Azure's short-audio API takes it: a language and at least a region (`en-US`,
/// `en-GB`, `zh-Hans-CN`); the default when absent or empty. Azure answers a bare `en` or a
/// one-letter subtag with 400, which would reach the learner as a 502: it is refused here as the
/// client's mistake it is. A tag with spaces around it is a client bug worth a 422, not
/// something to guess about. BCP 47 tags are case-insensitive, so the tag is given its
/// conventional case (`EN-us` is `en-US`, `zh-hans-cn` is `zh-Hans-CN`): one cache entry for
/// one locale, and the casing Azure documents.
pub fn language(raw: Option<&str>, default: &str) -> Result<String, AppError> {
    let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
        return Ok(default.to_string());
    };
    let mut subtags = raw.split('-');
    let primary_ok =
        subtags.next().is_some_and(|tag| (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphabetic()));
    let mut rest = subtags.peekable();
    let rest_ok = rest.peek().is_some()
        && rest.all(|tag| (2..=8).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric()));
    if primary_ok && rest_ok && raw.len() <= LANGUAGE_MAX_CHARS {
        Ok(canonical_case(raw))
    } else {
        Err(AppError::Validation(format!("language must be a locale such as en-US or zh-Hans-CN (got {raw:?})")))
    }
}

/// RFC 5646 2.1.1's conventions: the language lower case, a four-letter script title case, a
/// two-letter region upper case, anything else lower case.
fn canonical_case(tag: &str) -> String {
    tag.split('-')
        .enumerate()
        .map(|(index, subtag)| match (index, subtag.len()) {
            (0, _) => subtag.to_ascii_lowercase(),
            (_, 2) => subtag.to_ascii_uppercase(),
            (_, 4) => {
                let lower = subtag.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            _ => subtag.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Characters that show nothing: whitespace, and the format characters (zero-width spaces and
/// joiners, direction marks and isolates, the word joiner, the byte order mark, soft hyphens)
/// that a text made of them alone would hand Gemini as nothing to analyse.
pub fn is_invisible(character: char) -> bool {
    character.is_whitespace()
        || matches!(
            character,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

/// Check an optional identifier (`user_id`, `session_id`): bounded, printable.
pub fn identifier(name: &str, value: Option<&str>) -> Result<(), AppError> {
    match value {
        Some(value) if value.chars().count() > 128 || value.chars().any(char::is_control) => {
            Err(AppError::Validation(format!("{name} must be at most 128 printable characters")))
        }
        _ => Ok(()),
    }
}

/// Check a required text field: at most `max_chars` characters as sent, not only whitespace.
pub fn text_field<'a>(name: &str, value: Option<&'a str>, max_chars: usize) -> Result<&'a str, AppError> {
    let value = value.ok_or_else(|| AppError::Validation(format!("{name} is required")))?;
    if value.chars().all(is_invisible) {
        return Err(AppError::Validation(format!("{name} must not be empty or only invisible characters")));
    }
    // Counted before trimming, so that the document's `maxLength` is the whole rule.
    let count = value.chars().count();
    if count > max_chars {
        return Err(AppError::Validation(format!("{name} must be at most {max_chars} characters (got {count})")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_bcp47_or_refused() {
        assert_eq!(language(None, "en-US").ok().as_deref(), Some("en-US"));
        assert_eq!(language(Some("en-GB"), "en-US").ok().as_deref(), Some("en-GB"));
        assert_eq!(language(Some(""), "en-US").ok().as_deref(), Some("en-US"));
        assert_eq!(language(Some("zh-Hans-CN"), "en-US").ok().as_deref(), Some("zh-Hans-CN"));
        // Case-insensitive, as BCP 47 tags are: one locale, one spelling.
        assert_eq!(language(Some("EN-us"), "en-US").ok().as_deref(), Some("en-US"));
        assert_eq!(language(Some("zh-hans-cn"), "en-US").ok().as_deref(), Some("zh-Hans-CN"));
        for bad in [
            "english",
            "en_US",
            "e",
            "en-US&format=simple",
            "en-US/../x",
            "🙂",
            " en-GB",
            "en-GB\n",
            "   ",
            "en",
            "fAi",
            "en-U",
            "en-",
        ] {
            assert!(language(Some(bad), "en-US").is_err(), "{bad}");
        }
    }

    #[test]
    fn text_fields_count_characters_not_bytes() {
        let accented = "é".repeat(5000);
        assert!(text_field("text", Some(&accented), 5000).is_ok());
        assert!(text_field("text", Some(&"é".repeat(5001)), 5000).is_err());
        assert!(text_field("text", Some("   "), 5000).is_err());
        assert!(text_field("text", None, 5000).is_err());
        assert!(text_field("text", Some("\u{200B}\u{200B}\u{FEFF} \u{2060}"), 5000).is_err(), "only invisible");
        assert!(text_field("text", Some("\u{200B}hi"), 5000).is_ok());
        // The limit counts what was sent, whitespace included, as `maxLength` does.
        assert!(text_field("text", Some(&format!(" {}", "a".repeat(5000))), 5000).is_err());
    }
}
