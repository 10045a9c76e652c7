//! Azure Speech's failures as the one upstream error type: transport errors, and a status
//! class decided once per status (the body only supplies the message).

use std::time::SystemTime;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::UPSTREAM;
use super::wire::ErrorBody;
use crate::upstream::{UpstreamError, retry_after};

/// Error bodies end up in logs and error messages; an HTML error page must not flood them.
const MAX_ERROR_MESSAGE_CHARS: usize = 300;

/// For `map_err` and the capped reader.
pub(super) fn transport_error(error: reqwest::Error) -> UpstreamError {
    UpstreamError::transport(UPSTREAM, error)
}

/// One decision per status class; the body only supplies the message.
pub(super) fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> UpstreamError {
    let message = error_message(status, body);
    let retry_after = retry_after::from_headers(headers, now);
    match status.as_u16() {
        401 | 403 => UpstreamError::Auth { upstream: UPSTREAM, message },
        429 => UpstreamError::RateLimited { upstream: UPSTREAM, retry_after, per_day: false },
        408 | 500..=599 => UpstreamError::Server { upstream: UPSTREAM, status: status.as_u16(), message, retry_after },
        400..=499 => UpstreamError::Rejected { upstream: UPSTREAM, status: status.as_u16(), message },
        // 1xx/3xx (redirects are not followed): nothing we can use, and not the request's fault.
        _ => UpstreamError::InvalidResponse { upstream: UPSTREAM, message: format!("unexpected status {status}") },
    }
}

pub(super) fn error_message(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<ErrorBody>(body).ok().and_then(ErrorBody::into_message);
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_string();
    }
    match text.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_bodies_are_cut_at_a_character_boundary() {
        let body = "é".repeat(MAX_ERROR_MESSAGE_CHARS * 2);
        let message = error_message(StatusCode::BAD_GATEWAY, body.as_bytes());
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS + 3);
    }
}
