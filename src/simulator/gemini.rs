//! Simulated Gemini `generateContent` (UPSTREAMS.md section 2): same paths, auth, request
//! spellings, reply and error bodies as the real API, answering with a deterministic analysis
//! of the learner's text (see `teacher`).
//!
//! The request is read as strictly as Google's proto3-JSON parser reads it: both lowerCamel and
//! snake_case names are accepted, an unknown field is a 400. A typo in our client therefore
//! fails against the simulator instead of being silently ignored.

pub(crate) mod teacher;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{Fault, Simulator};
use crate::analysis::prompt;

pub fn router(simulator: Simulator) -> Router {
    // The model and the method share one segment (`gemini-2.5-flash:generateContent`), which a
    // path pattern cannot split: capture the segment whole.
    Router::new().route("/{version}/models/{action}", post(generate_content)).with_state(simulator)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    contents: Vec<Content>,
    #[serde(default, rename = "systemInstruction", alias = "system_instruction")]
    system_instruction: Option<Content>,
    #[serde(default, rename = "generationConfig", alias = "generation_config")]
    generation_config: GenerationConfig,
    #[serde(default, rename = "safetySettings", alias = "safety_settings")]
    _safety_settings: Option<IgnoredAny>,
    #[serde(default, rename = "tools")]
    _tools: Option<IgnoredAny>,
    #[serde(default, rename = "toolConfig", alias = "tool_config")]
    _tool_config: Option<IgnoredAny>,
    #[serde(default, rename = "cachedContent", alias = "cached_content")]
    _cached_content: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct Content {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

/// Every documented `generationConfig` field; the ones the simulator does not act on are only
/// accepted, so that sending them is not mistaken for a typo. Accepted values, the response
/// schema included, are skipped rather than built into a `Value` tree: that tree was most of
/// the simulator's CPU per call, and load tests share the machine with it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationConfig {
    #[serde(default, rename = "maxOutputTokens", alias = "max_output_tokens")]
    max_output_tokens: Option<u32>,
    #[serde(default, rename = "responseMimeType", alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(default, rename = "responseSchema", alias = "response_schema")]
    response_schema: Option<IgnoredAny>,
    #[serde(default, rename = "responseJsonSchema", alias = "response_json_schema")]
    response_json_schema: Option<IgnoredAny>,
    #[serde(default, rename = "thinkingConfig", alias = "thinking_config")]
    thinking_config: Option<ThinkingConfig>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, rename = "topP", alias = "top_p")]
    _top_p: Option<f64>,
    #[serde(default, rename = "topK", alias = "top_k")]
    _top_k: Option<IgnoredAny>,
    #[serde(default, rename = "candidateCount", alias = "candidate_count")]
    _candidate_count: Option<IgnoredAny>,
    #[serde(default, rename = "stopSequences", alias = "stop_sequences")]
    _stop_sequences: Option<IgnoredAny>,
    #[serde(default, rename = "seed")]
    _seed: Option<IgnoredAny>,
    #[serde(default, rename = "presencePenalty", alias = "presence_penalty")]
    _presence_penalty: Option<IgnoredAny>,
    #[serde(default, rename = "frequencyPenalty", alias = "frequency_penalty")]
    _frequency_penalty: Option<IgnoredAny>,
    #[serde(default, rename = "responseLogprobs", alias = "response_logprobs")]
    _response_logprobs: Option<IgnoredAny>,
    #[serde(default, rename = "logprobs")]
    _logprobs: Option<IgnoredAny>,
    #[serde(default, rename = "responseModalities", alias = "response_modalities")]
    _response_modalities: Option<IgnoredAny>,
    #[serde(default, rename = "mediaResolution", alias = "media_resolution")]
    _media_resolution: Option<IgnoredAny>,
    #[serde(default, rename = "speechConfig", alias = "speech_config")]
    _speech_config: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkingConfig {
    #[serde(default, rename = "thinkingBudget", alias = "thinking_budget")]
    thinking_budget: Option<i64>,
    #[serde(default, rename = "includeThoughts", alias = "include_thoughts")]
    include_thoughts: Option<bool>,
    #[serde(default, rename = "thinkingLevel", alias = "thinking_level")]
    thinking_level: Option<String>,
}

