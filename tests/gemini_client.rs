//! The Gemini client against a wiremock fake serving the documented payloads of
//! UPSTREAMS.md section 2, the analyzer on top of it, and the client against the simulator.

use std::sync::Arc;
use std::time::Duration;

use backend_ai::analysis::ParseQuality;
use backend_ai::analysis::analyzer::Analyzer;
use backend_ai::domain::jobs::AnalyzeJob;
use backend_ai::metrics::Metrics;
use backend_ai::simulator::{SimConfig, Simulator};
use backend_ai::upstream::connections::ConnectionSettings;
use backend_ai::upstream::gemini::{FinishReason, GeminiClient, GeminiConfig, GenerateRequest, Usage};
use backend_ai::upstream::{Upstream, UpstreamError};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const GEMINI: Upstream = Upstream::Gemini;

fn client_for(base: &str, key: &str) -> GeminiClient {
    GeminiClient::new(GeminiConfig {
        base_url: base.parse().expect("loopback URL"),
        api_key: key.to_string(),
        model: "gemini-2.5-flash".to_string(),
        api_version: "v1beta".to_string(),
        connections: ConnectionSettings::default(),
    })
}

fn request() -> GenerateRequest {
    GenerateRequest {
        system_instruction: "You are a tutor.".into(),
        user_text: "Rate this.".to_string(),
        response_schema: Some(Arc::new(json!({"type": "OBJECT", "properties": {"score": {"type": "INTEGER"}}}))),
        temperature: 0.2,
        max_output_tokens: 512,
        thinking_budget: Some(0),
    }
}

/// A fake answering every generateContent call with `response`; returns it and a client for it.
async fn fake(response: ResponseTemplate) -> (MockServer, GeminiClient) {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path(PATH)).respond_with(response).mount(&server).await;
    let client = client_for(&server.uri(), "test-key");
    (server, client)
}

async fn reply_to(status: u16, body: Value) -> Result<backend_ai::upstream::gemini::GeminiReply, UpstreamError> {
    let (_server, client) = fake(ResponseTemplate::new(status).set_body_json(body)).await;
    client.generate(&request()).await
}

fn text_reply(parts: Value, finish_reason: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish_reason, "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    })
}

// --- the request on the wire ---

#[tokio::test]
async fn the_request_is_a_post_with_the_key_header_and_the_documented_camel_case_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(header("x-goog-api-key", "test-key"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_reply(json!([{"text": "{}"}]), "STOP")))
        .expect(1)
        .mount(&server)
        .await;
    client_for(&server.uri(), "test-key").generate(&request()).await.expect("the fake answers 200");

    let received = server.received_requests().await.expect("recording is on");
    let body: Value = serde_json::from_slice(&received[0].body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Rate this."}]}],
            "systemInstruction": {"parts": [{"text": "You are a tutor."}]},
            "generationConfig": {
                "temperature": 0.2,
                "maxOutputTokens": 512,
                "responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT", "properties": {"score": {"type": "INTEGER"}}},
                "thinkingConfig": {"thinkingBudget": 0}
            }
        })
    );
    assert!(received[0].url.query().is_none(), "the key travels in the header, never in the URL");
}

#[tokio::test]
async fn a_plain_text_request_asks_for_neither_json_nor_a_thinking_budget() {
    let (server, client) =
        fake(ResponseTemplate::new(200).set_body_json(text_reply(json!([{"text": "ok"}]), "STOP"))).await;
    let plain = GenerateRequest { response_schema: None, thinking_budget: None, ..request() };
    client.generate(&plain).await.expect("the fake answers 200");
    let received = server.received_requests().await.expect("recording is on");
    let body: Value = serde_json::from_slice(&received[0].body).expect("JSON body");
    assert_eq!(body["generationConfig"], json!({"temperature": 0.2, "maxOutputTokens": 512}));
}

