//! Per-user usage and daily budgets, end to end: counts that add up across instances on one
//! Redis, survive a Redis outage without being lost or doubled, budgets refused exactly at their
//! edge (cached answers still served), and `GET /api/usage` on bad input.
//!
//! Usage is written off the response path, so each test waits (a poll bounded only against a
//! hang) until `GET /api/usage` shows what it sent before checking the exact numbers.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cache::{HANG_GUARD, analysis};
use crate::helpers::redis_support::RedisServer;
use crate::helpers::{
    AZURE_PATH, FakeClouds, GEMINI_PATH, TestApp, assert_error, spawn_app, spawn_app_with_fakes, wav_tone,
};

/// What the fake Gemini reports for every call: 120 in, 80 out, 30 thinking.
const TOKENS: (u64, u64, u64) = (120, 80, 30);
const PER_CALL: u64 = TOKENS.0 + TOKENS.1 + TOKENS.2;

fn gemini_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "candidates": [{"content": {"parts": [{"text": analysis("Fine.").to_string()}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": TOKENS.0, "candidatesTokenCount": TOKENS.1, "thoughtsTokenCount": TOKENS.2, "totalTokenCount": PER_CALL},
        "modelVersion": "gemini-2.5-flash",
    }))
}

/// Gemini answers every prompt; `calls`: how many times it must be reached in the test.
async fn gemini_answers_all(gemini: &MockServer, calls: u64) {
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(gemini_reply()).expect(calls).mount(gemini).await;
}

async fn azure_answers_all(azure: &MockServer, calls: u64) {
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RecognitionStatus": "Success", "Offset": 0, "Duration": 10000000, "DisplayText": "Hello.",
            "NBest": [{"Confidence": 0.9, "Lexical": "hello", "ITN": "hello", "MaskedITN": "hello", "Display": "Hello."}]
        })))
        .expect(calls)
        .mount(azure)
        .await;
}

async fn instance(fakes: &FakeClouds, redis: &RedisServer, extra: &[(&str, &str)]) -> TestApp {
    let url = redis.url();
    let mut vars = vec![
        ("CACHE_MODE", "redis_only"),
        ("REDIS_URL", url.as_str()),
        ("REDIS_TIMEOUT_MS", "1000"),
        ("UPSTREAM_TIMEOUT_SECONDS", "30"),
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with_fakes(fakes, &vars).await
}

async fn analyze_as(app: &TestApp, user: &str, text: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/analyze"))
        .header("X-User-ID", user)
        .json(&json!({"text": text}))
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("analysis answered")
}

async fn analyzed(app: &TestApp, user: &str, text: &str) -> Value {
    let response = analyze_as(app, user, text).await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("JSON body")
}

async fn transcribe_as(app: &TestApp, user: &str, wav: &[u8]) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav.to_vec()).file_name("clip.wav"))
        .text("language", "en-US");
    app.client
        .post(app.url("/api/transcribe"))
        .header("X-User-ID", user)
        .multipart(form)
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("transcription answered")
}

async fn usage(app: &TestApp, query: &str) -> reqwest::Response {
    app.client.get(app.url(&format!("/api/usage?{query}"))).timeout(HANG_GUARD).send().await.expect("usage answered")
}

/// Today's counts of `user`.
async fn today(app: &TestApp, user: &str) -> Value {
    let response = usage(app, &format!("user_id={user}")).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON body");
    body["data"]["days"][0].clone()
}

