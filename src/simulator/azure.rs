//! Simulated Azure Speech short-audio REST endpoint (UPSTREAMS.md 1.1-1.8).
//!
//! Flow of one request:
//! 1. `Simulator::before_answer` (latency, drawn fault). RateLimited -> 429 with `Retry-After`;
//!    ServerError -> 503; Malformed -> 200 `{"RecognitionStatus": "Error"}`, Azure's own
//!    "internal error, try again" (the one malformed answer this API documents);
//! 2. validate like Azure: key (401, APIM's body), `language` (400 `{"Message": "Invalid CID or
//!    language"}`), `Content-Type` and the audio's magic bytes (400), the
//!    `Pronunciation-Assessment` header (400);
//! 3. answer deterministically from a hash of the audio: a learner sentence, timings from the
//!    WAV header (Ogg: estimated from size), 1-2 NBest alternatives, and with pronunciation
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
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Fault, Simulator};
use crate::audio::AudioFormat;

/// axum's 2 MB default is barely Azure's 60 s of 16 kHz 16-bit mono (~1.92 MB); leave room for
/// richer WAVs so the client, not the simulator, decides what is too large.
const MAX_AUDIO_BYTES: usize = 16 * 1024 * 1024;
const TICKS_PER_SECOND: u64 = 10_000_000;
/// For Ogg/Opus, whose duration needs a decoder: a typical speech Opus bitrate.
const OGG_BYTES_PER_SECOND: u64 = 4_000;
/// 16 kHz, 16-bit mono: what a WAV with a broken header is assumed to be.
const DEFAULT_WAV_BYTE_RATE: u64 = 32_000;
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

pub fn router(simulator: Simulator) -> Router {
    Router::new()
        .route("/speech/recognition/{mode}/cognitiveservices/v1", post(recognise))
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
    let declared = header_text(headers, "content-type")
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase());
    let format = match declared.as_deref() {
        Some("audio/wav") => AudioFormat::Wav,
        Some("audio/ogg") => AudioFormat::OggOpus,
        _ => return Err(bad_request("Unsupported audio format: use audio/wav or audio/ogg; codecs=opus")),
    };
    if AudioFormat::detect(body) != Some(format) {
        return Err(bad_request("Invalid audio: the body does not match its Content-Type"));
    }
    let assessment = match header_text(headers, "pronunciation-assessment") {
        Some(encoded) => {
            Some(decode_assessment(encoded).ok_or_else(|| bad_request("Invalid Pronunciation-Assessment header"))?)
        }
        None => None,
    };
    let detailed = assessment.is_some() || query.get("format").is_some_and(|format| format == "detailed");

    let hash = audio_hash(body);
    let speech = match format {
        AudioFormat::Wav => wav_speech(body),
        AudioFormat::OggOpus => {
            Speech { ticks: body.len() as u64 * TICKS_PER_SECOND / OGG_BYTES_PER_SECOND, silent: false }
        }
    };
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

/// The decoded `Pronunciation-Assessment` parameters the answer depends on.
struct AssessmentParams {
    reference_text: String,
    five_point: bool,
    prosody: bool,
}

fn decode_assessment(encoded: &str) -> Option<AssessmentParams> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let params: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    Some(AssessmentParams {
        reference_text: text("ReferenceText").unwrap_or_default().to_string(),
        five_point: text("GradingSystem") == Some("FivePoint"),
        prosody: text("EnableProsodyAssessment").is_some_and(|value| value.eq_ignore_ascii_case("true")),
    })
}