#[tokio::test]
async fn the_analysis_request_carries_the_schema_and_keeps_the_learner_text_out_of_the_instructions() {
    let (server, client) =
        fake(ResponseTemplate::new(200).set_body_json(text_reply(json!([{"text": "{}"}]), "STOP"))).await;
    let analyzer = Analyzer::new(client, Metrics::new());
    let job = AnalyzeJob::new("I   go to the store yesterday.", "gemini-2.5-flash");
    analyzer.analyze(&job).await.expect("the fake answers 200");

    let received = server.received_requests().await.expect("recording is on");
    let body: Value = serde_json::from_slice(&received[0].body).expect("JSON body");
    let config = &body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["responseSchema"], backend_ai::analysis::prompt::response_schema());
    assert_eq!(config["thinkingConfig"], json!({"thinkingBudget": 0}));
    let user = body["contents"][0]["parts"][0]["text"].as_str().expect("user text");
    let system = body["systemInstruction"]["parts"][0]["text"].as_str().expect("system text");
    assert!(user.contains("I go to the store yesterday."), "the normalised text is sent: {user}");
    assert!(!system.contains("store yesterday"));
}

// --- replies ---

#[tokio::test]
async fn the_verbatim_gemini_2_5_flash_capture_reads_with_thought_tokens_in_the_usage() {
    let capture = json!({
      "candidates": [
        {
          "content": {
            "parts": [
              {
                "text": "I apologize for that! \"WTF!\" is an acronym for \"What the f***!\" It's a very informal and often impolite expression of surprise, disbelief, shock, or annoyance.\n\nI used it because your greeting was quite unexpected for an AI, and I was trying to simulate a sudden, informal reaction to something unusual. I shouldn't have used such language. My apologies if it was offensive or confusing."
              }
            ],
            "role": "model"
          },
          "finishReason": "STOP",
          "index": 0
        }
      ],
      "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 87,
        "totalTokenCount": 255,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
        "thoughtsTokenCount": 156
      },
      "modelVersion": "gemini-2.5-flash",
      "responseId": "4-4GafrNGoq52roPk_XSuAY"
    });
    let reply = reply_to(200, capture).await.expect("a STOP reply is usable");
    assert!(reply.text.starts_with("I apologize for that!"));
    assert!(reply.text.ends_with("offensive or confusing."));
    assert_eq!(reply.finish_reason, FinishReason::Stop);
    assert_eq!(reply.usage, Usage { prompt: 12, candidates: 87, thoughts: 156, total: 255 });
    assert_eq!(reply.model_version.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(reply.response_id.as_deref(), Some("4-4GafrNGoq52roPk_XSuAY"));
}

#[tokio::test]
async fn json_split_over_several_parts_is_joined_back_together() {
    let reply = reply_to(200, text_reply(json!([{"text": "{\"feedback\": \"Go"}, {"text": "od work\"}"}]), "STOP"))
        .await
        .expect("usable");
    assert_eq!(reply.text, "{\"feedback\": \"Good work\"}");
}

#[tokio::test]
async fn thought_parts_are_left_out_of_the_text() {
    let parts = json!([
        {"text": "**Planning**\nThe learner used present tense.", "thought": true},
        {"text": "{\"feedback\": \"ok\"}"},
        {"text": "", "thoughtSignature": "c2ln"}
    ]);
    let reply = reply_to(200, text_reply(parts, "STOP")).await.expect("usable");
    assert_eq!(reply.text, "{\"feedback\": \"ok\"}");
}

#[tokio::test]
async fn max_tokens_with_no_parts_is_an_empty_reply_not_an_error() {
    let body = json!({
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
        "usageMetadata": {"promptTokenCount": 900, "totalTokenCount": 1411, "thoughtsTokenCount": 511},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "xyz"
    });
    let reply = reply_to(200, body).await.expect("MAX_TOKENS is left to the parser");
    assert_eq!(reply.text, "");
    assert_eq!(reply.finish_reason, FinishReason::MaxTokens);
    assert_eq!(reply.usage, Usage { prompt: 900, candidates: 0, thoughts: 511, total: 1411 });
}

#[tokio::test]
async fn a_candidate_stopped_for_safety_is_a_block_even_with_text() {
    let body = json!({"candidates": [{
        "content": {"parts": [{"text": "{\"feedback\": \"half"}], "role": "model"},
        "finishReason": "SAFETY",
        "index": 0,
        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true}]
    }]});
    assert_eq!(reply_to(200, body).await, Err(UpstreamError::Blocked { upstream: GEMINI, reason: "SAFETY".into() }));
}