/// Today's counts of `user` once they show at least `requests` requests.
async fn once_counted(app: &TestApp, user: &str, requests: u64) -> Value {
    let give_up = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let day = today(app, user).await;
        if day["requests"].as_u64().unwrap_or(0) >= requests {
            return day;
        }
        assert!(tokio::time::Instant::now() < give_up, "{requests} requests never counted: {day}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn approx(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|got| (got - expected).abs() < 1e-9)
}

#[tokio::test]
async fn usage_through_two_instances_on_one_redis_adds_up_exactly() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    gemini_answers_all(&fakes.gemini, 5).await;
    azure_answers_all(&fakes.azure, 1).await;
    let (a, b) = (instance(&fakes, &redis, &[]).await, instance(&fakes, &redis, &[]).await);

    for n in 0..5 {
        analyzed(if n < 3 { &a } else { &b }, "learner-1", &format!("Yesterday I go to shop {n}.")).await;
    }
    let response = transcribe_as(&a, "learner-1", &wav_tone(16_000)).await;
    assert_eq!(response.status().as_u16(), 200);

    let day = once_counted(&b, "learner-1", 6).await;
    assert_eq!(day["requests"], 6, "{day}");
    assert_eq!(day["cache_hits"], 0, "{day}");
    assert_eq!(day["tokens_input"], 5 * TOKENS.0, "{day}");
    assert_eq!(day["tokens_output"], 5 * TOKENS.1, "{day}");
    assert_eq!(day["tokens_thinking"], 5 * TOKENS.2, "{day}");
    assert!(approx(&day["audio_seconds"], 1.0), "{day}");
    // The defaults: Gemini 2.5 Flash $0.30 / $2.50 (thinking as output) per million, audio $1/h.
    let cost = (5 * TOKENS.0) as f64 * 0.30 / 1e6 + (5 * (TOKENS.1 + TOKENS.2)) as f64 * 2.50 / 1e6 + 1.0 / 3600.0;
    assert!((day["estimated_cost_usd"].as_f64().expect("a number") - cost).abs() < 2e-6, "{day} vs {cost}");
    assert_eq!(today(&a, "learner-1").await, day, "both instances read the same counts");

    // A cache hit counts as a request and a hit, and costs nothing.
    let hit = analyzed(&b, "learner-1", "Yesterday I go to shop 0.").await;
    assert_eq!(hit["meta"]["cached"], true);
    let day = once_counted(&a, "learner-1", 7).await;
    assert_eq!((day["requests"].as_u64(), day["cache_hits"].as_u64()), (Some(7), Some(1)), "{day}");
    assert_eq!(day["tokens_input"], 5 * TOKENS.0, "{day}");
    assert_eq!(today(&a, "someone-else").await["requests"], 0);
    fakes.gemini.verify().await;
    fakes.azure.verify().await;
}

#[tokio::test]
async fn usage_counted_while_redis_is_down_is_written_once_when_it_is_back() {
    // Persistent, so that what was written before the crash is there after the restart.
    let mut redis =
        RedisServer::start_with(["--appendonly", "yes", "--appendfsync", "always"].map(String::from).to_vec());
    let fakes = FakeClouds::start().await;
    gemini_answers_all(&fakes.gemini, 6).await;
    let app = instance(&fakes, &redis, &[]).await;

    for n in 0..2 {
        analyzed(&app, "learner-2", &format!("Before the outage {n}.")).await;
    }
    assert_eq!(once_counted(&app, "learner-2", 2).await["requests"], 2);

    redis.kill();
    for n in 0..3 {
        analyzed(&app, "learner-2", &format!("During the outage {n}.")).await;
    }
    let response = usage(&app, "user_id=learner-2").await;
    assert_eq!(response.status().as_u16(), 200, "usage still answers without Redis");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["data"]["complete"], false, "{body}");
    assert_eq!(body["data"]["days"][0]["requests"], 3, "this instance's unwritten counts: {body}");

    redis.restart();
    let day = once_counted(&app, "learner-2", 5).await;
    assert_eq!(day["requests"], 5, "nothing lost, nothing doubled: {day}");
    assert_eq!(day["tokens_input"], 5 * TOKENS.0, "{day}");

    analyzed(&app, "learner-2", "After the outage.").await;
    let day = once_counted(&app, "learner-2", 6).await;
    assert_eq!(day["requests"], 6, "the flushed batch is not sent again: {day}");
    assert_eq!(day["tokens_thinking"], 6 * TOKENS.2, "{day}");
    fakes.gemini.verify().await;
}

