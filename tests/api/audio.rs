//! Recordings as learners' devices make them, uploaded as they are, through the whole service:
//! what reaches Azure (faked with wiremock, or the built-in simulator, which refuses anything
//! Azure's documentation does not allow and times what it receives), and what comes back.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::audio_checks::{long_wav, ogg_packets, read_fixture, source_packets};
use crate::helpers::{AZURE_PATH, TestApp, assert_error, spawn_app, spawn_app_against};

const FAST_PATH: &str = "/speechtotext/transcriptions:transcribe";

fn upload(bytes: bytes::Bytes, file_name: &str) -> reqwest::multipart::Form {
    // What browsers put on a Blob's part; the service never looks.
    let part = reqwest::multipart::Part::stream(reqwest::Body::from(bytes))
        .file_name(file_name.to_string())
        .mime_str("application/octet-stream")
        .expect("mime");
    reqwest::multipart::Form::new().part("audio", part)
}

async fn post(app: &TestApp, route: &str, form: reqwest::multipart::Form) -> reqwest::Response {
    app.client.post(app.url(route)).multipart(form).send().await.expect("sent")
}

async fn json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status.as_u16(), 200, "{body}");
    body
}

/// Where the simulator says the speech ended: offset + duration, in ms.
fn speech_end_ms(data: &Value) -> u64 {
    data["offset_ms"].as_u64().unwrap_or(0) + data["duration_ms"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_chrome_recording_and_an_iphone_voice_memo_come_back_transcribed_and_scored() {
    let app = spawn_app(&[]).await;
    let billed = |scrape: &str, operation: &str| -> f64 {
        let series = format!("audio_seconds_total{{operation=\"{operation}\"}} ");
        scrape
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing: {scrape}"))
    };
    let before = app.get("/metrics").await.text().await.expect("text");
    for (file, length_ms) in [("chrome-webm-opus-timeslice.webm", 3240), ("m4a-aac-moov-end.m4a", 2800)] {
        let body = json(post(&app, "/api/transcribe", upload(read_fixture(file), "blob")).await).await;
        assert_eq!(body["data"]["status"], "Success", "{file}: {body}");
        assert!(!body["data"]["text"].as_str().unwrap_or_default().is_empty(), "{file}");
        // The simulator times the audio it received: a wrong conversion shows here.
        let end = speech_end_ms(&body["data"]);
        assert!(end.abs_diff(length_ms) <= 2, "{file}: Azure heard {end} ms of {length_ms}");

        let form = upload(read_fixture(file), "blob").text("reference_text", "I go to the store yesterday");
        let body = json(post(&app, "/api/pronunciation", form).await).await;
        let words = body["data"]["words"].as_array().expect("words");
        assert_eq!(words.len(), 6, "{file}: {body}");
        assert!(body["data"]["pronunciation_score"].as_f64().is_some_and(|score| score > 0.0), "{file}");
    }
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(metrics.contains(r#"audio_inputs_total{action="remux",codec="opus",container="webm"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"audio_inputs_total{action="transcode",codec="aac",container="mp4"} 2"#), "{metrics}");
    // Azure bills the seconds it was sent: both recordings (3.24 s + 2.8 s), once each.
    for operation in ["transcribe", "pronunciation"] {
        let sent = billed(&metrics, operation) - billed(&before, operation);
        assert!((sent - 6.04).abs() < 0.05, "{operation}: {sent} s counted, {metrics}");
    }
}

#[tokio::test]
async fn a_two_minute_recording_is_transcribed_whole_by_fast_transcription() {
    let app = spawn_app(&[]).await;
    let body = json(post(&app, "/api/transcribe", upload(long_wav(16_000, 1, 120), "memo.wav")).await).await;
    let end = speech_end_ms(&body["data"]);
    assert!(end > 110_000 && end <= 120_000, "the whole two minutes were heard: {end} ms");
    assert!(body["data"]["text"].as_str().is_some_and(|text| text.split_whitespace().count() > 100), "{body}");
}

#[tokio::test]
async fn mono_opus_reaches_azure_as_ogg_opus_with_the_browsers_own_packets() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .and(header("Content-Type", "audio/ogg; codecs=opus"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"RecognitionStatus": "Success", "DisplayText": "Hello.", "Offset": 0, "Duration": 30_000_000}),
        ))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let recording = read_fixture("chrome-webm-opus-timeslice.webm");
    let _ = json(post(&app, "/api/transcribe", upload(recording.clone(), "blob")).await).await;
    let requests = azure.received_requests().await.expect("recorded");
    let sent = ogg_packets(&requests[0].body).expect("a valid Ogg Opus stream");
    assert_eq!(sent.packets, source_packets(&recording));
}

#[tokio::test]
async fn with_audio_send_format_wav_opus_reaches_azure_as_16_khz_wav() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .and(header("Content-Type", "audio/wav; codecs=audio/pcm; samplerate=16000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"RecognitionStatus": "Success", "DisplayText": "Hello.", "Offset": 0, "Duration": 30_000_000}),
        ))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("AUDIO_SEND_FORMAT", "wav")]).await;
    let _ = json(post(&app, "/api/transcribe", upload(read_fixture("webm-opus-mono.webm"), "blob")).await).await;
    let requests = azure.received_requests().await.expect("recorded");
    let samples = crate::helpers::audio_checks::wav_16k_mono_samples(&requests[0].body).expect("a 16 kHz WAV");
    assert_eq!(samples.len(), 44_800, "2.8 s at 16 kHz");
}

