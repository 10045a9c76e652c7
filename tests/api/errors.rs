//! The contract's status table, row by row, plus the promise that no input gives a 500.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app, wav_tone};

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_401_when_keys_are_configured() {
    let app = spawn_app(&[("API_KEYS", "key-one,key-two")]).await;
    let body = json!({"text": "I go to the store yesterday."});
    assert_error(app.post_json("/api/analyze", &body).await, 401, "unauthorized").await;
    let wrong = app
        .client
        .post(app.url("/api/analyze"))
        .header("X-API-Key", "key-three")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_error(wrong, 401, "unauthorized").await;
    let prefix =
        app.client.post(app.url("/api/analyze")).header("X-API-Key", "key-on").json(&body).send().await.expect("sent");
    assert_error(prefix, 401, "unauthorized").await;
}

#[tokio::test]
async fn operations_endpoints_need_no_api_key() {
    let app = spawn_app(&[("API_KEYS", "key-one")]).await;
    for path in ["/health", "/health/ready", "/health/cache", "/health/upstreams", "/metrics"] {
        assert_eq!(app.get(path).await.status().as_u16(), 200, "{path}");
    }
}

#[tokio::test]
async fn malformed_json_is_422_not_500() {
    let app = spawn_app(&[]).await;
    for raw in ["{", "not json", "[]", "{\"text\": 5}", "null", "", "{\"text\": \"a\",}"] {
        let response = app
            .client
            .post(app.url("/api/analyze"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("sent");
        assert_error(response, 422, "validation_error").await;
    }
}

#[tokio::test]
async fn text_outside_1_to_5000_characters_is_422() {
    let app = spawn_app(&[]).await;
    for text in [String::new(), "   \n ".into(), "x".repeat(5001)] {
        assert_error(app.post_json("/api/analyze", &json!({"text": text})).await, 422, "validation_error").await;
    }
    assert_error(app.post_json("/api/analyze", &json!({"user_id": "u"})).await, 422, "validation_error").await;
}

#[tokio::test]
async fn an_oversized_json_body_is_413() {
    let app = spawn_app(&[]).await;
    let huge = json!({"text": "a".repeat(200_000)});
    assert_error(app.post_json("/api/analyze", &huge).await, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_wrong_content_type_is_422() {
    let app = spawn_app(&[]).await;
    let response = app
        .client
        .post(app.url("/api/analyze"))
        .header("content-type", "text/plain")
        .body("I go to the store")
        .send()
        .await
        .expect("sent");
    assert_error(response, 422, "validation_error").await;
}

#[tokio::test]
async fn audio_endpoints_without_audio_are_422() {
    let app = spawn_app(&[]).await;
    assert_error(app.post_json("/api/transcribe", &json!({"language": "en-US"})).await, 422, "validation_error").await;
    assert_error(app.post_json("/api/transcribe", &json!({"audio_url": ""})).await, 422, "validation_error").await;
    let form = reqwest::multipart::Form::new().text("language", "en-US");
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    assert_error(response, 422, "validation_error").await;
}

#[tokio::test]
async fn an_uploaded_file_in_no_audio_format_is_415_saying_what_it_is() {
    let app = spawn_app(&[]).await;
    // Named and typed as audio: only the bytes count.
    let part = reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())
        .file_name("clip.mp3")
        .mime_str("audio/mpeg")
        .expect("mime");
    let form = reqwest::multipart::Form::new().part("audio", part);
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    let body = assert_error(response, 415, "unsupported_media_type").await;
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("a PNG image") && message.contains("WebM") && message.contains("MP4"), "{message}");
}

#[tokio::test]
async fn a_known_container_whose_bytes_do_not_hold_together_is_422() {
    let app = spawn_app(&[]).await;
    let part = reqwest::multipart::Part::bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00not really an mp3".to_vec())
        .file_name("clip.mp3");
    let form = reqwest::multipart::Form::new().part("audio", part);
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    let body = assert_error(response, 422, "validation_error").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("MP3 recording is damaged")), "{body}");
}

