//! Simulated Azure Speech: the short-audio REST endpoint (UPSTREAMS.md 1.1-1.8) here, fast
//! transcription (1.9) in [`fast`].
//!
//! Flow of one short-audio request:
//! 1. `Simulator::before_answer` (latency, drawn fault). RateLimited -> 429 with `Retry-After`;
//!    ServerError -> 503; Malformed -> 200 `{"RecognitionStatus": "Error"}`, Azure's own
//!    "internal error, try again" (the one malformed answer this API documents);
//! 2. validate like Azure: key (401, APIM's body), `language` (400 `{"Message": "Invalid CID or
//!    language"}`), the audio against its `Content-Type` as strictly as the documentation
//!    reads (400; [`accept`]), at most 60 s (30 s assessed), the `Pronunciation-Assessment`
//!    header (400);
//! 3. answer deterministically from a hash of the audio: a learner sentence, timings from the
//!    audio itself (WAV samples, Ogg granules), 1-2 NBest alternatives, and with pronunciation
//!    assessment the flat REST scores with `PronScore` from Azure's documented formula. A WAV of
//!    silence gives `InitialSilenceTimeout`.
//!
//! The simple format is served unless `format=detailed` or an assessment is asked for (the
//! official samples read `NBest` without sending `format`). Bodies are written with `json!`,
//! never with the client's wire types, so a client bug cannot hide behind a shared struct.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use self::accept::Speech;
use self::assessment::{assessment_answer, decode_assessment};
use super::{Fault, Simulator};

/// axum's 2 MB default is barely Azure's 60 s of 16 kHz 16-bit mono (~1.92 MB); leave room for
/// fast transcription's long WAVs so the client, not the simulator, decides what is too large.
const MAX_AUDIO_BYTES: usize = 64 * 1024 * 1024;
const TICKS_PER_SECOND: u64 = 10_000_000;
/// Pronunciation assessment's documented limit.
const ASSESSMENT_MAX_SECONDS: u64 = 30;
const MISPRONUNCIATION_BELOW: f64 = 60.0;

/// What learners say in the simulator's world.
const SENTENCES: &[&str] = &[
    "I go to the store yesterday.",
    "She doesn't like apples.",
    "Good morning, how are you today?",
    "I have been living here for three years.",
    "Can you help me with my homework?",
    "The weather is very nice today.",
    "My brother works in a hospital.",
    "I would like a cup of coffee, please.",
];

mod accept;
mod assessment;
mod fast;
mod sounds;

pub fn router(simulator: Simulator) -> Router {
    Router::new()
        .route("/speech/recognition/{mode}/cognitiveservices/v1", post(recognise))
        .route("/speechtotext/transcriptions:transcribe", post(fast::transcribe))
        .layer(DefaultBodyLimit::max(MAX_AUDIO_BYTES))
        .with_state(simulator)
}

async fn recognise(
    State(simulator): State<Simulator>,
    Path(mode): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !matches!(mode.as_str(), "conversation" | "interactive" | "dictation") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if simulator.config().azure_unavailable {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": {"code": "503", "message": "The service is temporarily unavailable."}}),
        );
    }
    match simulator.before_answer().await {
        Some(Fault::RateLimited) => {
            let seconds = simulator.config().retry_after_seconds;
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": {"code": "429", "message": format!("Too many requests. Please retry after {seconds} second(s).")}}),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        Some(Fault::ServerError) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"code": "503", "message": "The service is temporarily unavailable."}}),
            );
        }
        Some(Fault::Malformed) => {
            return json_response(StatusCode::OK, json!({"RecognitionStatus": "Error", "Offset": 0, "Duration": 0}));
        }
        // A hang never returns from `before_answer`.
        Some(Fault::Hang) | None => {}
    }
    match answer(&query, &headers, &body) {
        Ok(value) => json_response(StatusCode::OK, value),
        Err(Refusal(status, body)) => json_response(status, body),
    }
}

/// Why a request is refused: Azure's status and body.
struct Refusal(StatusCode, Value);

