//! The resilience layers seen from outside: circuit breakers, retries, the deadline and the
//! per-user rate limit, through the real router on a socket with faked clouds.
//!
//! These run on the real clock (the server is in-process): waits are kept to 1 s hints and
//! recovery timers, and the tests assert outcomes and upstream call counts, never durations.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::redis_support::RedisServer;
use crate::helpers::{
    AZURE_PATH, GEMINI_PATH, TestApp, assert_error, assert_one_shared_limit, spawn_app_against, wav_tone,
};

/// A `generateContent` 200 whose text is a clean analysis (so it is cacheable).
fn gemini_analysis() -> ResponseTemplate {
    let analysis = json!({
        "errors": [{"type": "grammar", "text": "go", "correction": "went", "explanation": "Past tense after yesterday."}],
        "feedback": "Good effort.", "strengths": ["Clear meaning"], "improvement_areas": ["Past tense"],
        "recommended_tasks": [{"type": "grammar", "title": "Past simple", "description": "Write five sentences."}],
        "cefr_assessment": {"level": "A2", "confidence": 0.7, "rationale": "Simple sentences."}
    });
    ResponseTemplate::new(200).set_body_json(json!({
        "candidates": [{"content": {"parts": [{"text": analysis.to_string()}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 80, "totalTokenCount": 200},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    }))
}

fn gemini_unavailable() -> ResponseTemplate {
    ResponseTemplate::new(503).set_body_json(json!({"error": {"code": 503,
        "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}))
}

/// Gemini's documented 429 (RESOURCE_EXHAUSTED) with a per-minute quota and a `RetryInfo`.
fn gemini_rate_limited(retry_delay: &str) -> ResponseTemplate {
    ResponseTemplate::new(429).set_body_json(json!({"error": {"code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "quotaDimensions": {"model": "gemini-2.5-flash", "location": "global"},
            "quotaValue": "10"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
    ]}}))
}

fn azure_success() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "RecognitionStatus": "Success", "Offset": 700000, "Duration": 8400000, "DisplayText": "Good morning.",
        "NBest": [{"Confidence": 0.98, "Lexical": "good morning", "ITN": "good morning", "MaskedITN": "good morning", "Display": "Good morning."}]
    }))
}

async fn analyze(app: &TestApp, text: &str) -> reqwest::Response {
    app.post_json("/api/analyze", &json!({ "text": text })).await
}

async fn analyze_as(app: &TestApp, user: &str, text: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/analyze"))
        .header("X-User-ID", user)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("request sent")
}

async fn transcribe(app: &TestApp) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("a.wav"))
        .text("language", "en-US");
    app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("request sent")
}

async fn upstream_state(app: &TestApp, upstream: &str) -> String {
    let health: Value = app.get("/health/upstreams").await.json().await.expect("health is JSON");
    health[upstream]["state"].as_str().unwrap_or_else(|| panic!("no state for {upstream}: {health}")).to_owned()
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.expect("metrics text")
}

fn has_sample(metrics: &str, sample: &str) -> bool {
    metrics.lines().any(|line| line.trim() == sample)
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get("retry-after")?;
    Some(value.to_str().ok()?.parse().expect("Retry-After is integer seconds"))
}

async fn calls(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |requests| requests.len())
}