#[tokio::test]
async fn every_content_withholding_finish_reason_is_a_block() {
    for reason in ["RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "LANGUAGE", "IMAGE_SAFETY"] {
        let result = reply_to(200, json!({"candidates": [{"finishReason": reason, "index": 0}]})).await;
        assert_eq!(result, Err(UpstreamError::Blocked { upstream: GEMINI, reason: reason.into() }));
    }
}

#[tokio::test]
async fn a_blocked_prompt_without_candidates_is_a_block() {
    let cookbook = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
      {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
      {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
      {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"},
      {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}]}});
    assert_eq!(
        reply_to(200, cookbook).await,
        Err(UpstreamError::Blocked { upstream: GEMINI, reason: "SAFETY".into() })
    );
}

#[tokio::test]
async fn an_unknown_finish_reason_still_delivers_the_text() {
    let reply = reply_to(200, text_reply(json!([{"text": "{}"}]), "BRAND_NEW_REASON")).await.expect("usable");
    assert_eq!(reply.finish_reason, FinishReason::Unknown("BRAND_NEW_REASON".into()));
    assert_eq!(reply.text, "{}");
}

#[tokio::test]
async fn a_reply_with_neither_candidates_nor_a_block_is_unreadable() {
    let result = reply_to(200, json!({"usageMetadata": {"promptTokenCount": 3}})).await;
    assert!(matches!(result, Err(UpstreamError::InvalidResponse { .. })), "{result:?}");
}

#[tokio::test]
async fn a_200_that_is_not_json_is_unreadable() {
    let (_server, client) = fake(ResponseTemplate::new(200).set_body_string("<html>hi</html>")).await;
    let result = client.generate(&request()).await;
    assert!(matches!(result, Err(UpstreamError::InvalidResponse { .. })), "{result:?}");
}

// --- errors ---

fn quota_429(details_tail: Value) -> Value {
    let mut details = vec![json!({
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
    })];
    details.extend(details_tail.as_array().cloned().unwrap_or_default());
    json!({"error": {"code": 429, "message": "You exceeded your current quota, please check your plan and billing details.", "status": "RESOURCE_EXHAUSTED", "details": details}})
}

#[tokio::test]
async fn the_documented_free_tier_429_gives_its_retry_delay() {
    let body = json!({
      "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 5, model: gemini-3-flash\nPlease retry in 58.217843437s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
          {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
          },
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
              {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"model": "gemini-3-flash", "location": "global"},
                "quotaValue": "5"
              }
            ]
          },
          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "58s"}
        ]
      }
    });
    let error = reply_to(429, body).await.expect_err("429");
    assert_eq!(
        error,
        UpstreamError::RateLimited { upstream: GEMINI, retry_after: Some(Duration::from_secs(58)), per_day: false }
    );
    assert_eq!(error.retry(), Some(Some(Duration::from_secs(58))));
}

#[tokio::test]
async fn a_fractional_retry_delay_is_kept_to_the_nanosecond() {
    let body = quota_429(json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "29.723877525s"}]));
    let error = reply_to(429, body).await.expect_err("429");
    assert_eq!(
        error,
        UpstreamError::RateLimited {
            upstream: GEMINI,
            retry_after: Some(Duration::new(29, 723_877_525)),
            per_day: false
        }
    );
}

#[tokio::test]
async fn a_per_day_quota_without_retry_info_is_not_worth_retrying() {
    let body = quota_429(json!([{
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
            "quotaDimensions": {"model": "gemini-2.5-flash", "location": "global"},
            "quotaValue": "250"
        }]
    }]));
    let error = reply_to(429, body).await.expect_err("429");
    assert_eq!(error, UpstreamError::RateLimited { upstream: GEMINI, retry_after: None, per_day: true });
    assert_eq!(error.retry(), None);
}

