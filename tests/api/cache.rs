//! The cache and single-flight end to end: two instances of the service sharing one private
//! Redis, each with its own disk directory, Azure and Gemini faked with wiremock mocks that
//! count their calls (`.expect(n)`, checked when the test ends).
//!
//! No assertion depends on timing. Waits are polls with a generous bound that only guards
//! against a hang; the Redis op timeout and upstream timeout are raised so that a slow, loaded
//! machine cannot make Redis look down or a waiter give up and call the upstream itself.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_bytes, body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::redis_support::RedisServer;
use crate::helpers::{
    AZURE_PATH, FakeClouds, GEMINI_PATH, TestApp, spawn_app, spawn_app_unsetting, spawn_app_with_fakes, wav_tone,
};

/// Hang guard for one request or one wait; never reached when things work.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(60);

/// Two instances on `redis`, one in each mode given.
async fn two_instances(fakes: &FakeClouds, redis: &RedisServer, mode_a: &str, mode_b: &str) -> (TestApp, TestApp) {
    (instance(fakes, redis, mode_a, &[]).await, instance(fakes, redis, mode_b, &[]).await)
}

async fn instance(fakes: &FakeClouds, redis: &RedisServer, mode: &str, extra: &[(&str, &str)]) -> TestApp {
    let url = redis.url();
    let mut vars = vec![
        ("CACHE_MODE", mode),
        ("REDIS_URL", url.as_str()),
        // A loaded machine must not turn a slow Redis reply into "Redis is down".
        ("REDIS_TIMEOUT_MS", "2000"),
        // Bounds how long a request waits on the other instance's lease: far above any test's
        // upstream delay, so a waiter never gives up and makes a second call.
        ("UPSTREAM_TIMEOUT_SECONDS", "30"),
        // One attempt per request: a mock's call count is the number of requests that reached it.
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with_fakes(fakes, &vars).await
}

pub(crate) fn analysis(feedback: &str) -> Value {
    json!({
        "errors": [{"type": "grammar", "text": "go", "correction": "went", "explanation": "Past tense after yesterday."}],
        "feedback": feedback,
        "strengths": ["Clear meaning"],
        "improvement_areas": ["Past tense"],
        "recommended_tasks": [{"type": "grammar", "title": "Past simple", "description": "Write five sentences."}],
        "cefr_assessment": {"level": "A2", "confidence": 0.7, "rationale": "Simple sentences."}
    })
}

pub(crate) fn gemini_reply(text: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 80, "totalTokenCount": 200},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    })
}

/// Gemini answers `reply` to prompts containing `text`, and must be called exactly `calls` times.
pub(crate) async fn gemini_answers(gemini: &MockServer, text: &str, reply: ResponseTemplate, calls: u64) {
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .and(body_string_contains(text))
        .respond_with(reply)
        .expect(calls)
        .named(format!("gemini for {text:?}"))
        .mount(gemini)
        .await;
}

pub(crate) fn analysis_reply(feedback: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(gemini_reply(&analysis(feedback).to_string()))
}