#[tokio::test]
async fn a_batch_sent_again_after_an_unanswered_write_is_added_once() {
    let redis = RedisServer::start();
    let target = backend_ai::redis::RedisTarget::single(redis.url());
    let link = backend_ai::redis::RedisLink::new(&target, Duration::from_secs(2), backend_ai::metrics::Metrics::new())
        .expect("link");
    let mut spend = backend_ai::usage::Spend::new(backend_ai::metrics::labels::Operation::Pronunciation, false);
    spend.add_audio(12.5);
    let day = backend_ai::usage::Day::today();
    let store = |batch: &'static str| {
        let (link, counts) = (link.clone(), spend.counts());
        async move { backend_ai::usage::store::add_batch(&link, "user:x", day, batch, &counts, 35).await.expect("written") }
    };
    assert!(store("batch-1").await, "added");
    assert!(!store("batch-1").await, "the same batch again: not added");
    assert!(store("batch-2").await, "another batch: added");
    let read = backend_ai::usage::store::read_days(&link, "user:x", &[day]).await.expect("read");
    assert_eq!(read[0].get("audio_ms"), 25_000);
    assert_eq!(read[0].get("requests"), 2);
}

#[tokio::test]
async fn the_analysis_that_reaches_the_token_budget_is_answered_and_the_next_is_refused() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    // Two calls reach the budget exactly; the third request must never reach Gemini.
    gemini_answers_all(&fakes.gemini, 3).await;
    let budget = (2 * PER_CALL).to_string();
    let app = instance(&fakes, &redis, &[("USER_DAILY_TOKENS", budget.as_str())]).await;

    analyzed(&app, "spender", "First text.").await;
    // Not yet counted is not yet spent (the overshoot bound): wait until it is.
    once_counted(&app, "spender", 1).await;
    analyzed(&app, "spender", "Second text.").await;
    assert_eq!(once_counted(&app, "spender", 2).await["tokens_input"], 2 * TOKENS.0);

    let refused = analyze_as(&app, "spender", "Third text.").await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=86_400).contains(&retry_after), "until the next UTC midnight: {retry_after}");
    let body = assert_error(refused, 429, "budget_exceeded").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("token")), "{body}");

    // What costs nothing is still served: a cached answer to the same user, from this
    // instance's memory or from Redis through another instance.
    let cached = analyzed(&app, "spender", "First text.").await;
    assert_eq!(cached["meta"]["cached"], true, "{cached}");
    let other = instance(&fakes, &redis, &[("USER_DAILY_TOKENS", budget.as_str())]).await;
    let cached = analyzed(&other, "spender", "Second text.").await;
    assert_eq!(cached["meta"]["cached"], true, "{cached}");
    assert_error(analyze_as(&other, "spender", "Fourth text.").await, 429, "budget_exceeded").await;
    // Another user has a budget of their own.
    analyzed(&app, "frugal", "Third text.").await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("budget_refusals_total{budget=\"tokens\"} 1"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "ai_tokens_total{{kind=\"thinking\",model=\"gemini-2.5-flash\",provider=\"gemini\"}} {}",
            3 * TOKENS.2
        )),
        "{metrics}"
    );
    fakes.gemini.verify().await;
}

#[tokio::test]
async fn a_budget_is_passed_by_at_most_the_requests_in_flight_when_it_was_reached() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    // Slow enough that all four are in flight before the first one's tokens are counted.
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_reply().set_delay(Duration::from_millis(300)))
        .mount(&fakes.gemini)
        .await;
    let budget = PER_CALL.to_string();
    let app = instance(&fakes, &redis, &[("USER_DAILY_TOKENS", budget.as_str())]).await;

    let in_flight = 4;
    let texts: Vec<String> = (0..in_flight).map(|n| format!("Concurrent text {n}.")).collect();
    let answers = futures::future::join_all(texts.iter().map(|text| analyze_as(&app, "burst", text))).await;
    let mut answered = 0;
    for response in answers {
        match response.status().as_u16() {
            200 => answered += 1,
            _ => {
                assert_error(response, 429, "budget_exceeded").await;
            }
        }
    }
    // The first reaches the budget; the others were admitted before its count landed, and no
    // more than were in flight can have been.
    assert!((1..=in_flight).contains(&answered), "{answered}");
    let day = once_counted(&app, "burst", answered).await;
    assert_eq!(day["requests"], answered, "{day}");
    assert_eq!(day["tokens_input"], answered * TOKENS.0, "only what was answered was spent: {day}");
    assert_error(analyze_as(&app, "burst", "One more.").await, 429, "budget_exceeded").await;
    assert_eq!(fakes.gemini.received_requests().await.map_or(0, |requests| requests.len()) as u64, answered);
}