fn answer(query: &HashMap<String, String>, headers: &HeaderMap, body: &[u8]) -> Result<Value, Refusal> {
    let has_key = header_text(headers, "ocp-apim-subscription-key").is_some_and(|key| !key.trim().is_empty())
        || header_text(headers, "authorization").is_some_and(|auth| auth.len() > 7 && auth.starts_with("Bearer "));
    // The short-audio table says 403 for missing credentials; APIM's gateway is commonly seen
    // answering 401 with this body (UPSTREAMS.md 4, point 2). The client treats both as Auth.
    if !has_key {
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        ));
    }
    if !query.get("language").is_some_and(|language| is_locale(language)) {
        return Err(bad_request("Invalid CID or language"));
    }
    let speech: Speech =
        accept::short_audio(header_text(headers, "content-type"), body).map_err(|message| bad_request(&message))?;
    let assessment = match header_text(headers, "pronunciation-assessment") {
        Some(encoded) => {
            Some(decode_assessment(encoded).ok_or_else(|| bad_request("Invalid Pronunciation-Assessment header"))?)
        }
        None => None,
    };
    let detailed = assessment.is_some() || query.get("format").is_some_and(|format| format == "detailed");

    if assessment.is_some() && speech.ticks > ASSESSMENT_MAX_SECONDS * TICKS_PER_SECOND {
        return Err(bad_request("Audio longer than 30 seconds cannot be assessed"));
    }
    let hash = audio_hash(body);
    if speech.silent {
        return Ok(json!({"RecognitionStatus": "InitialSilenceTimeout", "Offset": 0, "Duration": speech.ticks}));
    }
    // Leave a little lead-in silence before the speech, as real recordings have.
    let offset = (speech.ticks / 10).min(TICKS_PER_SECOND / 2);
    let duration = speech.ticks - offset;

    if let Some(params) = assessment {
        return Ok(assessment_answer(&params, hash, offset, duration));
    }
    let sentence = SENTENCES[(hash % SENTENCES.len() as u64) as usize];
    if !detailed {
        return Ok(
            json!({"RecognitionStatus": "Success", "DisplayText": sentence, "Offset": offset, "Duration": duration}),
        );
    }
    let confidence = 0.80 + (hash >> 8) as f64 % 19.0 / 100.0;
    let lexical = lexical(sentence);
    let mut n_best = vec![alternative(sentence, &lexical, confidence)];
    if hash & 1 == 1 {
        // A lower-ranked reading without punctuation, sometimes listed first: NBest is not
        // sorted in Azure's own example either.
        let second = alternative(&lexical, &lexical, confidence - 0.1);
        if hash & 2 == 2 { n_best.insert(0, second) } else { n_best.push(second) }
    }
    Ok(json!({
        "RecognitionStatus": "Success",
        "Offset": offset,
        "Duration": duration,
        "DisplayText": sentence,
        "SNR": 20.0 + (hash >> 16) as f64 % 200.0 / 10.0,
        "NBest": n_best,
    }))
}

fn alternative(display: &str, lexical: &str, confidence: f64) -> Value {
    json!({"Confidence": round(confidence, 4), "Lexical": lexical, "ITN": lexical, "MaskedITN": lexical, "Display": display})
}

/// A BCP-47 locale as Azure's short-audio API takes it: language and region, e.g. `en-US`,
/// `zh-Hans-CN`.
fn is_locale(value: &str) -> bool {
    let mut parts = value.split('-');
    let language = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && !rest.is_empty()
        && rest.iter().all(|part| (2..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Lower case, punctuation dropped except in-word apostrophes: Azure's lexical form.
fn lexical(display: &str) -> String {
    display
        .split_whitespace()
        .map(|word| {
            word.trim_matches(|c: char| !c.is_alphanumeric())
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sentence recognised in `audio`, for the simulated OpenAI-compatible transcription.
pub(crate) fn sentence_for(audio: &[u8]) -> &'static str {
    SENTENCES[(audio_hash(audio) % SENTENCES.len() as u64) as usize]
}

fn audio_hash(body: &[u8]) -> u64 {
    let digest = Sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// A second deterministic value per word from the audio's hash (splitmix64 finaliser).
fn mix(hash: u64, salt: u64) -> u64 {
    let mut z = hash.wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn bad_request(message: &str) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, json!({"Message": message}))
}

/// Azure answers `application/json; charset=utf-8` (the observed 400 in UPSTREAMS.md 1.7).
fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests;