#[tokio::test]
async fn an_invalid_api_key_is_an_auth_failure_although_it_comes_as_a_400() {
    let body = json!({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}});
    let error = reply_to(400, body).await.expect_err("400");
    assert!(
        matches!(&error, UpstreamError::Auth { message, .. } if message.contains("API key not valid")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_permission_denied_403_is_an_auth_failure() {
    let body = json!({"error": {"code": 403, "message": "Method doesn't allow unregistered callers.", "status": "PERMISSION_DENIED"}});
    assert!(matches!(reply_to(403, body).await, Err(UpstreamError::Auth { .. })));
}

#[tokio::test]
async fn any_other_400_is_a_rejection_that_is_not_retried() {
    let body = json!({"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified\n", "status": "INVALID_ARGUMENT"}});
    let error = reply_to(400, body).await.expect_err("400");
    assert!(matches!(error, UpstreamError::Rejected { status: 400, .. }), "{error:?}");
    assert_eq!(error.retry(), None);
}

#[tokio::test]
async fn an_unknown_model_404_is_a_rejection_naming_the_model() {
    let body = json!({"error":{"code":404,"message":"models/gemini-0 is not found for API version v1beta","status":"NOT_FOUND"}});
    let error = reply_to(404, body).await.expect_err("404");
    assert!(
        matches!(&error, UpstreamError::Rejected { status: 404, message, .. } if message.contains("models/gemini-0")),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_overloaded_503_is_a_retryable_server_error() {
    let body = json!({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}});
    let error = reply_to(503, body).await.expect_err("503");
    assert_eq!(
        error,
        UpstreamError::Server {
            upstream: GEMINI,
            status: 503,
            message: "UNAVAILABLE: The model is overloaded.".into(),
            retry_after: None
        }
    );
    assert_eq!(error.retry(), Some(None));
}

#[tokio::test]
async fn an_overloaded_503_with_retry_after_carries_that_wait_for_the_retry_layer() {
    let body = json!({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}});
    let (_server, client) =
        fake(ResponseTemplate::new(503).set_body_json(body).insert_header("Retry-After", "3")).await;
    let error = client.generate(&request()).await.expect_err("503");
    assert_eq!(error.retry(), Some(Some(Duration::from_secs(3))));
}

#[tokio::test]
async fn a_503_whose_status_carries_retry_info_gives_its_retry_delay() {
    let body = json!({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}});
    let error = reply_to(503, body).await.expect_err("503");
    assert_eq!(error.retry(), Some(Some(Duration::from_millis(2500))));
}

#[tokio::test]
async fn a_429_without_retry_info_falls_back_to_its_retry_after_header() {
    let body = json!({"error":{"code":429,"message":"Resource has been exhausted.","status":"RESOURCE_EXHAUSTED"}});
    let (_server, client) =
        fake(ResponseTemplate::new(429).set_body_json(body).insert_header("Retry-After", "4")).await;
    let error = client.generate(&request()).await.expect_err("429");
    assert_eq!(error.retry(), Some(Some(Duration::from_secs(4))));
}