pub(crate) async fn analyze(app: &TestApp, text: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/analyze"))
        .json(&json!({"text": text}))
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("analysis request answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// An analysis that must succeed: its body.
pub(crate) async fn analyze_ok(app: &TestApp, text: &str) -> Value {
    let (status, body) = analyze(app, text).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn transcribe_ok(app: &TestApp, wav: &[u8]) -> Value {
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav.to_vec()).file_name("clip.wav"))
        .text("language", "en-US");
    let response = app
        .client
        .post(app.url("/api/transcribe"))
        .multipart(form)
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("transcription request answered");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("JSON body")
}

pub(crate) async fn cache_health(app: &TestApp) -> Value {
    let response = app.get("/health/cache").await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("JSON body")
}

/// Poll `/health/cache` until it says Redis is `connected` (or not).
async fn wait_for_redis_connected(app: &TestApp, connected: bool) {
    let give_up = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let health = cache_health(app).await;
        if health["redis"]["connected"] == connected {
            return;
        }
        assert!(tokio::time::Instant::now() < give_up, "redis.connected never became {connected}: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll `/metrics` (which never touches Redis itself) until the Redis health gauge is `value`.
async fn wait_for_redis_gauge(app: &TestApp, value: u8) {
    let wanted = format!("service_health_status{{service=\"redis\"}} {value}");
    let give_up = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let text = app.get("/metrics").await.text().await.expect("metrics text");
        if text.lines().any(|line| line == wanted) {
            return;
        }
        assert!(tokio::time::Instant::now() < give_up, "the redis gauge never became {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_transcription_through_one_instance_is_a_cache_hit_on_the_other() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    let wav = wav_tone(8000);
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .and(body_bytes(wav.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RecognitionStatus": "Success", "Offset": 700000, "Duration": 8400000, "DisplayText": "Good morning.",
            "NBest": [{"Confidence": 0.98, "Lexical": "good morning", "ITN": "good morning", "MaskedITN": "good morning", "Display": "Good morning."}]
        })))
        .expect(1)
        .mount(&fakes.azure)
        .await;
    let (a, b) = two_instances(&fakes, &redis, "tiered", "tiered").await;

    let first = transcribe_ok(&a, &wav).await;
    assert_eq!(first["data"]["text"], "Good morning.");
    assert_eq!(first["meta"]["cached"], false);
    let second = transcribe_ok(&b, &wav).await;
    assert_eq!(second["meta"]["cached"], true, "{second}");
    assert_eq!(second["data"], first["data"]);
    fakes.azure.verify().await;
}

#[tokio::test]
async fn twenty_concurrent_identical_analyses_over_two_instances_make_one_gemini_call() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    // Slow enough that every request arrives while the one call is still running.
    let reply = analysis_reply("Good effort.").set_delay(Duration::from_millis(500));
    gemini_answers(&fakes.gemini, "I go to the store yesterday.", reply, 1).await;
    let (a, b) = two_instances(&fakes, &redis, "tiered", "tiered").await;

    // Identical once whitespace is normalised: the learner's text, however it was typed.
    let spacing = [" ", "  ", "\t", "\n ", " \t "];
    let texts: Vec<String> = (0..20)
        .map(|i| {
            let gap = spacing[i % spacing.len()];
            format!("{}I go{gap}to the store{gap}yesterday.{}", " ".repeat(i % 3), "\n".repeat(i % 2))
        })
        .collect();
    let requests = texts.iter().enumerate().map(|(i, text)| analyze(if i % 2 == 0 { &a } else { &b }, text));
    let answers = futures::future::join_all(requests).await;

    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["data"], analysis("Good effort."), "{body}");
    }
    fakes.gemini.verify().await;
}

#[tokio::test]
async fn with_redis_killed_both_instances_still_answer_and_cross_instance_hits_resume_after_it_returns() {
    let mut redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    gemini_answers(&fakes.gemini, "Before the outage.", analysis_reply("Before."), 1).await;
    // No shared tier during the outage: each instance calls once, then serves its own tiers.
    gemini_answers(&fakes.gemini, "During the outage.", analysis_reply("During."), 2).await;
    gemini_answers(&fakes.gemini, "After the outage.", analysis_reply("After."), 1).await;
    let (a, b) = two_instances(&fakes, &redis, "tiered", "redis_only").await;

    assert_eq!(analyze_ok(&a, "Before the outage.").await["meta"]["cached"], false);
    assert_eq!(analyze_ok(&b, "Before the outage.").await["meta"]["cached"], true);

    redis.kill();
    for app in [&a, &b] {
        wait_for_redis_connected(app, false).await;
        let before = analyze_ok(app, "Before the outage.").await;
        assert_eq!(before["meta"]["cached"], true, "from the instance's own tiers: {before}");
        assert_eq!(before["data"]["feedback"], "Before.");
        let during = analyze_ok(app, "During the outage.").await;
        assert_eq!(during["meta"]["cached"], false);
        assert_eq!(during["data"]["feedback"], "During.");
        let again = analyze_ok(app, "During the outage.").await;
        assert_eq!(again["meta"]["cached"], true, "{again}");
    }

    // Same port, empty: the instances reconnect on their own.
    redis.restart();
    wait_for_redis_connected(&a, true).await;
    wait_for_redis_connected(&b, true).await;
    assert_eq!(analyze_ok(&a, "After the outage.").await["meta"]["cached"], false);
    let after = analyze_ok(&b, "After the outage.").await;
    assert_eq!(after["meta"]["cached"], true, "read from the restarted Redis: {after}");
    assert_eq!(after["data"]["feedback"], "After.");
    fakes.gemini.verify().await;
}

#[tokio::test]
async fn an_idle_instance_reports_redis_going_down_and_coming_back() {
    let mut redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    let app = instance(&fakes, &redis, "tiered", &[]).await;
    // Only /metrics is read: no request, no cache health check touches Redis meanwhile.
    wait_for_redis_gauge(&app, 1).await;
    redis.kill();
    wait_for_redis_gauge(&app, 0).await;
    redis.restart();
    wait_for_redis_gauge(&app, 1).await;
}

