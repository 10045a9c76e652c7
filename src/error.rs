//! `AppError`: every way a request can fail, and the only place failures become HTTP.
//!
//! Status and `code` follow the contract's table (`API.md`). The body is always
//! `{"success": false, "error", "code", "request_id"}`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::audio::AudioError;
use crate::middleware::request_id;
use crate::upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or invalid X-API-Key")]
    Unauthorized,
    #[error("{0}")]
    Validation(String),
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The client stopped sending its body (slow-loris, a dead mobile connection).
    #[error("the request body was not received in time")]
    BodyTimeout,
    #[error("Rate limit exceeded")]
    RateLimited { retry_after: Duration },
    /// The user's daily audio or token budget is spent (`usage::budget`); `message` names it.
    #[error("{message}")]
    BudgetExceeded { message: String, retry_after: Duration },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed for this path")]
    MethodNotAllowed,
    /// `MAX_IN_FLIGHT` requests are already being served by this instance.
    #[error("the service is at capacity; try again shortly")]
    Overloaded,
    /// A bug: a panic caught at the edge. Never an expected outcome of any input.
    #[error("internal error")]
    Internal,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    success: bool,
    /// A human-readable message.
    error: String,
    /// A machine code from the contract's table, e.g. `validation_error`.
    code: &'static str,
    #[schema(value_type = String)]
    request_id: request_id::RequestId,
}

impl AppError {
    /// Status and machine code, from one exhaustive match so a new variant forces a decision.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::BudgetExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "budget_exceeded"),
            Self::Audio(error) => match error {
                AudioError::TooLarge { .. } | AudioError::TooLong { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
                }
                AudioError::Unsupported { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
                AudioError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
                AudioError::InvalidUrl(_)
                | AudioError::Forbidden(_)
                | AudioError::Fetch(_)
                | AudioError::Timeout
                | AudioError::Missing(_)
                | AudioError::Damaged { .. }
                | AudioError::TooLongFor { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            },
            Self::Upstream(error) => match error {
                UpstreamError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
                UpstreamError::NotAdmitted { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                UpstreamError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
                UpstreamError::Unreachable { .. }
                | UpstreamError::RateLimited { .. }
                | UpstreamError::Server { .. }
                | UpstreamError::CircuitOpen { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
                UpstreamError::Rejected { .. }
                | UpstreamError::Auth { .. }
                | UpstreamError::InvalidResponse { .. }
                | UpstreamError::Blocked { .. } => (StatusCode::BAD_GATEWAY, "upstream_error"),
            },
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    /// Seconds for `Retry-After`, where the client should wait before trying again.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::BudgetExceeded { retry_after, .. } => Some(*retry_after),
            Self::Upstream(UpstreamError::CircuitOpen { retry_after, .. }) => Some(*retry_after),
            Self::Upstream(
                UpstreamError::RateLimited { retry_after, .. } | UpstreamError::Server { retry_after, .. },
            ) => *retry_after,
            Self::Overloaded | Self::Audio(AudioError::Overloaded) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// What the learner-facing client is told. Upstream details that help nobody outside (raw
    /// upstream bodies, our credentials' state) stay in the logs.
    fn public_message(&self) -> String {
        match self {
            Self::Upstream(error) => match error {
                UpstreamError::Timeout { upstream } => {
                    format!("{} did not answer in time", name(*upstream))
                }
                UpstreamError::Unreachable { upstream, .. }
                | UpstreamError::Server { upstream, .. }
                | UpstreamError::RateLimited { upstream, .. } => {
                    format!("{} is temporarily unavailable; try again shortly", name(*upstream))
                }
                UpstreamError::CircuitOpen { upstream, .. } => {
                    format!("{} is failing; requests are paused until it recovers", name(*upstream))
                }
                UpstreamError::Rejected { upstream, status, .. } => {
                    format!("{} rejected the request (HTTP {status})", name(*upstream))
                }
                UpstreamError::Auth { upstream, .. } => {
                    format!("{} refused the service's credentials", name(*upstream))
                }
                UpstreamError::InvalidResponse { upstream, .. } => {
                    format!("{} sent a response that could not be read", name(*upstream))
                }
                UpstreamError::Blocked { upstream, reason } => {
                    format!("{} declined to process this content ({reason})", name(*upstream))
                }
                UpstreamError::NotAdmitted { .. } => "Rate limit exceeded".to_string(),
                UpstreamError::Internal { .. } => Self::Internal.to_string(),
            },
            other => other.to_string(),
        }
    }
}

fn name(upstream: crate::upstream::Upstream) -> &'static str {
    match upstream {
        crate::upstream::Upstream::AzureSpeech => "Azure Speech",
        crate::upstream::Upstream::Gemini => "Gemini",
        crate::upstream::Upstream::OpenAiCompatible => "The fallback provider",
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorEnvelope {
            success: false,
            error: self.public_message(),
            code,
            request_id: request_id::current().unwrap_or_default(),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(wait) = self.retry_after() {
            // Integer seconds, at least 1: a 0 would invite an immediate retry storm.
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // Handlers and layers log with context; this marks the response for the access log.
        response.extensions_mut().insert(ErrorCode(code));
        // What the client is not told (the upstream's own words) is what on-call needs.
        if let Self::Upstream(error) = &self {
            response.extensions_mut().insert(ErrorCause(error.to_string()));
        }
        response
    }
}

/// The internal cause behind an upstream error response, for the access log only.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// The machine code of an error response, for the access log and metrics layers.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);
