//! Simulated Gemini `generateContent` (UPSTREAMS.md section 2): same paths, auth, request
//! spellings, reply and error bodies as the real API, answering with a deterministic analysis
//! of the learner's text (see `teacher`).
//!
//! The request is read as strictly as Google's proto3-JSON parser reads it: both lowerCamel and
//! snake_case names are accepted, an unknown field is a 400. A typo in our client therefore
//! fails against the simulator instead of being silently ignored.

mod errors;
mod request;
pub(crate) mod teacher;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Fault, Simulator};
use crate::analysis::prompt;
use errors::{api_key_invalid, error, rate_limited};
use request::{Request, validate};

pub fn router(simulator: Simulator) -> Router {
    // The model and the method share one segment (`gemini-2.5-flash:generateContent`), which a
    // path pattern cannot split: capture the segment whole.
    Router::new().route("/{version}/models/{action}", post(generate_content)).with_state(simulator)
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

#[cfg(test)]
mod tests;
