//! The analysis chain over HTTP: `GEMINI_MODEL`, then `GEMINI_FALLBACK_MODELS`, then an
//! OpenAI-compatible model, each faked on loopback with wiremock serving the documented bodies
//! (Gemini's `google.rpc.Status` errors, OpenAI's chat completion object). Mocks count their
//! calls (`.expect(n)`, checked when each test ends). No assertion depends on timing: a hang is
//! a wiremock delay far past the link's deadline, and only the outcome is checked.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cache::{HANG_GUARD, analysis, analysis_reply, analyze, analyze_ok};
use crate::helpers::redis_support::RedisServer;
use crate::helpers::{TestApp, spawn_app};

const PRIMARY: &str = "gemini-2.5-flash";
const SECOND: &str = "gemini-2.5-flash-lite";
const OPENAI_MODEL: &str = "qwen2.5-7b-instruct";

fn gemini_path(model: &str) -> String {
    format!("/v1beta/models/{model}:generateContent")
}

/// The fakes: one Gemini (every model) and one OpenAI-compatible server.
struct Fakes {
    gemini: MockServer,
    openai: MockServer,
}

impl Fakes {
    async fn start() -> Self {
        Self { gemini: MockServer::start().await, openai: MockServer::start().await }
    }

    fn openai_base(&self) -> String {
        format!("{}/v1", self.openai.uri())
    }
}

/// An instance on the fakes with a chain built from `vars`. One attempt per link unless a test
/// says otherwise, so a mock's count is the number of calls that reached it.
async fn instance(fakes: &Fakes, vars: &[(&str, &str)]) -> TestApp {
    let gemini = fakes.gemini.uri();
    let mut all = vec![
        ("GEMINI_API_KEY", "gemini-test-key"),
        ("GEMINI_BASE_URL", gemini.as_str()),
        ("UPSTREAM_TIMEOUT_SECONDS", "20"),
        ("ANALYSIS_FALLBACK_AFTER_SECONDS", "2"),
    ];
    all.extend_from_slice(vars);
    spawn_app(&all).await
}

/// `GEMINI_FALLBACK_MODELS=SECOND`, plus the OpenAI-compatible link.
async fn full_chain(fakes: &Fakes, extra: &[(&str, &str)]) -> TestApp {
    let base = fakes.openai_base();
    let mut vars = vec![
        ("GEMINI_FALLBACK_MODELS", SECOND),
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENAI_MODEL", OPENAI_MODEL),
    ];
    vars.extend_from_slice(extra);
    instance(fakes, &vars).await
}

fn gemini_error(status: u16, canonical: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": status, "message": message, "status": canonical}}))
}

/// Gemini's documented overload.
fn overloaded() -> ResponseTemplate {
    gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
}

/// Gemini's documented per-minute quota 429 with `RetryInfo`.
fn quota_exhausted() -> ResponseTemplate {
    ResponseTemplate::new(429).set_body_json(json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.\nPlease retry in 58.217843437s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"model": PRIMARY, "location": "global"},
                "quotaValue": "5"
            }]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "58s"}
        ]
    }}))
}

/// What Gemini answers for a model it no longer serves.
fn retired(model: &str) -> ResponseTemplate {
    gemini_error(
        404,
        "NOT_FOUND",
        &format!("models/{model} is not found for API version v1beta, or is not supported for generateContent"),
    )
}

/// OpenAI's chat completion object carrying `analysis(feedback)` as its content.
fn openai_reply(feedback: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_741_570_283,
        "model": format!("{OPENAI_MODEL}-0125"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": analysis(feedback).to_string(), "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020}
    }))
}

async fn gemini_model(fakes: &Fakes, model: &str, reply: ResponseTemplate, calls: u64) {
    Mock::given(method("POST"))
        .and(path(gemini_path(model)))
        .respond_with(reply)
        .expect(calls)
        .named(format!("gemini {model}"))
        .mount(&fakes.gemini)
        .await;
}

async fn openai_answers(fakes: &Fakes, reply: ResponseTemplate, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(reply)
        .expect(calls)
        .named("openai-compatible chat")
        .mount(&fakes.openai)
        .await;
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.expect("metrics text")
}

fn assert_made_by(body: &Value, model: &str, provider: &str) {
    assert_eq!(body["meta"]["model"], model, "{body}");
    assert_eq!(body["meta"]["provider"], provider, "{body}");
}

