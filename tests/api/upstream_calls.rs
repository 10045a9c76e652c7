//! End to end through the service to faked clouds: what the service sends to Azure and Gemini
//! and what the learner gets back, for documented responses and errors.

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{AZURE_PATH, GEMINI_PATH, assert_error, spawn_app, spawn_app_against, wav_tone};

fn gemini_reply(text: &str) -> serde_json::Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 80, "totalTokenCount": 200},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    })
}

#[tokio::test]
async fn an_uploaded_wav_is_sent_to_azure_and_the_detailed_result_comes_back() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    let wav = wav_tone(8000);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .and(query_param("language", "en-GB"))
        .and(query_param("format", "detailed"))
        .and(header("Ocp-Apim-Subscription-Key", "azure-test-key"))
        .and(header("Content-Type", "audio/wav; codecs=audio/pcm; samplerate=16000"))
        .and(wiremock::matchers::body_bytes(wav.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RecognitionStatus": "Success", "Offset": "1236645672289", "Duration": "1236645672289",
            "NBest": [
                {"Confidence": 0.9052885, "Display": "What's the weather like?", "ITN": "what's the weather like", "Lexical": "what's the weather like", "MaskedITN": "what's the weather like"},
                {"Confidence": 0.92459863, "Display": "what is the weather like", "ITN": "what is the weather like", "Lexical": "what is the weather like", "MaskedITN": "what is the weather like"}
            ]
        })))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav).file_name("a.wav"))
        .text("language", "en-GB")
        .text("user_id", "learner-1");
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["success"], true);
    // NBest is not sorted by confidence: the best alternative wins.
    assert_eq!(body["data"]["text"], "what is the weather like");
    assert_eq!(body["data"]["status"], "Success");
    assert_eq!(body["data"]["language"], "en-GB");
    assert_eq!(body["data"]["offset_ms"], 123_664_567);
    assert_eq!(body["meta"]["cached"], false);
}

#[tokio::test]
async fn no_speech_is_200_with_empty_text_and_azures_status() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"RecognitionStatus": "InitialSilenceTimeout", "Offset": 0, "Duration": 30000000}),
            ),
        )
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("a.wav"));
    let body: serde_json::Value = app
        .client
        .post(app.url("/api/transcribe"))
        .multipart(form)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(body["data"]["text"], "");
    assert_eq!(body["data"]["status"], "InitialSilenceTimeout");
}

#[tokio::test]
async fn audio_by_url_is_downloaded_when_private_addresses_are_allowed() {
    let (azure, gemini, files) = (MockServer::start().await, MockServer::start().await, MockServer::start().await);
    Mock::given(method("GET"))
        .and(path("/clip.wav"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(wav_tone(1600)))
        .expect(1)
        .mount(&files)
        .await;
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RecognitionStatus": "Success", "Offset": 700000, "Duration": 8400000, "DisplayText": "Good morning.",
            "NBest": [{"Confidence": 0.98, "Lexical": "good morning", "ITN": "good morning", "MaskedITN": "good morning", "Display": "Good morning."}]
        })))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("AUDIO_FETCH_ALLOW_PRIVATE", "true")]).await;
    let response = app.post_json("/api/transcribe", &json!({"audio_url": format!("{}/clip.wav", files.uri())})).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"]["text"], "Good morning.");
    assert_eq!(body["data"]["duration_ms"], 840);
}

#[tokio::test]
async fn a_loopback_audio_url_is_refused_with_422_and_never_fetched() {
    let (azure, gemini, files) = (MockServer::start().await, MockServer::start().await, MockServer::start().await);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(wav_tone(1600)))
        .expect(0)
        .mount(&files)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&azure).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let response = app.post_json("/api/transcribe", &json!({"audio_url": format!("{}/clip.wav", files.uri())})).await;
    assert_error(response, 422, "validation_error").await;
}

#[tokio::test]
async fn pronunciation_sends_the_assessment_header_and_returns_flat_rest_scores() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .and(wiremock::matchers::header_exists("Pronunciation-Assessment"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RecognitionStatus": "Success", "Offset": "400000", "Duration": "11000000",
            "NBest": [{"Confidence": "0.87", "Lexical": "good morning", "ITN": "good morning", "MaskedITN": "good morning",
              "Display": "Good morning.", "PronScore": 84.4, "AccuracyScore": 100.0, "FluencyScore": 74.0, "CompletenessScore": 100.0,
              "Words": [{"Word": "Good", "AccuracyScore": 100.0, "ErrorType": "None", "Offset": 500000, "Duration": 2700000},
                        {"Word": "morning", "AccuracyScore": 100.0, "ErrorType": "None", "Offset": 5300000, "Duration": 900000}]}]
        })))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("a.wav"))
        .text("reference_text", "Good morning.");
    let response = app.client.post(app.url("/api/pronunciation")).multipart(form).send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let data = &body["data"];
    assert_eq!(data["recognized_text"], "Good morning.");
    assert_eq!(data["reference_text"], "Good morning.");
    assert_eq!(data["pronunciation_score"], 84.4);
    assert_eq!(data["fluency_score"], 74.0);
    assert_eq!(data["prosody_score"], serde_json::Value::Null);
    assert_eq!(data["words"][1]["word"], "morning");
    assert_eq!(data["words"][1]["offset_ms"], 530);
}

#[tokio::test]
async fn a_fenced_gemini_reply_is_parsed_and_marked_repaired_or_clean() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    let analysis = json!({
        "errors": [{"type": "grammar", "text": "go", "correction": "went", "explanation": "Past tense after yesterday."}],
        "feedback": "Good effort.", "strengths": ["Clear meaning"], "improvement_areas": ["Past tense"],
        "recommended_tasks": [{"type": "grammar", "title": "Past simple", "description": "Write five sentences."}],
        "cefr_assessment": {"level": "A2", "confidence": 0.7, "rationale": "Simple sentences."}
    });
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .and(header("x-goog-api-key", "gemini-test-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_reply(&format!("```json\n{analysis}\n```"))))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let response = app.post_json("/api/analyze", &json!({"text": "I go to the store yesterday."})).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"], analysis);
    assert_eq!(body["meta"]["parse"], "repaired");
}

#[tokio::test]
async fn a_blocked_prompt_is_a_clear_502_never_an_invented_analysis() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"}]}})),
        )
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let body =
        assert_error(app.post_json("/api/analyze", &json!({"text": "something"})).await, 502, "upstream_error").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("SAFETY")), "{body}");
}

#[tokio::test]
async fn a_bad_gemini_key_is_502_and_not_retried() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}})))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    assert_error(app.post_json("/api/analyze", &json!({"text": "something"})).await, 502, "upstream_error").await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_503() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    // A port with nothing listening.
    let closed = format!("http://127.0.0.1:{}", crate::helpers::redis_support::free_port());
    let app = spawn_app(&[
        ("AZURE_SPEECH_KEY", "k"),
        ("AZURE_SPEECH_ENDPOINT", azure.uri().as_str()),
        ("GEMINI_API_KEY", "k"),
        ("GEMINI_BASE_URL", closed.as_str()),
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ])
    .await;
    drop(gemini);
    assert_error(app.post_json("/api/analyze", &json!({"text": "something"})).await, 503, "upstream_unavailable").await;
}