async fn generate_content(
    State(simulator): State<Simulator>,
    Path((version, action)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, "generateContent")) = action.rsplit_once(':') else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("Method not found: {action}"));
    };
    if !matches!(version.as_str(), "v1" | "v1beta") || !model.starts_with("gemini") {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("models/{model} is not found for API version {version}, or is not supported for generateContent"),
        );
    }
    if !has_api_key(&headers, query.as_deref()) {
        return api_key_invalid();
    }
    let config = simulator.config();
    if config.retired_models.iter().any(|retired| retired == model) {
        // What Gemini answers once a model is shut down (UPSTREAMS.md 2.4, "Wrong model").
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("models/{model} is not found for API version {version}, or is not supported for generateContent"),
        );
    }
    if config.unavailable_models.iter().any(|down| down == model) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        );
    }
    let request = match serde_json::from_slice::<Request>(&body) {
        Ok(request) => request,
        Err(parse_error) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("Invalid JSON payload received. {parse_error}"),
            );
        }
    };
    if let Err(message) = validate(&request) {
        return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &message);
    }
    match simulator.before_answer().await {
        Some(Fault::RateLimited) => rate_limited(model, simulator.config().retry_after_seconds),
        Some(Fault::ServerError) => error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "The model is overloaded."),
        Some(Fault::Malformed) => answer(model, &request, Damage::pick()),
        Some(Fault::Hang) | None => answer(model, &request, None),
    }
}

fn has_api_key(headers: &HeaderMap, query: Option<&str>) -> bool {
    let in_header = headers.get("x-goog-api-key").is_some_and(|value| !value.as_bytes().is_empty());
    let in_query = query.is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes()).any(|(name, value)| name == "key" && !value.is_empty())
    });
    in_header || in_query
}

/// The checks the real API makes that our client could plausibly get wrong.
fn validate(request: &Request) -> Result<(), String> {
    if request.contents.is_empty() {
        return Err("* GenerateContentRequest.contents: contents is not specified\n".to_string());
    }
    if let Some(role) = request
        .contents
        .iter()
        .filter_map(|content| content.role.as_deref())
        .find(|role| !matches!(*role, "user" | "model"))
    {
        return Err(format!("Please use a valid role: user, model. (got {role:?})"));
    }
    let config = &request.generation_config;
    if config.response_schema.is_some() && config.response_json_schema.is_some() {
        return Err("responseSchema and responseJsonSchema cannot both be set".to_string());
    }
    let wants_schema = config.response_schema.is_some() || config.response_json_schema.is_some();
    if wants_schema && config.response_mime_type.as_deref() != Some("application/json") {
        return Err("* GenerateContentRequest.generation_config.response_mime_type: \
                    a response schema is only supported with response_mime_type application/json\n"
            .to_string());
    }
    if config.temperature.is_some_and(|temperature| !(0.0..=2.0).contains(&temperature)) {
        return Err("* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]\n".to_string());
    }
    if let Some(thinking) = &config.thinking_config {
        if thinking.thinking_budget.is_some() && thinking.thinking_level.is_some() {
            return Err("thinking_budget and thinking_level are not supported together".to_string());
        }
        if thinking.thinking_budget.is_some_and(|budget| budget != -1 && !(0..=24576).contains(&budget)) {
            return Err("The thinking budget is out of range (0 to 24576, or -1 for dynamic).".to_string());
        }
    }
    Ok(())
}

/// A way the model's JSON text can come out damaged; the parser must recover from each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// Wrapped in a ```json fence with prose after it.
    FencedWithProse,
    /// A trailing comma before the closing brace.
    TrailingComma,
    /// Cut off part-way, as `MAX_TOKENS` leaves it.
    Truncated,
}

impl Damage {
    fn pick() -> Option<Self> {
        Some(match rand::random_range(0..3u8) {
            0 => Self::FencedWithProse,
            1 => Self::TrailingComma,
            _ => Self::Truncated,
        })
    }
}