#[tokio::test]
async fn fast_transcription_gets_the_recording_and_its_locale_as_documented() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(FAST_PATH))
        .and(query_param("api-version", "2024-11-15"))
        .and(header("Ocp-Apim-Subscription-Key", "azure-test-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "durationMilliseconds": 65000,
            "combinedPhrases": [{"text": "Good afternoon. This is Sam."}],
            "phrases": [{"offsetMilliseconds": 960, "durationMilliseconds": 640, "text": "Good afternoon.",
                "locale": "en-GB", "confidence": 0.93616915}]
        })))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let recording = long_wav(16_000, 1, 65);
    let form = upload(recording.clone(), "memo.wav").text("language", "en-GB");
    let body = json(post(&app, "/api/transcribe", form).await).await;
    assert_eq!(body["data"]["text"], "Good afternoon. This is Sam.");
    assert_eq!(body["data"]["lexical"], "good afternoon this is sam");
    assert_eq!(body["data"]["language"], "en-GB");

    let request = &azure.received_requests().await.expect("recorded")[0];
    let content_type = request.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("multipart/form-data; boundary="), "{content_type}");
    let body = &request.body;
    let find = |needle: &[u8]| body.windows(needle.len()).position(|window| window == needle);
    assert!(find(br#"name="definition""#).is_some() && find(br#""locales":["en-GB"]"#).is_some());
    assert!(find(br#"name="audio"; filename="audio.wav""#).is_some());
    // The recording as uploaded: a native WAV is what fast transcription documents.
    assert!(find(&recording[..64]).is_some() && body.len() > recording.len());
}

#[tokio::test]
async fn over_half_a_minute_of_browser_opus_is_assessed_in_pieces() {
    // 30.48 s of WebM/Opus: decoded to cut it in its pauses, each piece sent as WAV.
    let app = spawn_app(&[]).await;
    let form = upload(read_fixture("bench-30s-webm-opus.webm"), "blob").text("reference_text", "Good morning");
    let response = post(&app, "/api/pronunciation", form).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    let segments = body["data"]["segments"].as_array().expect("segments");
    assert!(segments.len() >= 2, "{body}");
    assert!(segments.iter().all(|segment| segment["duration_ms"].as_u64().is_some_and(|ms| ms <= 30_000)), "{body}");
}

#[tokio::test]
async fn past_audio_max_seconds_is_413() {
    let app = spawn_app(&[("AUDIO_MAX_SECONDS", "2")]).await;
    let response = post(&app, "/api/transcribe", upload(read_fixture("m4a-aac-moov-start.m4a"), "memo.m4a")).await;
    let body = assert_error(response, 413, "payload_too_large").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("at most 2 s")), "{body}");
}

#[tokio::test]
async fn the_same_recording_again_is_served_from_the_cache() {
    let app = spawn_app(&[]).await;
    let recording = read_fixture("mp3-id3v2.mp3");
    let first = json(post(&app, "/api/transcribe", upload(recording.clone(), "a.mp3")).await).await;
    let second = json(post(&app, "/api/transcribe", upload(recording, "b.mp3")).await).await;
    assert_eq!((first["meta"]["cached"].clone(), second["meta"]["cached"].clone()), (json!(false), json!(true)));
    assert_eq!(first["data"], second["data"]);
}

#[tokio::test]
async fn a_tab_closed_mid_recording_is_transcribed_up_to_the_cut() {
    let app = spawn_app(&[]).await;
    let body =
        json(post(&app, "/api/transcribe", upload(read_fixture("chrome-webm-opus-cut.webm"), "blob")).await).await;
    assert_eq!(body["data"]["status"], "Success");
    assert!(speech_end_ms(&body["data"]) > 2_500, "{body}");
}

#[tokio::test]
async fn a_burst_of_uploads_to_decode_never_stalls_health_checks() {
    // One decoding worker and many slow decodes queued: the async workers stay free. (The queue
    // is long in a debug build on a busy machine; refusing it is not what this test is about.)
    let app = spawn_app(&[("AUDIO_WORKERS", "1"), ("AUDIO_QUEUE_WAIT_SECONDS", "300")]).await;
    let recording = read_fixture("bench-30s-aac.m4a");
    let uploads: Vec<_> = (0..6)
        .map(|index| {
            let (client, url, recording) = (app.client.clone(), app.url("/api/transcribe"), recording.clone());
            tokio::spawn(async move {
                // Each upload is decoded before the cache or single-flight can merge them.
                let form = upload(recording, &format!("{index}.m4a"));
                client.post(url).multipart(form).send().await.expect("sent").status().as_u16()
            })
        })
        .collect();
    let health = app.get("/health").await;
    assert_eq!(health.status().as_u16(), 200);
    let still_decoding = uploads.iter().filter(|upload| !upload.is_finished()).count();
    for upload in uploads {
        assert_eq!(upload.await.expect("joined"), 200);
    }
    assert!(still_decoding > 0, "/health answered while uploads were still being decoded");
}
