//! Gemini's error bodies, as the real API writes them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) fn error(status: StatusCode, canonical: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": canonical}});
    (status, axum::Json(body)).into_response()
}

/// Gemini's answer to a missing or wrong key: a 400, not a 401.
pub(super) fn api_key_invalid() -> Response {
    let body = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
    }});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// The free tier's per-minute 429, with the `RetryInfo` a client should honour.
pub(super) fn rate_limited(model: &str, retry_after_seconds: u64) -> Response {
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
