use axum::body::Body;
use axum::http::Request as HttpRequest;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::analysis::Analysis;
use crate::simulator::SimConfig;

const PATH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

fn client_body(learner_text: &str) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": prompt::user_prompt(learner_text)}]}],
        "systemInstruction": {"parts": [{"text": prompt::system_instruction()}]},
        "generationConfig": {
            "temperature": 0.2,
            "maxOutputTokens": 8192,
            "responseMimeType": "application/json",
            "responseSchema": prompt::response_schema(),
            "thinkingConfig": {"thinkingBudget": 0}
        }
    })
}

async fn post(simulator: Simulator, uri: &str, key: Option<&str>, body: impl Into<Body>) -> (StatusCode, Value) {
    let mut request = HttpRequest::post(uri).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("x-goog-api-key", key);
    }
    let request = request.body(body.into()).expect("request builds");
    let response = router(simulator).oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body reads").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("every answer is JSON"))
}

fn reply_text(reply: &Value) -> String {
    reply["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|part| part["thought"] != json!(true))
        .filter_map(|part| part["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_request_without_an_api_key_gets_googles_400_api_key_invalid() {
    let (status, body) = post(Simulator::default(), PATH, None, client_body("Hello.").to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");
}

#[tokio::test]
async fn the_clients_request_gets_an_analysis_of_the_learner_text() {
    let (status, body) =
        post(Simulator::default(), PATH, Some("k"), client_body("I go to the store yesterday.").to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
    let analysis: Analysis = serde_json::from_str(&reply_text(&body)).expect("the text is the contract's JSON");
    assert!(analysis.errors.iter().any(|error| error.text == "go" && error.correction == "went"));
}

#[tokio::test]
async fn a_snake_case_body_with_the_key_in_the_query_is_accepted_on_v1() {
    let body = json!({
        "contents": [{"parts": [{"text": "i like football"}]}],
        "system_instruction": {"parts": [{"text": "Assess."}]},
        "generation_config": {"response_mime_type": "application/json", "max_output_tokens": 4096,
                              "thinking_config": {"thinking_budget": 0}}
    });
    let uri = "/v1/models/gemini-2.5-flash:generateContent?key=secret";
    let (status, reply) = post(Simulator::default(), uri, None, body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let analysis: Analysis = serde_json::from_str(&reply_text(&reply)).expect("analysis JSON");
    assert!(analysis.errors.iter().any(|error| error.correction == "I"));
}

#[tokio::test]
async fn a_misspelled_field_or_broken_json_is_a_400_invalid_argument() {
    let mut typo = client_body("Hello.");
    typo["generationConfig"]["maxOutputToken"] = json!(10);
    for body in [typo.to_string(), "{\"contents\": [".to_string()] {
        let (status, reply) = post(Simulator::default(), PATH, Some("k"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(reply["error"]["status"], "INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn a_schema_without_the_json_mime_type_is_refused_like_the_real_api() {
    let mut body = client_body("Hello.");
    body["generationConfig"]["responseMimeType"] = json!("text/plain");
    let (status, _) = post(Simulator::default(), PATH, Some("k"), body.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_model_or_api_version_is_a_404() {
    for uri in ["/v2/models/gemini-2.5-flash:generateContent", "/v1beta/models/gpt-4:generateContent"] {
        let (status, reply) = post(Simulator::default(), uri, Some("k"), client_body("Hi.").to_string()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(reply["error"]["status"], "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_rate_limit_fault_carries_retry_info_and_a_per_minute_quota() {
    let simulator = Simulator::new(SimConfig { rate_limit_rate: 1.0, retry_after_seconds: 7, ..SimConfig::default() });
    let (status, reply) = post(simulator, PATH, Some("k"), client_body("Hi.").to_string()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let details = reply["error"]["details"].as_array().expect("details");
    assert!(details.iter().any(|detail| detail["retryDelay"] == "7s"));
    assert!(
        details
            .iter()
            .any(|detail| { detail["violations"][0]["quotaId"].as_str().is_some_and(|id| id.contains("PerMinute")) })
    );
}

#[tokio::test]
async fn a_server_fault_is_the_documented_503_overload() {
    let simulator = Simulator::new(SimConfig { server_error_rate: 1.0, ..SimConfig::default() });
    let (status, reply) = post(simulator, PATH, Some("k"), client_body("Hi.").to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply, json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}));
}

#[tokio::test]
async fn a_malformed_fault_answers_200_with_json_text_that_does_not_parse_as_is() {
    let simulator = Simulator::new(SimConfig { malformed_rate: 1.0, ..SimConfig::default() });
    for _ in 0..12 {
        let (status, reply) =
            post(simulator.clone(), PATH, Some("k"), client_body("I go home yesterday.").to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(serde_json::from_str::<Analysis>(&reply_text(&reply)).is_err());
    }
}

#[tokio::test]
async fn some_replies_come_in_two_parts_that_only_parse_together() {
    // Even-length learner text: the simulator splits the reply.
    let (_, reply) = post(Simulator::default(), PATH, Some("k"), client_body("I like tea.!").to_string()).await;
    let parts = reply["candidates"][0]["content"]["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2);
    assert!(serde_json::from_str::<Value>(parts[0]["text"].as_str().unwrap_or("")).is_err());
    assert!(serde_json::from_str::<Analysis>(&reply_text(&reply)).is_ok());
}

#[tokio::test]
async fn thinking_within_a_small_output_cap_ends_in_max_tokens_without_parts() {
    let mut body = client_body("I go to the store yesterday.");
    body["generationConfig"]["maxOutputTokens"] = json!(20);
    body["generationConfig"]["thinkingConfig"] = json!({"thinkingBudget": 1024});
    let (status, reply) = post(Simulator::default(), PATH, Some("k"), body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert!(reply["candidates"][0]["content"].get("parts").is_none());
    assert!(reply["usageMetadata"]["thoughtsTokenCount"].as_u64().is_some_and(|count| count > 0));
}
