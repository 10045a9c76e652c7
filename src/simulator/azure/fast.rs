//! Simulated Azure fast transcription (UPSTREAMS.md 1.9):
//! `POST /speechtotext/transcriptions:transcribe?api-version=2024-11-15`, multipart with an
//! `audio` file part and a `definition` JSON part naming the locale.
//!
//! It takes the containers the real service documents as they are (WAV, MP3, Ogg, FLAC, WebM,
//! MP4...), measures the recording it received exactly (by demuxing and decoding it, as the
//! real service must), and answers phrases that span that length, so a long recording cut short
//! on its way shows in the project's tests as a wrong duration. Errors use the Speech REST
//! `Error` schema, `{code, message}`, not wrapped in `{"error": ...}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::{Fault, Simulator};
use super::{SENTENCES, audio_hash, header_text, is_locale, json_response, mix, round};
use crate::audio::{Policy, Purpose, SendFormat, normalise};

/// The API versions whose request shape this is.
const API_VERSIONS: [&str; 2] = ["2024-11-15", "2025-10-15"];
/// The documented limit of one file (2024: under 2 hours).
const MAX_DURATION: Duration = Duration::from_secs(2 * 60 * 60);
/// A phrase every few seconds of speech, as the real service splits at pauses.
const PHRASE_MS: u64 = 4_000;

pub(super) async fn transcribe(
    State(simulator): State<Simulator>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    if simulator.config().azure_unavailable {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"code": "ServiceUnavailable", "message": "The service is temporarily unavailable."}),
        );
    }
    match simulator.before_answer().await {
        Some(Fault::RateLimited) => {
            let seconds = simulator.config().retry_after_seconds;
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"code": "TooManyRequests", "message": "Resource Exhausted"}),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        Some(Fault::ServerError) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"code": "ServiceUnavailable", "message": "The service is temporarily unavailable."}),
            );
        }
        Some(Fault::Malformed) => {
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"durationMilliseconds": 12"#)
                .into_response();
        }
        Some(Fault::Hang) | None => {}
    }
    match answer(&query, &headers, multipart).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err((status, code, message)) => json_response(status, json!({"code": code, "message": message})),
    }
}

type Refusal = (StatusCode, &'static str, String);

fn invalid(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, "InvalidArgument", message.into())
}

async fn answer(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Value, Refusal> {
    if header_text(headers, "ocp-apim-subscription-key").is_none_or(|key| key.trim().is_empty()) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Access denied due to invalid subscription key or wrong API endpoint.".to_string(),
        ));
    }
    if !query.get("api-version").is_some_and(|version| API_VERSIONS.contains(&version.as_str())) {
        return Err(invalid("The api-version query parameter is missing or not supported."));
    }
    let (mut audio, mut definition) = (None, None);
    while let Some(field) =
        multipart.next_field().await.map_err(|error| invalid(format!("Invalid multipart body: {error}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|error| invalid(format!("Invalid multipart body: {error}")))?;
        match name.as_str() {
            "audio" => audio = Some(bytes),
            "definition" => definition = Some(bytes),
            _ => {}
        }
    }
    let definition: Value =
        serde_json::from_slice(&definition.ok_or_else(|| invalid("The definition part is missing."))?)
            .map_err(|_| invalid("The definition part is not valid JSON."))?;
    let locale = definition["locales"]
        .as_array()
        .and_then(|locales| locales.first())
        .and_then(Value::as_str)
        .filter(|locale| is_locale(locale))
        .ok_or_else(|| invalid("definition.locales must name at least one valid locale."))?
        .to_string();
    let audio =
        audio.filter(|audio| !audio.is_empty()).ok_or_else(|| invalid("The audio part is missing or empty."))?;

    let hash = audio_hash(&audio);
    let policy = Policy { max_duration: MAX_DURATION, send: SendFormat::Auto };
    let measured = tokio::task::spawn_blocking(move || normalise::normalise(audio, Purpose::Transcription, policy))
        .await
        .map_err(|_| invalid("The audio could not be decoded."))?
        .map_err(|rejected| (StatusCode::UNPROCESSABLE_ENTITY, "UnsupportedMediaType", rejected.error.to_string()))?;
    let duration_ms = u64::try_from(measured.duration.as_millis()).unwrap_or(u64::MAX);
    Ok(phrases(hash, duration_ms, &locale))
}

/// Learner sentences, one every few seconds, across the whole recording after a short lead-in.
fn phrases(hash: u64, duration_ms: u64, locale: &str) -> Value {
    let lead_in = (duration_ms / 20).min(500);
    let speech = duration_ms.saturating_sub(lead_in);
    let count = (speech / PHRASE_MS).max(u64::from(speech > 0));
    let span = speech.checked_div(count).unwrap_or(0);
    let phrases: Vec<Value> = (0..count)
        .map(|index| {
            let sentence = SENTENCES[(mix(hash, index) % SENTENCES.len() as u64) as usize];
            let offset = lead_in + index * span;
            let length = span * 9 / 10;
            let words: Vec<&str> = sentence.split_whitespace().collect();
            let per_word = length / words.len().max(1) as u64;
            let words: Vec<Value> = words
                .iter()
                .enumerate()
                .map(|(at, word)| {
                    json!({"text": word, "offsetMilliseconds": offset + at as u64 * per_word, "durationMilliseconds": per_word})
                })
                .collect();
            json!({
                "offsetMilliseconds": offset,
                "durationMilliseconds": length,
                "text": sentence,
                "words": words,
                "locale": locale,
                "confidence": round(0.85 + (mix(hash, index + 100) % 13) as f64 / 100.0, 4),
            })
        })
        .collect();
    let combined = phrases.iter().filter_map(|phrase| phrase["text"].as_str()).collect::<Vec<_>>().join(" ");
    json!({"durationMilliseconds": duration_ms, "combinedPhrases": [{"text": combined}], "phrases": phrases})
}