#[tokio::test]
async fn an_overloaded_primary_hands_over_to_the_next_gemini_model_at_once() {
    let fakes = Fakes::start().await;
    // Three attempts allowed, but a link with a next one is left on its first 503.
    let app = full_chain(&fakes, &[("UPSTREAM_MAX_ATTEMPTS", "3")]).await;
    gemini_model(&fakes, PRIMARY, overloaded(), 1).await;
    gemini_model(&fakes, SECOND, analysis_reply("From the lite model."), 1).await;
    openai_answers(&fakes, openai_reply("unused"), 0).await;

    let body = analyze_ok(&app, "I go to the store yesterday.").await;
    assert_eq!(body["data"], analysis("From the lite model."));
    assert_made_by(&body, SECOND, "gemini");
    assert_eq!(body["meta"]["cached"], false);
    let scrape = metrics(&app).await;
    let series =
        format!(r#"ai_fallbacks_total{{from="{PRIMARY}",operation="analyze",reason="server_error",to="{SECOND}"}} 1"#);
    assert!(scrape.contains(&series), "{series} in\n{scrape}");
}

#[tokio::test]
async fn a_429_with_retry_info_goes_to_the_openai_compatible_link_without_waiting_for_it() {
    let fakes = Fakes::start().await;
    let base = fakes.openai_base();
    let app = instance(
        &fakes,
        &[
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_MODEL", OPENAI_MODEL),
            ("UPSTREAM_MAX_ATTEMPTS", "3"),
        ],
    )
    .await;
    gemini_model(&fakes, PRIMARY, quota_exhausted(), 1).await;
    // The documented request: Bearer key, the model, a json_schema response format.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_string_contains(r#""type":"json_schema""#))
        .and(body_string_contains(format!(r#""model":"{OPENAI_MODEL}""#)))
        .respond_with(openai_reply("From the local model."))
        .expect(1)
        .mount(&fakes.openai)
        .await;

    let body = analyze_ok(&app, "She don't like apples.").await;
    assert_eq!(body["data"], analysis("From the local model."));
    assert_made_by(&body, OPENAI_MODEL, "openai_compatible");
    assert_eq!(body["meta"]["parse"], "clean");
    let sent = fakes.openai.received_requests().await.expect("recorded");
    let request: Value = serde_json::from_slice(&sent[0].body).expect("JSON request");
    assert!(request.get("guided_json").is_none(), "{request}");
    assert_eq!(request["response_format"]["json_schema"]["strict"], true);
    assert_eq!(request["messages"][0]["role"], "system");
}

#[tokio::test]
async fn a_retired_primary_is_loud_and_the_fallback_answers() {
    let fakes = Fakes::start().await;
    let app = full_chain(&fakes, &[]).await;
    gemini_model(&fakes, PRIMARY, retired(PRIMARY), 2).await;
    gemini_model(&fakes, SECOND, analysis_reply("Still served."), 2).await;

    for text in ["Him is my friend.", "We was late."] {
        let body = analyze_ok(&app, text).await;
        assert_made_by(&body, SECOND, "gemini");
    }
    let scrape = metrics(&app).await;
    for series in [
        format!(r#"ai_model_not_found_total{{model="{PRIMARY}",operation="analyze"}} 2"#),
        r#"service_health_status{service="gemini"} 0"#.to_string(),
        format!(r#"ai_fallbacks_total{{from="{PRIMARY}",operation="analyze",reason="not_found",to="{SECOND}"}} 2"#),
    ] {
        assert!(scrape.contains(&series), "{series} in\n{scrape}");
    }
}

#[tokio::test]
async fn a_primary_hanging_past_the_fallback_deadline_gives_way_instead_of_a_504() {
    let fakes = Fakes::start().await;
    let app = full_chain(&fakes, &[("ANALYSIS_FALLBACK_AFTER_SECONDS", "1"), ("UPSTREAM_TIMEOUT_SECONDS", "15")]).await;
    // Far past both the link's deadline and the test's patience: only a hand-over answers.
    gemini_model(&fakes, PRIMARY, analysis_reply("Too late.").set_delay(Duration::from_secs(60)), 1).await;
    gemini_model(&fakes, SECOND, analysis_reply("In time."), 1).await;

    let body = analyze_ok(&app, "I has a dog.").await;
    assert_eq!(body["data"], analysis("In time."));
    assert_made_by(&body, SECOND, "gemini");
}

#[tokio::test]
async fn every_link_down_answers_the_primarys_503_with_retry_after() {
    let fakes = Fakes::start().await;
    // Links with a next one are asked once; the last keeps its attempts.
    let app = full_chain(&fakes, &[("UPSTREAM_MAX_ATTEMPTS", "2")]).await;
    gemini_model(&fakes, PRIMARY, overloaded(), 1).await;
    gemini_model(&fakes, SECOND, overloaded(), 1).await;
    let failing = json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}});
    openai_answers(&fakes, ResponseTemplate::new(500).set_body_json(failing), 2).await;

    let response = app
        .client
        .post(app.url("/api/analyze"))
        .json(&json!({"text": "They goes home."}))
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 503);
    let wait = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    assert!(wait.is_some_and(|seconds| seconds >= 1), "Retry-After: {wait:?}");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "upstream_unavailable", "{body}");
    assert!(body["error"].as_str().is_some_and(|message| message.starts_with("Gemini")), "the primary's error: {body}");
}

#[tokio::test]
async fn once_the_primary_recovers_new_texts_go_to_it_and_cached_answers_keep_their_maker() {
    let fakes = Fakes::start().await;
    let app = full_chain(&fakes, &[]).await;
    // The outage: the primary fails this text, the fallback answers it.
    Mock::given(method("POST"))
        .and(path(gemini_path(PRIMARY)))
        .and(body_string_contains("during the outage"))
        .respond_with(overloaded())
        .expect(1)
        .mount(&fakes.gemini)
        .await;
    gemini_model(&fakes, SECOND, analysis_reply("By the fallback."), 1).await;
    let body = analyze_ok(&app, "I write this during the outage.").await;
    assert_made_by(&body, SECOND, "gemini");

    // Recovered: a new text goes to the primary.
    Mock::given(method("POST"))
        .and(path(gemini_path(PRIMARY)))
        .and(body_string_contains("after the outage"))
        .respond_with(analysis_reply("By the primary."))
        .expect(1)
        .mount(&fakes.gemini)
        .await;
    let body = analyze_ok(&app, "I write this after the outage.").await;
    assert_eq!(body["data"], analysis("By the primary."));
    assert_made_by(&body, PRIMARY, "gemini");

    // Both are cached under their own model's key, and say who made them.
    let again = analyze_ok(&app, "I write this during the outage.").await;
    assert_eq!((again["meta"]["cached"].as_bool(), &again["data"]), (Some(true), &analysis("By the fallback.")));
    assert_made_by(&again, SECOND, "gemini");
    let again = analyze_ok(&app, "I write this after the outage.").await;
    assert_eq!(again["meta"]["cached"], true);
    assert_made_by(&again, PRIMARY, "gemini");
}

#[tokio::test]
async fn two_instances_on_one_redis_make_one_call_while_the_fallback_answers() {
    let redis = RedisServer::start();
    let fakes = Fakes::start().await;
    let url = redis.url();
    let shared = [
        ("CACHE_MODE", "redis_only"),
        ("REDIS_URL", url.as_str()),
        ("REDIS_TIMEOUT_MS", "2000"),
        ("UPSTREAM_TIMEOUT_SECONDS", "30"),
        ("ANALYSIS_FALLBACK_AFTER_SECONDS", "10"),
    ];
    let (a, b) = (full_chain(&fakes, &shared).await, full_chain(&fakes, &shared).await);
    gemini_model(&fakes, PRIMARY, overloaded(), 1).await;
    // Slow enough that every request arrives while the one call is under way.
    gemini_model(&fakes, SECOND, analysis_reply("Once.").set_delay(Duration::from_millis(700)), 1).await;

    let requests = (0..20).map(|i| analyze(if i % 2 == 0 { &a } else { &b }, "My brother have a car."));
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!((status, &body["data"]), (200, &analysis("Once.")), "{body}");
        assert_made_by(&body, SECOND, "gemini");
    }
}