#[tokio::test]
async fn a_non_json_502_from_a_proxy_is_a_server_error_quoting_the_body() {
    let (_server, client) =
        fake(ResponseTemplate::new(502).set_body_string("<html><body>502 Bad Gateway</body></html>")).await;
    let error = client.generate(&request()).await.expect_err("502");
    assert!(
        matches!(&error, UpstreamError::Server { status: 502, message, .. } if message.contains("502 Bad Gateway")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_request_timeout_408_is_a_server_error() {
    let error = reply_to(408, json!({})).await.expect_err("408");
    assert!(matches!(error, UpstreamError::Server { status: 408, .. }), "{error:?}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.local_addr().expect("address").port()
    };
    let result = client_for(&format!("http://127.0.0.1:{port}"), "k").generate(&request()).await;
    assert!(matches!(result, Err(UpstreamError::Unreachable { .. })), "{result:?}");
}

// --- the analyzer ---

#[tokio::test]
async fn a_clean_analysis_is_parsed_and_its_tokens_and_quality_counted() {
    let analysis = json!({
        "errors": [{"type": "grammar", "text": "go", "correction": "went", "explanation": "Past tense."}],
        "feedback": "Good.", "strengths": ["Clear"], "improvement_areas": ["Tenses"],
        "recommended_tasks": [{"type": "grammar", "title": "Past simple", "description": "Write five sentences."}],
        "cefr_assessment": {"level": "A2", "confidence": 0.7, "rationale": "Simple sentences."}
    })
    .to_string();
    let (_server, client) =
        fake(ResponseTemplate::new(200).set_body_json(text_reply(json!([{"text": analysis}]), "STOP"))).await;
    let metrics = Metrics::new();
    let outcome = Analyzer::new(client, metrics.clone())
        .analyze(&AnalyzeJob::new("I go to the store yesterday.", "gemini-2.5-flash"))
        .await
        .expect("usable");
    assert_eq!(outcome.parse, ParseQuality::Clean);
    assert_eq!(outcome.analysis.errors[0].correction, "went");
    assert_eq!(metrics.gemini_tokens_total.with_label_values(&["prompt"]).get(), 10);
    assert_eq!(metrics.gemini_tokens_total.with_label_values(&["candidates"]).get(), 5);
    assert_eq!(metrics.gemini_tokens_total.with_label_values(&["thoughts"]).get(), 0);
    assert_eq!(metrics.gemini_tokens_total.with_label_values(&["total"]).get(), 15);
    assert_eq!(metrics.analysis_parse_total.with_label_values(&["clean"]).get(), 1);
    assert_eq!(metrics.json_parse_failures_total.with_label_values(&["gemini"]).get(), 0);
}

#[tokio::test]
async fn an_unusable_reply_becomes_a_counted_fallback_not_an_error() {
    let (_server, client) =
        fake(ResponseTemplate::new(200).set_body_json(text_reply(json!([{"text": "Sorry, I can't."}]), "STOP"))).await;
    let metrics = Metrics::new();
    let outcome = Analyzer::new(client, metrics.clone())
        .analyze(&AnalyzeJob::new("Hello.", "gemini-2.5-flash"))
        .await
        .expect("a reply, however bad, is not an upstream error");
    assert_eq!(outcome.parse, ParseQuality::Fallback);
    assert_eq!(metrics.analysis_parse_total.with_label_values(&["fallback"]).get(), 1);
    assert_eq!(metrics.json_parse_failures_total.with_label_values(&["gemini"]).get(), 1);
}

#[tokio::test]
async fn a_blocked_reply_is_an_error_and_never_an_invented_analysis() {
    let body = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}});
    let (_server, client) = fake(ResponseTemplate::new(200).set_body_json(body)).await;
    let metrics = Metrics::new();
    let result = Analyzer::new(client, metrics.clone()).analyze(&AnalyzeJob::new("Hello.", "gemini-2.5-flash")).await;
    assert_eq!(result, Err(UpstreamError::Blocked { upstream: GEMINI, reason: "PROHIBITED_CONTENT".into() }));
    for quality in ["clean", "repaired", "fallback"] {
        assert_eq!(metrics.analysis_parse_total.with_label_values(&[quality]).get(), 0);
    }
}

// --- the client against the simulator ---

async fn simulator_client(config: SimConfig, key: &str) -> GeminiClient {
    let address = Simulator::new(config).spawn().await.expect("simulator binds loopback");
    client_for(&format!("http://{address}"), key)
}

#[tokio::test]
async fn the_simulator_accepts_our_exact_request_and_answers_with_a_clean_analysis() {
    let client = simulator_client(SimConfig::default(), "dev-key").await;
    let outcome = Analyzer::new(client, Metrics::new())
        .analyze(&AnalyzeJob::new("I go to the store yesterday.", "gemini-2.5-flash"))
        .await
        .expect("the simulator answers");
    assert_eq!(outcome.parse, ParseQuality::Clean);
    assert!(outcome.analysis.errors.iter().any(|error| error.text == "go" && error.correction == "went"));
}

#[tokio::test]
async fn the_simulators_rate_limit_reads_as_a_per_minute_limit_with_its_delay() {
    let config = SimConfig { rate_limit_rate: 1.0, retry_after_seconds: 7, ..SimConfig::default() };
    let error = simulator_client(config, "dev-key").await.generate(&request()).await.expect_err("429");
    assert_eq!(
        error,
        UpstreamError::RateLimited { upstream: GEMINI, retry_after: Some(Duration::from_secs(7)), per_day: false }
    );
}

#[tokio::test]
async fn the_simulator_refuses_an_empty_key_as_gemini_does() {
    let error = simulator_client(SimConfig::default(), "").await.generate(&request()).await.expect_err("400");
    assert!(matches!(error, UpstreamError::Auth { .. }), "{error:?}");
}