fn answer(model: &str, request: &Request, damage: Option<Damage>) -> Response {
    let user_text: String = request
        .contents
        .iter()
        .filter(|content| content.role.as_deref() != Some("model"))
        .flat_map(|content| &content.parts)
        .filter_map(|part| part.text.as_deref())
        .collect();
    let learner_text = prompt::learner_text_from_prompt(&user_text).unwrap_or_else(|| user_text.clone());
    let analysis = teacher::assess(&learner_text);
    let json_text = serde_json::to_string(&analysis).unwrap_or_default();

    let mut finish_reason = "STOP";
    let mut text = match damage {
        None => json_text,
        Some(Damage::FencedWithProse) => {
            format!("```json\n{json_text}\n```\nI hope this assessment helps the learner!")
        }
        Some(Damage::TrailingComma) => match json_text.strip_suffix('}') {
            Some(open) => format!("{open},}}"),
            None => json_text,
        },
        Some(Damage::Truncated) => {
            finish_reason = "MAX_TOKENS";
            cut(&json_text, json_text.chars().count() * 3 / 5).to_string()
        }
    };

    let config = &request.generation_config;
    let thinking = config.thinking_config.as_ref();
    let thinks = thinking.and_then(|thinking| thinking.thinking_budget) != Some(0);
    let thoughts = if thinks { 40 + tokens(&learner_text) } else { 0 };
    // Thought tokens come out of the same cap as the answer, as on the real API.
    let cap = u64::from(config.max_output_tokens.unwrap_or(8192));
    if thoughts + tokens(&text) > cap {
        finish_reason = "MAX_TOKENS";
        let room = usize::try_from(cap.saturating_sub(thoughts).saturating_mul(4)).unwrap_or(usize::MAX);
        text = cut(&text, room).to_string();
    }

    let mut parts = Vec::new();
    if thinks && thinking.and_then(|thinking| thinking.include_thoughts) == Some(true) {
        parts.push(json!({"text": "**Assessing the learner's text**\n\nChecking tenses, agreement and spelling.", "thought": true}));
    }
    // Real replies sometimes arrive in more than one part; do so for about half the texts,
    // deterministically, so clients must concatenate.
    let split_at = learner_text.len().is_multiple_of(2).then(|| text.chars().count() / 2).filter(|&at| at > 0);
    match split_at {
        Some(at) => {
            let head = cut(&text, at);
            parts.push(json!({"text": head}));
            parts.push(json!({"text": &text[head.len()..]}));
        }
        None if text.is_empty() => {}
        None => parts.push(json!({"text": text})),
    }

    let system_text: String = request
        .system_instruction
        .iter()
        .flat_map(|content| &content.parts)
        .filter_map(|part| part.text.as_deref())
        .collect();
    let prompt_tokens = tokens(&system_text) + tokens(&user_text);
    let candidates_tokens = tokens(&text);
    let mut usage = json!({
        "promptTokenCount": prompt_tokens,
        "totalTokenCount": prompt_tokens + candidates_tokens + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    });
    // proto3 JSON leaves zero counts out; clients must cope.
    if candidates_tokens > 0 {
        usage["candidatesTokenCount"] = json!(candidates_tokens);
    }
    if thoughts > 0 {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    let mut content = json!({"role": "model"});
    if !parts.is_empty() {
        content["parts"] = Value::Array(parts);
    }
    let response_id: String = uuid::Uuid::new_v4().simple().to_string().chars().take(23).collect();
    let body = json!({
        "candidates": [{"content": content, "finishReason": finish_reason, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Roughly Gemini's tokenizer for English: four characters a token.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The first `chars` characters of `text`, never splitting one.
fn cut(text: &str, chars: usize) -> &str {
    text.char_indices().nth(chars).map_or(text, |(at, _)| &text[..at])
}

fn error(status: StatusCode, canonical: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": canonical}});
    (status, axum::Json(body)).into_response()
}

/// Gemini's answer to a missing or wrong key: a 400, not a 401.
fn api_key_invalid() -> Response {
    let body = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
    }});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// The free tier's per-minute 429, with the `RetryInfo` a client should honour.
fn rate_limited(model: &str, retry_after_seconds: u64) -> Response {
    let body = json!({"error": {
        "code": 429,
        "message": format!(
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 5, model: {model}\nPlease retry in {retry_after_seconds}s."
        ),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
            },
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"model": model, "location": "global"},
                    "quotaValue": "5"
                }]
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_after_seconds}s")}
        ]
    }});
    (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
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
        let simulator =
            Simulator::new(SimConfig { rate_limit_rate: 1.0, retry_after_seconds: 7, ..SimConfig::default() });
        let (status, reply) = post(simulator, PATH, Some("k"), client_body("Hi.").to_string()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let details = reply["error"]["details"].as_array().expect("details");
        assert!(details.iter().any(|detail| detail["retryDelay"] == "7s"));
        assert!(
            details.iter().any(|detail| {
                detail["violations"][0]["quotaId"].as_str().is_some_and(|id| id.contains("PerMinute"))
            })
        );
    }

    #[tokio::test]
    async fn a_server_fault_is_the_documented_503_overload() {
        let simulator = Simulator::new(SimConfig { server_error_rate: 1.0, ..SimConfig::default() });
        let (status, reply) = post(simulator, PATH, Some("k"), client_body("Hi.").to_string()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            reply,
            json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
        );
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
}
