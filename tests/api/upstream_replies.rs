//! Upstream replies are read through a cap: a reply longer than its upstream's cap is answered
//! 502 `upstream_error`, however well-formed it is, and is not asked for again.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::audio_checks::long_wav;
use crate::helpers::{AZURE_PATH, GEMINI_PATH, assert_error, spawn_app_against, wav_tone};

const FAST_PATH: &str = "/speechtotext/transcriptions:transcribe";

/// `reply` as JSON followed by whitespace up to `length` bytes: still a valid reply, so only
/// the cap can refuse it.
fn padded(reply: &Value, length: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(reply).expect("json");
    body.resize(length.max(body.len()), b' ');
    body
}

fn gemini_reply() -> Value {
    let text =
        json!({"corrected_text": "I went to the store yesterday.", "errors": [], "feedback": "Good."}).to_string();
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 80, "totalTokenCount": 200}
    })
}

fn recognition() -> Value {
    json!({
        "RecognitionStatus": "Success", "Offset": 700000, "Duration": 8400000, "DisplayText": "Good morning.",
        "NBest": [{"Confidence": 0.98, "Lexical": "good morning", "ITN": "good morning", "MaskedITN": "good morning", "Display": "Good morning."}]
    })
}

fn fast_result() -> Value {
    json!({
        "durationMilliseconds": 65000,
        "combinedPhrases": [{"text": "Good afternoon."}],
        "phrases": [{"offsetMilliseconds": 960, "durationMilliseconds": 640, "text": "Good afternoon.", "locale": "en-GB", "confidence": 0.93}]
    })
}

async fn analyze(gemini_body: Vec<u8>) -> reqwest::Response {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(gemini_body, "application/json"))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    app.post_json("/api/analyze", &json!({"text": "I go to the store yesterday."})).await
}

async fn transcribe(route_path: &str, azure_body: Vec<u8>, recording: Vec<u8>) -> reqwest::Response {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(route_path))
        .respond_with(ResponseTemplate::new(200).set_body_raw(azure_body, "application/json"))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(recording).file_name("a.wav"))
        .text("language", "en-GB");
    app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent")
}

#[tokio::test]
async fn a_gemini_reply_at_its_cap_is_read() {
    let response = analyze(padded(&gemini_reply(), backend_ai::upstream::gemini::MAX_REPLY_BYTES)).await;
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
}

#[tokio::test]
async fn a_gemini_reply_past_its_cap_is_a_502_upstream_error() {
    let response = analyze(padded(&gemini_reply(), backend_ai::upstream::gemini::MAX_REPLY_BYTES + 1)).await;
    let body = assert_error(response, 502, "upstream_error").await;
    assert_eq!(body["error"], "Gemini sent a response that could not be read");
}

#[tokio::test]
async fn an_azure_recognition_reply_past_its_cap_is_a_502_upstream_error() {
    let within = transcribe(AZURE_PATH, padded(&recognition(), 64 * 1024), wav_tone(8000)).await;
    assert_eq!(within.status().as_u16(), 200, "{:?}", within.text().await);
    let limit = backend_ai::upstream::azure_speech::MAX_REPLY_BYTES;
    let response = transcribe(AZURE_PATH, padded(&recognition(), limit + 1), wav_tone(8000)).await;
    let body = assert_error(response, 502, "upstream_error").await;
    assert_eq!(body["error"], "Azure Speech sent a response that could not be read");
}

#[tokio::test]
async fn a_fast_transcription_reply_past_its_cap_is_a_502_upstream_error() {
    let recording = long_wav(16_000, 1, 65).to_vec();
    let within = transcribe(FAST_PATH, padded(&fast_result(), 64 * 1024), recording.clone()).await;
    assert_eq!(within.status().as_u16(), 200, "{:?}", within.text().await);
    let limit = backend_ai::upstream::azure_speech::MAX_FAST_REPLY_BYTES;
    let response = transcribe(FAST_PATH, padded(&fast_result(), limit + 1), recording).await;
    assert_error(response, 502, "upstream_error").await;
}