#[tokio::test]
async fn three_gemini_failures_open_its_breaker_which_then_fails_fast_without_calling_gemini() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    const WARM: &str = "The cat sat on the mat yesterday.";
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .and(body_string_contains(WARM))
        .respond_with(gemini_analysis())
        .with_priority(1)
        .expect(1)
        .mount(&gemini)
        .await;
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_unavailable())
        .expect(3)
        .mount(&gemini)
        .await;
    Mock::given(method("POST")).and(path(AZURE_PATH)).respond_with(azure_success()).expect(1).mount(&azure).await;
    let app = spawn_app_against(
        &azure,
        &gemini,
        &[
            ("BREAKER_FAILURE_THRESHOLD", "3"),
            ("UPSTREAM_MAX_ATTEMPTS", "1"),
            ("BREAKER_RECOVERY_TIMEOUT_SECONDS", "60"),
        ],
    )
    .await;

    let warm = analyze(&app, WARM).await;
    assert_eq!(warm.status().as_u16(), 200);
    let warm: Value = warm.json().await.expect("json");
    assert_eq!(warm["meta"]["cached"], false);

    for text in ["First failing text.", "Second failing text.", "Third failing text."] {
        assert_error(analyze(&app, text).await, 503, "upstream_unavailable").await;
    }
    assert_eq!(upstream_state(&app, "gemini").await, "open");

    for text in ["Fourth text, refused.", "Fifth text, refused."] {
        let response = analyze(&app, text).await;
        let wait = retry_after(&response).expect("an open breaker says when to come back");
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert_error(response, 503, "upstream_unavailable").await;
    }
    assert_eq!(calls(&gemini).await, 4, "the open breaker let a call through");

    // The cache sits outside the breaker: what is already known is still answered.
    let cached = analyze(&app, WARM).await;
    assert_eq!(cached.status().as_u16(), 200);
    let cached: Value = cached.json().await.expect("json");
    assert_eq!(cached["meta"]["cached"], true);
    assert_eq!(cached["data"], warm["data"]);

    let metrics = metrics(&app).await;
    assert!(has_sample(&metrics, r#"circuit_breaker_state{upstream="gemini"} 2"#), "{metrics}");
    assert!(has_sample(&metrics, r#"service_health_status{service="gemini"} 0"#), "{metrics}");
    assert!(has_sample(&metrics, r#"circuit_breaker_state{upstream="azure_speech"} 0"#), "{metrics}");

    // Azure has its own breaker.
    assert_eq!(upstream_state(&app, "azure_speech").await, "closed");
    assert_eq!(transcribe(&app).await.status().as_u16(), 200);
    gemini.verify().await;
}

#[tokio::test]
async fn after_the_recovery_timeout_a_probe_reaches_gemini_and_a_healthy_answer_closes_the_breaker() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_unavailable())
        .expect(3)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(
        &azure,
        &gemini,
        &[
            ("BREAKER_FAILURE_THRESHOLD", "3"),
            ("UPSTREAM_MAX_ATTEMPTS", "1"),
            ("BREAKER_RECOVERY_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    for text in ["First failing text.", "Second failing text.", "Third failing text."] {
        assert_error(analyze(&app, text).await, 503, "upstream_unavailable").await;
    }
    gemini.verify().await;

    gemini.reset().await;
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_analysis()).expect(2).mount(&gemini).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(upstream_state(&app, "gemini").await, "half_open");

    let probe = analyze(&app, "The probe text.").await;
    assert_eq!(probe.status().as_u16(), 200);
    assert_eq!(upstream_state(&app, "gemini").await, "closed");
    let metrics = metrics(&app).await;
    assert!(has_sample(&metrics, r#"circuit_breaker_state{upstream="gemini"} 0"#), "{metrics}");
    assert!(has_sample(&metrics, r#"service_health_status{service="gemini"} 1"#), "{metrics}");

    assert_eq!(analyze(&app, "Traffic after recovery.").await.status().as_u16(), 200);
    gemini.verify().await;
}

#[tokio::test]
async fn transcription_failures_open_the_azure_breaker_that_pronunciation_shares() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(ResponseTemplate::new(500))
        .expect(2)
        .mount(&azure)
        .await;
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_analysis()).expect(1).mount(&gemini).await;
    let app =
        spawn_app_against(&azure, &gemini, &[("BREAKER_FAILURE_THRESHOLD", "2"), ("UPSTREAM_MAX_ATTEMPTS", "1")]).await;
    assert_error(transcribe(&app).await, 503, "upstream_unavailable").await;
    assert_error(transcribe(&app).await, 503, "upstream_unavailable").await;
    assert_eq!(upstream_state(&app, "azure_speech").await, "open");

    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav_tone(1600)).file_name("a.wav"))
        .text("reference_text", "Good morning.");
    let response = app.client.post(app.url("/api/pronunciation")).multipart(form).send().await.expect("sent");
    assert!(retry_after(&response).is_some_and(|wait| wait >= 1));
    assert_error(response, 503, "upstream_unavailable").await;
    azure.verify().await;

    // Gemini has its own breaker.
    assert_eq!(upstream_state(&app, "gemini").await, "closed");
    assert_eq!(analyze(&app, "I go to the store yesterday.").await.status().as_u16(), 200);
    gemini.verify().await;
}

#[tokio::test]
async fn a_gemini_429_with_a_one_second_retry_info_is_retried_and_the_learner_gets_the_answer() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_rate_limited("1s"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&gemini)
        .await;
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_analysis()).expect(1).mount(&gemini).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let response = analyze(&app, "I go to the store yesterday.").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["cefr_assessment"]["level"], "A2");
    assert_eq!(calls(&gemini).await, 2);
    gemini.verify().await;
}

#[tokio::test]
async fn an_azure_429_with_retry_after_one_is_retried_and_the_transcript_comes_back() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&azure)
        .await;
    Mock::given(method("POST")).and(path(AZURE_PATH)).respond_with(azure_success()).expect(1).mount(&azure).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let response = transcribe(&app).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["text"], "Good morning.");
    assert_eq!(calls(&azure).await, 2);
    azure.verify().await;
}