/// The flat REST PA shape (UPSTREAMS.md 1.8): scores on the NBest item and on each word.
fn assessment_answer(params: &AssessmentParams, hash: u64, offset: u64, duration: u64) -> Value {
    let scripted = !params.reference_text.trim().is_empty();
    // Reading aloud: the learner said the reference text. Unscripted: they said a sentence.
    let display = if scripted {
        params.reference_text.trim().to_string()
    } else {
        SENTENCES[(hash % SENTENCES.len() as u64) as usize].to_string()
    };
    let lexical = lexical(&display);
    let spoken: Vec<&str> = lexical.split_whitespace().collect();
    let scale = if params.five_point { 0.05 } else { 1.0 };

    let per_word = duration / spoken.len().max(1) as u64;
    let mut accuracies = Vec::with_capacity(spoken.len());
    let words: Vec<Value> = spoken
        .iter()
        .enumerate()
        .map(|(index, word)| {
            let roll = mix(hash, index as u64 + 1);
            // About one word in five is mispronounced (below Azure's threshold of 60).
            let accuracy = if roll.is_multiple_of(5) {
                30.0 + (roll >> 8) as f64 % 30.0
            } else {
                70.0 + (roll >> 8) as f64 % 31.0
            };
            accuracies.push(accuracy);
            json!({
                "Word": word,
                "Offset": offset + index as u64 * per_word,
                "Duration": per_word,
                "Confidence": 0.0,
                "AccuracyScore": accuracy * scale,
                "ErrorType": if accuracy < MISPRONUNCIATION_BELOW { "Mispronunciation" } else { "None" },
            })
        })
        .collect();
    let accuracy = round(accuracies.iter().sum::<f64>() / accuracies.len().max(1) as f64, 1);
    let fluency = 60.0 + (mix(hash, 101) % 41) as f64;
    let completeness = 100.0;
    let prosody = params.prosody.then(|| 55.0 + (mix(hash, 102) % 45) as f64);
    let pron_score = if scripted {
        pron_score(
            &[Some(accuracy), Some(fluency), Some(completeness), prosody],
            &[0.4, 0.2, 0.2, 0.2],
            &[0.6, 0.2, 0.2],
        )
    } else {
        pron_score(&[Some(accuracy), Some(fluency), prosody], &[0.6, 0.2, 0.2], &[0.6, 0.4])
    };

    let mut best = json!({
        "Confidence": round(0.85 + (hash >> 8) as f64 % 14.0 / 100.0, 4),
        "Lexical": lexical,
        "ITN": lexical,
        "MaskedITN": lexical,
        "Display": display,
        "AccuracyScore": accuracy * scale,
        "FluencyScore": fluency * scale,
        "CompletenessScore": completeness * scale,
        "PronScore": pron_score * scale,
        "Words": words,
    });
    if let (Some(prosody), Some(best)) = (prosody, best.as_object_mut()) {
        best.insert("ProsodyScore".to_string(), json!(prosody * scale));
    }
    json!({
        "RecognitionStatus": "Success",
        "Offset": offset,
        "Duration": duration,
        "DisplayText": display,
        "SNR": 20.0 + (hash >> 16) as f64 % 200.0 / 10.0,
        "NBest": [best],
    })
}

/// Azure's overall score [AZ-PA]: the available scores sorted ascending, weighted by
/// `with_all` when every score is there (prosody included), else by `without_last`.
fn pron_score(scores: &[Option<f64>], with_all: &[f64], without_last: &[f64]) -> f64 {
    let mut present: Vec<f64> = scores.iter().flatten().copied().collect();
    present.sort_by(f64::total_cmp);
    let weights = if present.len() == scores.len() { with_all } else { without_last };
    round(present.iter().zip(weights).map(|(score, weight)| score * weight).sum(), 1)
}

struct Speech {
    ticks: u64,
    silent: bool,
}

