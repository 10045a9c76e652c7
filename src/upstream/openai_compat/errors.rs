//! What a non-2xx answer of an OpenAI-compatible server means. The servers disagree on the
//! body, so every documented shape is read for its message:
//!
//! - OpenAI, Azure OpenAI, LiteLLM, llama.cpp, current vLLM:
//!   `{"error": {"message", "type", "param", "code"}}` (`code` a string or a number);
//! - Ollama and whisper.cpp's server: `{"error": "..."}`;
//! - older vLLM: `{"object": "error", "message", "type", "code"}`;
//! - FastAPI servers (speaches): `{"detail": ...}`;
//! - anything else (a proxy's HTML page): an excerpt.
//!
//! The status decides the kind, from one exhaustive match; the body only adds two facts:
//! OpenAI's `insufficient_quota` 429 (billing, not a rate: retrying is pointless, like Gemini's
//! per-day quota) and the wait of a `Retry-After` header.

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::UPSTREAM;
use crate::upstream::{UpstreamError, retry_after};

/// How much of a non-JSON error body goes into an error message.
const BODY_EXCERPT_CHARS: usize = 200;

pub(super) fn classify_error(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> UpstreamError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let (message, code) = match &parsed {
        Some(value) => read_body(value),
        None => (excerpt(body), None),
    };
    let retry_after = retry_after::from_headers(headers, now);
    match status {
        401 | 403 => UpstreamError::Auth { upstream: UPSTREAM, message },
        429 => UpstreamError::RateLimited {
            upstream: UPSTREAM,
            retry_after,
            per_day: code.as_deref() == Some("insufficient_quota"),
        },
        408 | 500..=599 => UpstreamError::Server { upstream: UPSTREAM, status, message, retry_after },
        // 404 included: a model not installed or not served is a `Rejected` the chain hands over.
        400..=499 => UpstreamError::Rejected { upstream: UPSTREAM, status, message },
        0..=399 | 600.. => UpstreamError::InvalidResponse {
            upstream: UPSTREAM,
            message: format!("unexpected HTTP status {status}: {message}"),
        },
    }
}

/// The message and machine code of any of the documented error bodies.
fn read_body(value: &Value) -> (String, Option<String>) {
    let code = |object: &Value| match object.get("code") {
        Some(Value::String(code)) => Some(code.clone()),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    match value.get("error") {
        Some(Value::String(message)) => (clip(message), None),
        Some(error @ Value::Object(_)) => {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            let kind = error.get("type").and_then(Value::as_str);
            let text = match kind {
                Some(kind) => format!("{kind}: {message}"),
                None => message.to_string(),
            };
            (clip(&text), code(error))
        }
        _ => match (value.get("message").and_then(Value::as_str), value.get("detail")) {
            (Some(message), _) => (clip(message), code(value)),
            (None, Some(Value::String(detail))) => (clip(detail), None),
            (None, Some(detail)) => (clip(&detail.to_string()), None),
            (None, None) => (clip(&value.to_string()), None),
        },
    }
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn excerpt(body: &[u8]) -> String {
    clip(&String::from_utf8_lossy(body))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::{HeaderValue, RETRY_AFTER};

    use super::*;

    fn classify(status: u16, body: &str) -> UpstreamError {
        classify_error(status, &HeaderMap::new(), body.as_bytes(), SystemTime::now())
    }

    #[test]
    fn openai_errors_keep_type_and_message() {
        // OpenAI's documented invalid-key answer.
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let UpstreamError::Auth { message, .. } = classify(401, body) else { panic!("401 is auth") };
        assert!(message.starts_with("invalid_request_error: Incorrect API key"), "{message}");
    }

    #[test]
    fn a_quota_429_is_not_worth_retrying_a_rate_429_is() {
        let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(matches!(classify(429, quota), UpstreamError::RateLimited { per_day: true, .. }));
        let rate = r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("20"));
        let error = classify_error(429, &headers, rate.as_bytes(), SystemTime::now());
        assert!(
            matches!(error, UpstreamError::RateLimited { per_day: false, retry_after: Some(wait), .. } if wait == Duration::from_secs(20)),
            "{error:?}"
        );
    }

    #[test]
    fn a_model_not_found_is_a_rejection_of_status_404() {
        // Ollama's answer for a model that is not pulled.
        let error = classify(404, r#"{"error":"model \"llama3.2\" not found, try pulling it first"}"#);
        assert!(
            matches!(&error, UpstreamError::Rejected { status: 404, message, .. } if message.contains("not found")),
            "{error:?}"
        );
    }

    #[test]
    fn vllm_llama_cpp_and_fastapi_bodies_are_read() {
        let vllm_context = r#"{"error":{"message":"This model's maximum context length is 2048 tokens. However, your request has 8 input tokens plus 2045 'max_tokens'","type":"BadRequestError","param":"input_tokens, max_tokens","code":400}}"#;
        assert!(
            matches!(classify(400, vllm_context), UpstreamError::Rejected { status: 400, message, .. } if message.starts_with("BadRequestError: This model's"))
        );
        let old_vllm = r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
        assert!(
            matches!(classify(404, old_vllm), UpstreamError::Rejected { message, .. } if message == "The model `x` does not exist.")
        );
        let loading = r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#;
        assert!(matches!(classify(503, loading), UpstreamError::Server { status: 503, .. }));
        let speaches = r#"{"detail":"Model 'whisper-x' is not installed locally. You can download the model using `POST /v1/models`"}"#;
        assert!(
            matches!(classify(404, speaches), UpstreamError::Rejected { message, .. } if message.starts_with("Model 'whisper-x'"))
        );
    }

    #[test]
    fn an_html_page_is_cut_to_an_excerpt() {
        let page = "<html>".repeat(1000);
        let UpstreamError::Server { message, .. } = classify(502, &page) else { panic!("502 is a server error") };
        assert!(message.chars().count() <= BODY_EXCERPT_CHARS + 1);
    }
}