#[tokio::test]
async fn without_a_fallback_nothing_changes() {
    let fakes = Fakes::start().await;
    // Today's behaviour: the one model is retried (three attempts) and its 503 is the answer.
    let app = instance(&fakes, &[("UPSTREAM_MAX_ATTEMPTS", "3"), ("UPSTREAM_TIMEOUT_SECONDS", "5")]).await;
    Mock::given(method("POST"))
        .and(path(gemini_path(PRIMARY)))
        .and(body_string_contains("overloaded"))
        .respond_with(overloaded())
        .expect(3)
        .mount(&fakes.gemini)
        .await;
    let (status, body) = analyze(&app, "The model is overloaded today.").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("upstream_unavailable")), "{body}");

    Mock::given(method("POST"))
        .and(path(gemini_path(PRIMARY)))
        .and(body_string_contains("fine"))
        .respond_with(analysis_reply("Fine."))
        .expect(1)
        .mount(&fakes.gemini)
        .await;
    let body = analyze_ok(&app, "Everything is fine.").await;
    assert_made_by(&body, PRIMARY, "gemini");
    assert!(!metrics(&app).await.contains("ai_fallbacks_total{"), "no chain, no hand-over series");
}

/// `/api/transcribe`'s second path: Azure down, an OpenAI-compatible transcription answers.
#[tokio::test]
async fn a_transcription_falls_back_when_azure_is_down_and_says_who_made_it() {
    let (azure, fakes) = (MockServer::start().await, Fakes::start().await);
    let (azure_uri, base) = (azure.uri(), fakes.openai_base());
    let app = spawn_app(&[
        ("AZURE_SPEECH_KEY", "azure-test-key"),
        ("AZURE_SPEECH_ENDPOINT", azure_uri.as_str()),
        ("TRANSCRIBE_FALLBACK_BASE_URL", base.as_str()),
        ("TRANSCRIBE_FALLBACK_API_KEY", "sk-whisper"),
        ("UPSTREAM_TIMEOUT_SECONDS", "20"),
    ])
    .await;
    Mock::given(method("POST"))
        .and(path(crate::helpers::AZURE_PATH))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"code": "503", "message": "The service is temporarily unavailable."}})),
        )
        .expect(2)
        .mount(&azure)
        .await;
    // vLLM's verbose_json: `duration` as a string. The request: multipart, verbose_json, `en`.
    Mock::given(method("POST"))
        .and(path("/v1/audio/transcriptions"))
        .and(header("authorization", "Bearer sk-whisper"))
        .and(|request: &wiremock::Request| {
            // The body holds the recording's bytes: not UTF-8, so searched as bytes.
            let has = |needle: &str| request.body.windows(needle.len()).any(|window| window == needle.as_bytes());
            has("verbose_json") && has("name=\"language\"\r\n\r\nen\r\n") && has("filename=\"audio.wav\"")
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "text": " I went to the store yesterday.", "language": "en", "duration": "2.5", "segments": []
        })))
        .expect(2)
        .mount(&fakes.openai)
        .await;

    let wav = crate::helpers::wav_tone(32_000);
    for _ in 0..2 {
        let form = reqwest::multipart::Form::new()
            .part("audio", reqwest::multipart::Part::bytes(wav.clone()).file_name("clip.wav"))
            .text("language", "en-US");
        let response =
            app.client.post(app.url("/api/transcribe")).multipart(form).timeout(HANG_GUARD).send().await.expect("sent");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["data"]["text"], "I went to the store yesterday.", "{body}");
        assert_eq!(body["data"]["language"], "en-US");
        assert_eq!(body["data"]["duration_ms"], 2500);
        assert_eq!(body["meta"]["provider"], "openai_compatible");
        // Never cached: its key names no provider, so it would be served as Azure's.
        assert_eq!(body["meta"]["cached"], false);
        assert!(body["data"].get("provider").is_none(), "{body}");
    }
}