/// Duration and silence from the RIFF chunks. The data length field is ignored, as Azure does
/// (chunked uploads send a header with length 0): the data runs to the end of the body.
fn wav_speech(body: &[u8]) -> Speech {
    let mut byte_rate = 0u64;
    let mut bits_per_sample = 16u16;
    let mut data: &[u8] = &[];
    let mut at = 12usize;
    while let Some(chunk_header) = at.checked_add(8).and_then(|end| body.get(at..end)) {
        let id = &chunk_header[..4];
        let size = u32::from_le_bytes([chunk_header[4], chunk_header[5], chunk_header[6], chunk_header[7]]) as usize;
        let start = at + 8;
        if id == b"data" {
            data = body.get(start..).unwrap_or_default();
            break;
        }
        if id == b"fmt "
            && let Some(fmt) = start.checked_add(16).and_then(|end| body.get(start..end))
        {
            byte_rate = u32::from_le_bytes([fmt[8], fmt[9], fmt[10], fmt[11]]) as u64;
            bits_per_sample = u16::from_le_bytes([fmt[14], fmt[15]]);
        }
        // Chunks are padded to an even size.
        at = start.saturating_add(size).saturating_add(size & 1);
    }
    let byte_rate = if byte_rate == 0 { DEFAULT_WAV_BYTE_RATE } else { byte_rate };
    // 8-bit PCM is unsigned: its silence is 0x80, wider samples' silence is 0.
    let silence = if bits_per_sample == 8 { 0x80 } else { 0 };
    Speech { ticks: data.len() as u64 * TICKS_PER_SECOND / byte_rate, silent: data.iter().all(|&byte| byte == silence) }
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
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::simulator::SimConfig;

    const PATH: &str = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US&format=detailed";
    const WAV: &str = "audio/wav; codecs=audio/pcm; samplerate=16000";

    /// A canonical 44-byte header (16 kHz, 16-bit, mono) followed by `pcm`.
    fn wav(pcm: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(44 + pcm.len());
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
        bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
        bytes.extend_from_slice(&16_000u32.to_le_bytes());
        bytes.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
        bytes.extend_from_slice(&2u16.to_le_bytes()); // block align
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
        bytes.extend_from_slice(pcm);
        bytes
    }

    /// `len` bytes of a noisy, never-silent signal; `seed` changes the recording.
    fn speech(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 1).collect()
    }

    fn ogg_opus(len: usize) -> Vec<u8> {
        let mut ogg = b"OggS".to_vec();
        ogg.extend_from_slice(&[0; 22]);
        ogg.push(1);
        ogg.push(19);
        ogg.extend_from_slice(b"OpusHead\x01\x01\x38\x01\x80\x3e\x00\x00\x00\x00\x00");
        ogg.resize(len, 7);
        ogg
    }

    fn assessment_header(params: Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(params.to_string())
    }

    async fn call(
        simulator: Simulator,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).expect("valid request");
        let response = router(simulator).oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, json)
    }

    async fn recognise(uri: &str, extra: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Value) {
        let mut headers = vec![("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", WAV)];
        headers.extend_from_slice(extra);
        let (status, _, json) = call(Simulator::default(), uri, &headers, body).await;
        (status, json)
    }

    #[tokio::test]
    async fn a_request_without_a_key_is_refused_as_apim_does() {
        let (status, _, body) = call(Simulator::default(), PATH, &[("Content-Type", WAV)], wav(&speech(3200, 1))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "401");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.starts_with("Access denied")));
    }

    #[tokio::test]
    async fn a_missing_or_malformed_language_is_an_invalid_cid_or_language() {
        for uri in [
            "/speech/recognition/conversation/cognitiveservices/v1?format=detailed",
            "/speech/recognition/conversation/cognitiveservices/v1?language=english",
            "/speech/recognition/conversation/cognitiveservices/v1?language=en",
            "/speech/recognition/conversation/cognitiveservices/v1?language=en-US%3Bx",
        ] {
            let (status, body) = recognise(uri, &[], wav(&speech(3200, 1))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body, json!({"Message": "Invalid CID or language"}), "{uri}");
        }
    }

    #[tokio::test]
    async fn audio_that_is_not_what_its_content_type_says_is_refused() {
        let headers = |content_type| vec![("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", content_type)];
        for (content_type, body) in [
            ("audio/mpeg", wav(&speech(3200, 1))),
            (WAV, ogg_opus(400)),
            ("audio/ogg; codecs=opus", wav(&speech(3200, 1))),
            (WAV, b"not audio at all".to_vec()),
            (WAV, Vec::new()),
        ] {
            let (status, _, body) = call(Simulator::default(), PATH, &headers(content_type), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}");
            assert!(body["Message"].is_string(), "{content_type}");
        }
    }

    #[tokio::test]
    async fn a_wav_of_silence_times_out_on_initial_silence_without_nbest() {
        let (status, body) = recognise(PATH, &[], wav(&[0; 32_000])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["RecognitionStatus"], "InitialSilenceTimeout");
        assert_eq!(body["Duration"], 10_000_000);
        assert!(body.get("NBest").is_none() && body.get("DisplayText").is_none());
    }

    #[tokio::test]
    async fn detailed_results_are_deterministic_and_timed_from_the_wav_header() {
        let audio = wav(&speech(32_000, 3));
        let (status, first) = recognise(PATH, &[], audio.clone()).await;
        let (_, second) = recognise(PATH, &[], audio).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(first, second);
        assert_eq!(first["RecognitionStatus"], "Success");
        let (offset, duration) = (first["Offset"].as_u64(), first["Duration"].as_u64());
        assert_eq!(offset.zip(duration).map(|(o, d)| o + d), Some(10_000_000), "one second of audio");
        let n_best = first["NBest"].as_array().expect("NBest");
        assert!((1..=2).contains(&n_best.len()));
        for alternative in n_best {
            assert!(alternative["Confidence"].is_f64());
            assert!(alternative["Lexical"].is_string() && alternative["Display"].is_string());
        }
        assert!(SENTENCES.contains(&first["DisplayText"].as_str().unwrap_or_default()));
    }

    #[tokio::test]
    async fn different_recordings_get_different_sentences() {
        let mut sentences = std::collections::HashSet::new();
        for seed in 0..24 {
            let (_, body) = recognise(PATH, &[], wav(&speech(3200, seed))).await;
            sentences.insert(body["DisplayText"].as_str().unwrap_or_default().to_string());
        }
        assert!(sentences.len() > 2, "{sentences:?}");
    }

    #[tokio::test]
    async fn a_zero_data_length_header_still_counts_the_audio_that_follows() {
        let mut audio = wav(&speech(16_000, 1));
        audio[40..44].copy_from_slice(&0u32.to_le_bytes());
        let (_, body) = recognise(PATH, &[], audio).await;
        let total = body["Offset"].as_u64().zip(body["Duration"].as_u64()).map(|(o, d)| o + d);
        assert_eq!(total, Some(5_000_000));
    }

    #[tokio::test]
    async fn ogg_opus_is_recognised_with_a_size_estimated_duration() {
        let (status, _, body) = call(
            Simulator::default(),
            PATH,
            &[("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", "audio/ogg; codecs=opus")],
            ogg_opus(8_000),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["RecognitionStatus"], "Success");
        let total = body["Offset"].as_u64().zip(body["Duration"].as_u64()).map(|(o, d)| o + d);
        assert_eq!(total, Some(20_000_000));
    }

    #[tokio::test]
    async fn the_simple_format_is_served_unless_detailed_is_asked() {
        let uri = "/speech/recognition/conversation/cognitiveservices/v1?language=en-GB";
        let (status, body) = recognise(uri, &[], wav(&speech(3200, 1))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["RecognitionStatus"], "Success");
        assert!(body["DisplayText"].is_string());
        assert!(body.get("NBest").is_none());
    }

    #[tokio::test]
    async fn every_documented_recognition_mode_answers_and_others_do_not_exist() {
        for mode in ["conversation", "interactive", "dictation"] {
            let uri = format!("/speech/recognition/{mode}/cognitiveservices/v1?language=en-US");
            assert_eq!(recognise(&uri, &[], wav(&speech(3200, 1))).await.0, StatusCode::OK, "{mode}");
        }
        let uri = "/speech/recognition/batch/cognitiveservices/v1?language=en-US";
        assert_eq!(recognise(uri, &[], wav(&speech(3200, 1))).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn assessment_scores_each_reference_word_with_azures_formula() {
        let header = assessment_header(json!({
            "ReferenceText": "Good morning, I have been living here for three years.",
            "GradingSystem": "HundredMark", "Granularity": "Phoneme", "Dimension": "Comprehensive",
            "EnableMiscue": "True", "EnableProsodyAssessment": "True",
        }));
        let mut saw_mispronunciation = false;
        for seed in 0..12 {
            let (status, body) =
                recognise(PATH, &[("Pronunciation-Assessment", &header)], wav(&speech(64_000, seed))).await;
            assert_eq!(status, StatusCode::OK);
            let best = &body["NBest"][0];
            let words: Vec<&str> =
                best["Words"].as_array().expect("Words").iter().filter_map(|w| w["Word"].as_str()).collect();
            assert_eq!(words, ["good", "morning", "i", "have", "been", "living", "here", "for", "three", "years"]);
            for word in best["Words"].as_array().expect("Words") {
                let accuracy = word["AccuracyScore"].as_f64().expect("AccuracyScore");
                let mispronounced = word["ErrorType"] == "Mispronunciation";
                assert_eq!(mispronounced, accuracy < 60.0, "{word}");
                saw_mispronunciation |= mispronounced;
            }
            let score = |name: &str| best[name].as_f64().expect(name);
            let mut sorted =
                [score("AccuracyScore"), score("FluencyScore"), score("CompletenessScore"), score("ProsodyScore")];
            sorted.sort_by(f64::total_cmp);
            let expected = 0.4 * sorted[0] + 0.2 * sorted[1] + 0.2 * sorted[2] + 0.2 * sorted[3];
            assert!((score("PronScore") - expected).abs() < 0.051, "{best}");
            assert_eq!(body["DisplayText"], "Good morning, I have been living here for three years.");
        }
        assert!(saw_mispronunciation, "some recordings must have a mispronounced word");
    }

    #[tokio::test]
    async fn prosody_is_scored_only_when_asked() {
        let header = assessment_header(json!({"ReferenceText": "Guten Morgen", "GradingSystem": "HundredMark"}));
        let (status, body) = recognise(PATH, &[("Pronunciation-Assessment", &header)], wav(&speech(32_000, 1))).await;
        assert_eq!(status, StatusCode::OK);
        let best = &body["NBest"][0];
        assert!(best.get("ProsodyScore").is_none());
        let score = |name: &str| best[name].as_f64().expect(name);
        let mut sorted = [score("AccuracyScore"), score("FluencyScore"), score("CompletenessScore")];
        sorted.sort_by(f64::total_cmp);
        let expected = 0.6 * sorted[0] + 0.2 * sorted[1] + 0.2 * sorted[2];
        assert!((score("PronScore") - expected).abs() < 0.051, "{best}");
    }

    #[tokio::test]
    async fn an_unreadable_assessment_header_is_refused() {
        for header in ["not base64!", "bm90IGpzb24=" /* "not json" */] {
            let (status, body) = recognise(PATH, &[("Pronunciation-Assessment", header)], wav(&speech(3200, 1))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{header}");
            assert!(body["Message"].is_string());
        }
    }

    #[tokio::test]
    async fn drawn_faults_answer_as_a_struggling_azure_would() {
        let headers = [("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", WAV)];
        let limited =
            Simulator::new(SimConfig { rate_limit_rate: 1.0, retry_after_seconds: 3, ..SimConfig::default() });
        let (status, response_headers, _) = call(limited, PATH, &headers, wav(&speech(3200, 1))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response_headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("3"));

        let failing = Simulator::new(SimConfig { server_error_rate: 1.0, ..SimConfig::default() });
        assert_eq!(call(failing, PATH, &headers, wav(&speech(3200, 1))).await.0, StatusCode::SERVICE_UNAVAILABLE);

        let malformed = Simulator::new(SimConfig { malformed_rate: 1.0, ..SimConfig::default() });
        let (status, _, body) = call(malformed, PATH, &headers, wav(&speech(3200, 1))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["RecognitionStatus"], "Error");
    }

    #[test]
    fn the_lexical_form_is_lower_case_without_punctuation() {
        assert_eq!(lexical("Good morning, how are you today?"), "good morning how are you today");
        assert_eq!(lexical("She doesn't like apples."), "she doesn't like apples");
        assert_eq!(lexical(" ... ! "), "");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_after_a_riff_header_are_measured_without_panicking(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let mut audio = b"RIFF\0\0\0\0WAVE".to_vec();
            audio.extend_from_slice(&tail);
            let speech = wav_speech(&audio);
            proptest::prop_assert!(speech.ticks <= audio.len() as u64 * TICKS_PER_SECOND);
        }
    }

    #[test]
    fn truncated_and_odd_wav_headers_never_panic() {
        for len in 0..60 {
            let mut audio = wav(&speech(16, 1));
            audio.truncate(len);
            let _ = wav_speech(&audio);
        }
        let mut huge_chunk = wav(&speech(16, 1));
        huge_chunk[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        let _ = wav_speech(&huge_chunk);
    }
}