/// Polls the fake until it has seen `n` calls; the bound only keeps a broken run from hanging.
async fn until_calls(server: &MockServer, n: usize) {
    for _ in 0..1000 {
        if calls(server).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fake never saw {n} calls");
}

#[tokio::test]
async fn an_azure_503_with_retry_after_one_is_retried_after_that_second_not_at_once() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&azure)
        .await;
    Mock::given(method("POST")).and(path(AZURE_PATH)).respond_with(azure_success()).expect(1).mount(&azure).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    // Counted, not timed: half a second after the 503 the retry must not have happened yet
    // (our own backoff alone would have sent it within 250 ms).
    let calls_half_a_second_after_the_503 = async {
        until_calls(&azure, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        calls(&azure).await
    };
    let (response, early_calls) = tokio::join!(transcribe(&app), calls_half_a_second_after_the_503);
    assert_eq!(early_calls, 1, "the retry did not wait for Azure's Retry-After");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["text"], "Good morning.");
    azure.verify().await;
}

#[tokio::test]
async fn a_gemini_503_asking_for_longer_than_the_deadline_fails_at_once_and_passes_the_wait_on() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_unavailable().insert_header("Retry-After", "30"))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("UPSTREAM_TIMEOUT_SECONDS", "5")]).await;
    let response = analyze(&app, "Any text at all.").await;
    assert_eq!(retry_after(&response), Some(30));
    assert_error(response, 503, "upstream_unavailable").await;
    gemini.verify().await;
}

#[tokio::test]
async fn a_per_day_gemini_quota_is_not_retried_and_answers_503() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    // A daily quota's 429 can come without RetryInfo (UPSTREAMS.md, Gemini 429 bodies).
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {"code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "quotaDimensions": {"model": "gemini-2.5-flash", "location": "global"},
                    "quotaValue": "250"}]}
            ]}})))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    assert_error(analyze(&app, "Any text at all.").await, 503, "upstream_unavailable").await;
    gemini.verify().await;
}

#[tokio::test]
async fn a_retry_hint_longer_than_the_deadline_is_not_waited_for() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_rate_limited("30s"))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("UPSTREAM_TIMEOUT_SECONDS", "5")]).await;
    // Waiting would have ended in the deadline's 504; not waiting answers Gemini's own 429 now,
    // and passes its hint on to the client.
    let response = analyze(&app, "Any text at all.").await;
    assert_eq!(retry_after(&response), Some(30));
    assert_error(response, 503, "upstream_unavailable").await;
    gemini.verify().await;
}

#[tokio::test]
async fn a_hung_gemini_is_cut_off_at_the_deadline_with_504() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_analysis().set_delay(Duration::from_secs(60)))
        .expect(1)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("UPSTREAM_TIMEOUT_SECONDS", "1")]).await;
    assert_error(analyze(&app, "Any text at all.").await, 504, "upstream_timeout").await;
    gemini.verify().await;
}

#[tokio::test]
async fn an_azure_400_is_a_502_that_is_neither_retried_nor_held_against_the_breaker() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    // The body Azure is seen to send for a missing or unsupported language (UPSTREAMS.md 1.7).
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(r#"{"Message": "Invalid CID or language"}"#, "application/json; charset=utf-8"),
        )
        .expect(2)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("BREAKER_FAILURE_THRESHOLD", "1")]).await;
    assert_error(transcribe(&app).await, 502, "upstream_error").await;
    assert_error(transcribe(&app).await, 502, "upstream_error").await;
    assert_eq!(upstream_state(&app, "azure_speech").await, "closed");
    azure.verify().await;
}

#[tokio::test]
async fn an_unknown_gemini_model_is_a_502_that_is_neither_retried_nor_held_against_the_breaker() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"code": 404,
            "message": "models/gemini-2.5-flash is not found for API version v1beta, or is not supported for generateContent.",
            "status": "NOT_FOUND"}})))
        .expect(2)
        .mount(&gemini)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[("BREAKER_FAILURE_THRESHOLD", "1")]).await;
    assert_error(analyze(&app, "First text.").await, 502, "upstream_error").await;
    assert_error(analyze(&app, "Second text.").await, 502, "upstream_error").await;
    assert_eq!(upstream_state(&app, "gemini").await, "closed");
    gemini.verify().await;
}

/// Assert the contract's 429 and its headers.
async fn assert_rate_limited(response: reqwest::Response, limit: u32) {
    let wait = retry_after(&response).expect("a 429 says when to come back");
    assert!(wait >= 1, "Retry-After {wait}");
    let header = |name: &str| -> u64 {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing or not an integer"))
    };
    assert_eq!(header("ratelimit-limit"), u64::from(limit));
    assert_eq!(header("ratelimit-remaining"), 0);
    assert!(header("ratelimit-reset") >= wait);
    let body = assert_error(response, 429, "rate_limited").await;
    assert_eq!(body["error"], "Rate limit exceeded");
}