/// With no keys at all: the simulator's overloaded primary and its OpenAI-compatible API show a
/// whole chain on a laptop (`SIMULATOR_*_MODELS`, `OPENAI_MODEL` alone).
#[tokio::test]
async fn the_simulator_shows_a_fallback_without_any_key() {
    let app = spawn_app(&[
        ("SIMULATOR_UNAVAILABLE_MODELS", PRIMARY),
        ("SIMULATOR_RETIRED_MODELS", SECOND),
        ("GEMINI_FALLBACK_MODELS", SECOND),
        ("OPENAI_MODEL", "sim-chat"),
        ("UPSTREAM_TIMEOUT_SECONDS", "20"),
        ("ANALYSIS_FALLBACK_AFTER_SECONDS", "5"),
    ])
    .await;
    let body = analyze_ok(&app, "I go to the store yesterday.").await;
    assert_made_by(&body, "sim-chat", "openai_compatible");
    assert!(body["data"]["errors"].as_array().is_some_and(|errors| !errors.is_empty()), "{body}");
    let scrape = metrics(&app).await;
    for series in [
        format!(r#"ai_fallbacks_total{{from="{PRIMARY}",operation="analyze",reason="server_error",to="{SECOND}"}} 1"#),
        format!(r#"ai_fallbacks_total{{from="{SECOND}",operation="analyze",reason="not_found",to="sim-chat"}} 1"#),
        format!(r#"service_health_status{{service="gemini:{SECOND}"}} 0"#),
    ] {
        assert!(scrape.contains(&series), "{series} in\n{scrape}");
    }
}