#[tokio::test]
async fn a_hung_redis_never_fails_a_request() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hung = format!("redis://{}/0", listener.local_addr().expect("address"));
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let fakes = FakeClouds::start().await;
    gemini_answers(&fakes.gemini, "Redis hangs.", analysis_reply("Fine."), 1).await;
    let app = spawn_app_with_fakes(
        &fakes,
        &[
            ("CACHE_MODE", "tiered"),
            ("REDIS_URL", hung.as_str()),
            ("REDIS_TIMEOUT_MS", "200"),
            ("UPSTREAM_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;

    assert_eq!(analyze_ok(&app, "Redis hangs.").await["meta"]["cached"], false);
    for _ in 0..5 {
        assert_eq!(analyze_ok(&app, "Redis hangs.").await["meta"]["cached"], true);
    }
    assert_eq!(cache_health(&app).await["redis"]["connected"], false);
    fakes.gemini.verify().await;
    accepting.abort();
}

#[tokio::test]
async fn kubernetes_with_auto_mode_caches_in_redis_only() {
    let fakes = FakeClouds::start().await;
    let app = spawn_app_with_fakes(
        &fakes,
        &[("KUBERNETES_SERVICE_HOST", "10.0.0.1"), ("CACHE_MODE", "auto"), ("API_KEYS", "test-key")],
    )
    .await;
    let health = cache_health(&app).await;
    assert_eq!(health["mode"], "redis_only", "{health}");
    assert_eq!(health["mode_source"], "kubernetes", "{health}");
    assert_eq!(health["disk"], Value::Null, "{health}");
    assert!(health["redis"].is_object(), "{health}");
}

#[tokio::test]
async fn disk_only_mode_has_no_redis() {
    let app = spawn_app(&[("CACHE_MODE", "disk_only")]).await;
    let health = cache_health(&app).await;
    assert_eq!(health["mode"], "disk_only", "{health}");
    assert_eq!(health["mode_source"], "env", "{health}");
    assert_eq!(health["redis"], Value::Null, "{health}");
    assert!(health["disk"].is_object(), "{health}");
}

#[tokio::test]
async fn without_cache_mode_outside_kubernetes_the_cache_is_tiered_by_default() {
    let app = spawn_app_unsetting(&[], &["CACHE_MODE"]).await;
    let health = cache_health(&app).await;
    assert_eq!(health["mode"], "tiered", "{health}");
    assert_eq!(health["mode_source"], "default", "{health}");
    assert!(health["redis"].is_object(), "{health}");
    assert!(health["disk"].is_object(), "{health}");
}

#[tokio::test]
async fn a_fallback_analysis_is_not_cached_so_the_next_request_asks_gemini_again() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    let unreadable = ResponseTemplate::new(200).set_body_json(gemini_reply("Sorry, I cannot assess this text."));
    gemini_answers(&fakes.gemini, "Unreadable reply.", unreadable, 3).await;
    let (a, b) = two_instances(&fakes, &redis, "tiered", "tiered").await;

    for app in [&a, &a, &b] {
        let body = analyze_ok(app, "Unreadable reply.").await;
        assert_eq!(body["meta"]["parse"], "fallback", "{body}");
        assert_eq!(body["meta"]["cached"], false, "{body}");
    }
    fakes.gemini.verify().await;
}

#[tokio::test]
async fn an_upstream_error_is_not_cached_so_the_next_request_asks_gemini_again() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    // Mounted first, so it answers the first call; then the success mock takes over.
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .named("gemini failing once")
        .mount(&fakes.gemini)
        .await;
    gemini_answers(&fakes.gemini, "Fails first.", analysis_reply("Second time lucky."), 1).await;
    let (a, b) = two_instances(&fakes, &redis, "tiered", "tiered").await;

    let (status, body) = analyze(&a, "Fails first.").await;
    assert!(matches!(status, 502 | 503), "{status} {body}");
    let retried = analyze_ok(&b, "Fails first.").await;
    assert_eq!(retried["meta"]["cached"], false, "{retried}");
    assert_eq!(retried["data"]["feedback"], "Second time lucky.");
    // The success, unlike the error, was stored for everyone.
    let cached = analyze_ok(&a, "Fails first.").await;
    assert_eq!(cached["meta"]["cached"], true, "{cached}");
    fakes.gemini.verify().await;
}

#[tokio::test]
async fn a_language_in_another_case_is_the_same_locale_and_the_same_cache_entry() {
    let app = crate::helpers::spawn_app(&[]).await;
    let send = |language: &'static str| {
        let form = reqwest::multipart::Form::new()
            .part("audio", reqwest::multipart::Part::bytes(crate::helpers::wav_tone(8000)).file_name("a.wav"))
            .text("language", language);
        app.client.post(app.url("/api/transcribe")).multipart(form).send()
    };
    let first: serde_json::Value = send("en-GB").await.expect("sent").json().await.expect("json");
    let second: serde_json::Value = send("EN-gb").await.expect("sent").json().await.expect("json");
    assert_eq!(first["meta"]["cached"], false);
    assert_eq!(second["meta"]["cached"], true, "{second}");
    assert_eq!(second["data"]["language"], "en-GB");
}