#[tokio::test]
async fn an_uploaded_file_over_audio_max_bytes_is_413() {
    let app = spawn_app(&[("AUDIO_MAX_BYTES", "1000")]).await;
    let part = reqwest::multipart::Part::bytes(wav_tone(4000)).file_name("clip.wav");
    let form = reqwest::multipart::Form::new().part("audio", part);
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    assert_error(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_given_reference_text_must_have_1_to_10000_characters() {
    let app = spawn_app(&[]).await;
    let part = || reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("clip.wav");
    let blank = reqwest::multipart::Form::new().part("audio", part()).text("reference_text", " \u{200b} ");
    let response = app.client.post(app.url("/api/pronunciation")).multipart(blank).send().await.expect("sent");
    assert_error(response, 422, "validation_error").await;
    let long = reqwest::multipart::Form::new().part("audio", part()).text("reference_text", "a".repeat(10_001));
    let response = app.client.post(app.url("/api/pronunciation")).multipart(long).send().await.expect("sent");
    assert_error(response, 422, "validation_error").await;
}

#[tokio::test]
async fn a_bad_language_tag_is_422() {
    let app = spawn_app(&[]).await;
    let part = reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("clip.wav");
    let form = reqwest::multipart::Form::new().part("audio", part).text("language", "en-US&format=simple");
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    assert_error(response, 422, "validation_error").await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_envelope() {
    let app = spawn_app(&[]).await;
    assert_error(app.get("/api/nothing-here").await, 404, "not_found").await;
    assert_error(app.get("/api/analyze").await, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_client_request_id_is_echoed_and_one_is_generated_otherwise() {
    let app = spawn_app(&[]).await;
    let echoed = app.client.get(app.url("/health")).header("X-Request-ID", "abc-123").send().await.expect("sent");
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let generated = app.get("/health").await;
    let id = generated.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // Ids that would pollute logs are replaced, not echoed.
    let hostile = app.client.get(app.url("/health")).header("X-Request-ID", "a b\tc").send().await.expect("sent");
    assert_ne!(hostile.headers()["x-request-id"], "a b\tc");
}

#[tokio::test]
async fn an_overlong_multipart_text_field_is_422_naming_the_field_not_oversized_audio() {
    let app = spawn_app(&[]).await;
    let part = reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("clip.wav");
    let form = reqwest::multipart::Form::new().part("audio", part).text("user_id", "u".repeat(70_000));
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    let body = assert_error(response, 422, "validation_error").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("user_id")), "{body}");
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_408_instead_of_holding_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(&[("REQUEST_BODY_TIMEOUT_SECONDS", "1")]).await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.expect("connect");
    let head = "POST /api/analyze HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\": \"I go";
    stream.write_all(head.as_bytes()).await.expect("write the start of the body");
    // Never send the rest. The bound only guards against a hang; the server answers on its own.
    let mut response = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "the server gave up on the stalled body");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
}

#[tokio::test]
async fn a_client_that_sends_its_request_head_slowly_is_disconnected_instead_of_holding_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(&[("HEADER_READ_TIMEOUT_SECONDS", "1")]).await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.expect("connect");
    // Slowloris: a head that never ends.
    stream.write_all(b"POST /api/analyze HTTP/1.1\r\nHost: test\r\nX-Slow: a").await.expect("write part of a head");
    // The bound only guards against a hang; the server closes the connection on its own.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closed the connection of the stalled head");
    // The service is unharmed.
    assert_eq!(app.get("/health").await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_connection_that_never_sends_anything_is_closed_after_the_head_timeout() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app(&[("HEADER_READ_TIMEOUT_SECONDS", "1")]).await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.expect("connect");
    // Not a byte: the listener cannot even tell HTTP/1.1 from HTTP/2 yet.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closed the silent connection");
    assert!(rest.is_empty(), "closed without an answer: there was no request");
    assert_eq!(app.get("/health").await.status().as_u16(), 200);
}

#[tokio::test]
async fn past_max_in_flight_requests_are_refused_at_once_with_503_overloaded() {
    let app = spawn_app(&[("MAX_IN_FLIGHT", "1"), ("SIMULATOR_LATENCY_MS", "1500")]).await;
    let client = app.client.clone();
    let url = app.url("/api/analyze");
    let first = tokio::spawn(async move { client.post(url).json(&json!({"text": "the slow first one"})).send().await });
    // Wait until the first holds the only slot (the in-flight gauge counts it), then knock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.state.metrics.http_requests_in_flight.get() < 1 {
        assert!(std::time::Instant::now() < deadline, "the first request never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let refused = app.post_json("/api/analyze", &json!({"text": "the second one"})).await;
    assert!(refused.headers().get("retry-after").is_some(), "a client is told when to come back");
    assert_error(refused, 503, "overloaded").await;
    assert_eq!(first.await.expect("join").expect("first answered").status().as_u16(), 200);
    // The slot is free again.
    assert_eq!(app.post_json("/api/analyze", &json!({"text": "the third one"})).await.status().as_u16(), 200);
    // Operations endpoints are never shed.
    assert_eq!(app.get("/health/ready").await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_text_of_only_invisible_characters_is_422() {
    let app = spawn_app(&[]).await;
    for text in ["\u{200B}\u{200B}\u{200B}", "\u{FEFF}\u{2060} \u{200D}"] {
        let response = app.post_json("/api/analyze", &serde_json::json!({"text": text})).await;
        assert_error(response, 422, "validation_error").await;
    }
}