#[tokio::test]
async fn the_recording_that_reaches_the_audio_budget_is_answered_and_the_next_is_refused() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    azure_answers_all(&fakes.azure, 2).await;
    let app = instance(&fakes, &redis, &[("USER_DAILY_AUDIO_SECONDS", "2")]).await;

    let (first, second, third) = (wav_tone(16_000), wav_tone(16_000 + 20), wav_tone(16_000 + 40));
    assert_eq!(transcribe_as(&app, "talker", &first).await.status().as_u16(), 200);
    once_counted(&app, "talker", 1).await;
    assert_eq!(transcribe_as(&app, "talker", &second).await.status().as_u16(), 200);
    let day = once_counted(&app, "talker", 2).await;
    // 1 s and 1.00125 s, in whole milliseconds.
    assert!(approx(&day["audio_seconds"], 2.001), "{day}");

    let body = assert_error(transcribe_as(&app, "talker", &third).await, 429, "budget_exceeded").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("audio")), "{body}");
    let cached = transcribe_as(&app, "talker", &first).await;
    assert_eq!(cached.status().as_u16(), 200, "a cached transcription is still served");
    let cached: Value = cached.json().await.expect("JSON body");
    assert_eq!(cached["meta"]["cached"], true);
    fakes.azure.verify().await;
}

#[tokio::test]
async fn usage_refuses_bad_dates_and_long_ranges_and_gives_unknown_users_zeros() {
    let app = spawn_app(&[]).await;
    for query in [
        "from=2026-12-01&to=2026-12-07",
        "user_id=&from=2026-12-01",
        "user_id=u&from=2026-13-01&to=2026-12-07",
        "user_id=u&from=2026-12-01&to=07-12-2026",
        "user_id=u&from=2026-02-30",
        "user_id=u&from=2026-12-08&to=2026-12-07",
        "user_id=u&from=2026-01-01&to=2026-04-03",
    ] {
        assert_error(usage(&app, query).await, 422, "validation_error").await;
    }

    let response = usage(&app, "user_id=nobody&from=2026-01-01&to=2026-04-02").await;
    assert_eq!(response.status().as_u16(), 200, "92 days, both ends included");
    let body: Value = response.json().await.expect("JSON body");
    let days = body["data"]["days"].as_array().expect("days");
    assert_eq!(days.len(), 92);
    assert_eq!(days[0]["date"], "2026-01-01");
    assert_eq!(days[91]["date"], "2026-04-02");
    assert!(days.iter().all(|day| day["requests"] == 0 && day["estimated_cost_usd"] == 0.0), "{body}");
    assert_eq!(body["data"]["total"]["requests"], 0);
    assert_eq!(body["data"]["user_id"], "nobody");

    let document: Value = app.get("/openapi.json").await.json().await.expect("the OpenAPI document");
    let operation = &document["paths"]["/api/usage"]["get"];
    assert_eq!(operation["tags"][0], "usage", "{operation}");
    assert!(operation["responses"]["422"].is_object(), "{operation}");

    let keyed = spawn_app(&[("API_KEYS", "secret")]).await;
    assert_error(usage(&keyed, "user_id=nobody").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn usage_without_redis_is_kept_in_the_instance() {
    let fakes = FakeClouds::start().await;
    gemini_answers_all(&fakes.gemini, 1).await;
    let app = spawn_app_with_fakes(&fakes, &[]).await;
    analyzed(&app, "local", "Some text here.").await;
    let day = once_counted(&app, "local", 1).await;
    assert_eq!(day["tokens_output"], TOKENS.1, "{day}");
}