#[tokio::test]
async fn two_instances_sharing_redis_hold_one_limit_per_user_and_fall_back_to_their_own_when_it_dies() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_analysis()).mount(&gemini).await;
    let mut redis = RedisServer::start();
    let redis_url = redis.url();
    let shared = [("CACHE_MODE", "redis_only"), ("REDIS_URL", redis_url.as_str()), ("RATE_LIMIT_PER_MINUTE", "10")];
    let a = spawn_app_against(&azure, &gemini, &shared).await;
    let b = spawn_app_against(&azure, &gemini, &shared).await;

    let first = analyze_as(&a, "learner-a", "I go to the store yesterday.").await;
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(first.headers().get("ratelimit-limit").and_then(|value| value.to_str().ok()), Some("10"));
    assert_eq!(first.headers().get("ratelimit-remaining").and_then(|value| value.to_str().ok()), Some("9"));
    let mut statuses = vec![200];
    for i in 1..16 {
        let app = if i % 2 == 0 { &a } else { &b };
        let response = analyze_as(app, "learner-a", "I go to the store yesterday.").await;
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            assert_rate_limited(response, 10).await;
        }
    }
    assert_one_shared_limit(&statuses, 10, 2);
    for app in [&a, &b] {
        let response = analyze_as(app, "learner-b", "I go to the store yesterday.").await;
        assert_eq!(response.status().as_u16(), 200, "another user has their own budget");
    }

    // Without Redis, each instance limits on its own: a user gets the limit from each.
    redis.kill();
    for app in [&a, &b] {
        let mut statuses = Vec::new();
        for _ in 0..11 {
            let response = analyze_as(app, "learner-c", "She don't like apples.").await;
            statuses.push(response.status().as_u16());
            if response.status().as_u16() == 429 {
                assert_rate_limited(response, 10).await;
            }
        }
        let ok = statuses.iter().filter(|status| **status == 200).count();
        let limited = statuses.iter().filter(|status| **status == 429).count();
        assert_eq!((ok, limited), (10, 1), "{statuses:?}");
    }
}

#[tokio::test]
async fn a_rate_limit_of_zero_means_no_limit() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_analysis()).mount(&gemini).await;
    let app = spawn_app_against(&azure, &gemini, &[("RATE_LIMIT_PER_MINUTE", "0")]).await;
    for i in 0..15 {
        let response = analyze_as(&app, "learner-a", "I go to the store yesterday.").await;
        assert_eq!(response.status().as_u16(), 200, "request {i}");
        assert!(response.headers().get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn requests_refused_for_a_wrong_api_key_do_not_spend_the_users_budget() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_analysis()).mount(&gemini).await;
    let app = spawn_app_against(&azure, &gemini, &[("API_KEYS", "key-one"), ("RATE_LIMIT_PER_MINUTE", "2")]).await;
    let send = |key: &'static str| {
        app.client
            .post(app.url("/api/analyze"))
            .header("X-User-ID", "learner-a")
            .header("X-API-Key", key)
            .json(&json!({"text": "I go to the store yesterday."}))
            .send()
    };
    for _ in 0..5 {
        assert_error(send("not-a-key").await.expect("sent"), 401, "unauthorized").await;
    }
    assert_eq!(send("key-one").await.expect("sent").status().as_u16(), 200);
    assert_eq!(send("key-one").await.expect("sent").status().as_u16(), 200);
    assert_rate_limited(send("key-one").await.expect("sent"), 2).await;
}

#[tokio::test]
async fn a_hung_gemini_opens_its_breaker_even_when_clients_give_up_before_the_deadline() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_analysis().set_delay(Duration::from_secs(60)))
        .mount(&gemini)
        .await;
    let app = spawn_app_against(
        &azure,
        &gemini,
        &[("BREAKER_FAILURE_THRESHOLD", "2"), ("UPSTREAM_TIMEOUT_SECONDS", "1"), ("UPSTREAM_MAX_ATTEMPTS", "1")],
    )
    .await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().expect("client");
    for text in ["first hung text", "second hung text"] {
        let gave_up = impatient.post(app.url("/api/analyze")).json(&json!({"text": text})).send().await;
        assert!(gave_up.is_err(), "the client stops waiting before the service's deadline");
    }
    // The calls go on without their clients and time out at the deadline; poll until the
    // breaker has counted both (bounded: a hang guard, not a timing assertion).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while upstream_state(&app, "gemini").await != "open" {
        assert!(std::time::Instant::now() < deadline, "the breaker never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(calls(&gemini).await, 2);
}
