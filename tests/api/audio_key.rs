//! An audio job's cache key is the hash of the recording as uploaded, now made on the blocking
//! pool: the same recording must still find its cached answer, a different one must not.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::audio_checks::long_wav;
use crate::helpers::{TestApp, spawn_app_against};

const FAST_PATH: &str = "/speechtotext/transcriptions:transcribe";

async fn transcribe(app: &TestApp, recording: bytes::Bytes) -> Value {
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::stream(reqwest::Body::from(recording)).file_name("memo.wav"))
        .text("language", "en-GB");
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_ten_mib_recording_sent_again_is_answered_from_the_cache() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(FAST_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "durationMilliseconds": 300000,
            "combinedPhrases": [{"text": "A long memo."}],
            "phrases": [{"offsetMilliseconds": 0, "durationMilliseconds": 1000, "text": "A long memo.", "locale": "en-GB", "confidence": 0.9}]
        })))
        .expect(2)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    // 300 s of 16 kHz mono: 9.6 MB, under AUDIO_MAX_BYTES (10 MiB).
    let recording = long_wav(16_000, 1, 300);
    assert!(recording.len() > 9_000_000);

    let first = transcribe(&app, recording.clone()).await;
    assert_eq!(first["meta"]["cached"], false, "{first}");
    let again = transcribe(&app, recording.clone()).await;
    assert_eq!(again["meta"]["cached"], true, "the same bytes, the same key: {again}");
    assert_eq!(again["data"], first["data"]);

    // One sample different is another recording: another key, another call.
    let mut other = recording.to_vec();
    let last = other.len() - 1;
    other[last] ^= 1;
    let different = transcribe(&app, other.into()).await;
    assert_eq!(different["meta"]["cached"], false, "{different}");
    azure.verify().await;
}
