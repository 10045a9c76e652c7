//! Reading request bodies into typed input, with every failure as a contract error: malformed
//! JSON and wrong types are 422, oversize bodies 413, never axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::audio::AudioError;
use crate::audio::budget::{Buffer, Reservation};
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

mod fields;
mod schema;

pub use fields::{DEFAULT_LANGUAGE, LANGUAGE_MAX_CHARS, identifier, is_invisible, language, text_field};
pub use schema::{PronunciationJson, PronunciationUpload, TranscribeJson, TranscribeUpload};

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
/// `audio_limit` bounds the uploaded audio; `body_limit` the whole body. The parts kept are held
/// in `reservation` as they arrive, never as declared.
pub async fn audio_input(
    request: Request,
    body_limit: usize,
    audio_limit: usize,
    reservation: &Reservation,
) -> Result<AudioInput, AppError> {
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
            // The upload is at most the body: its buffer grows towards that, never past it (a
            // 10 MB upload briefly took 19 MB by doubling), but only as its bytes arrive.
            let declared = declared_length(&request).map(|length| usize::try_from(length).unwrap_or(usize::MAX));
            let multipart = Multipart::from_request(request, &()).await.map_err(|rejection| {
                AppError::Validation(format!("invalid multipart body: {}", rejection.body_text()))
            })?;
            let limits = PartLimits { body: body_limit, audio: audio_limit, declared };
            read_multipart(multipart, limits, reservation).await
        }
    }
}

#[derive(Clone, Copy)]
struct PartLimits {
    body: usize,
    audio: usize,
    /// The body's declared length, a bound on the audio part's buffer.
    declared: Option<usize>,
}

async fn read_multipart(
    mut multipart: Multipart,
    limits: PartLimits,
    reservation: &Reservation,
) -> Result<AudioInput, AppError> {
    let mut fields = AudioFields::default();
    let mut upload: Option<Bytes> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(multipart_error(&error, limits.body)),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "audio" {
            let buffer = Buffer::new(reservation.clone(), limits.declared, limits.audio);
            upload = Some(read_capped(field, buffer, limits.audio, limits.body).await?);
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
                drain(field, limits.body).await?;
                continue;
            }
        };
        // A text part over its cap is an invalid field (422, naming it), not oversized audio.
        let buffer = Buffer::new(reservation.clone(), None, TEXT_PART_MAX_BYTES);
        let bytes =
            read_capped(field, buffer, TEXT_PART_MAX_BYTES, limits.body).await.map_err(|error| match error {
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

/// A part's bytes, each chunk reserved before it is kept; a part that does not fit waits for
/// room, then is refused 503.
async fn read_capped(
    mut field: axum::extract::multipart::Field<'_>,
    mut buffer: Buffer,
    limit: usize,
    body_limit: usize,
) -> Result<Bytes, AppError> {
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if buffer.len() + chunk.len() > limit {
                    return Err(AudioError::TooLarge { limit }.into());
                }
                buffer.extend(&chunk).await.map_err(|_| AudioError::Overloaded)?;
            }
            Ok(None) => return Ok(buffer.into_bytes()),
            Err(error) => return Err(multipart_error(&error, body_limit)),
        }
    }
}

/// A part nobody reads, consumed without being kept.
async fn drain(mut field: axum::extract::multipart::Field<'_>, body_limit: usize) -> Result<(), AppError> {
    let mut length = 0usize;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                length = length.saturating_add(chunk.len());
                if length > body_limit {
                    return Err(AudioError::TooLarge { limit: body_limit }.into());
                }
            }
            Ok(None) => return Ok(()),
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
