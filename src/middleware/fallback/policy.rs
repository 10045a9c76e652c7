//! Which failures move a call to the next link of a chain, at once.
//!
//! The rule is "would the next link plausibly answer?": an overloaded, rate-limited, slow,
//! unreachable, missing (404) or breaker-guarded link says nothing about the next one, so the
//! next one is asked. A request the upstream refused as malformed (400, 413, 422...) would be
//! refused everywhere: that is ours to fix, it is answered as it is and counted in
//! `ai_operation_errors_total{error_type="rejected"}`. A content decision (`Blocked`) is the
//! answer for this text; our own refusals (`NotAdmitted`) and panics are not the upstream's.

use crate::upstream::UpstreamError;

/// Why a call left a link; the `reason` label of `ai_fallbacks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandOver {
    RateLimited,
    ServerError,
    Timeout,
    Unreachable,
    NotFound,
    CircuitOpen,
    /// Our credentials for that link were refused: the next link has its own (or, for Gemini
    /// models sharing a key, fails the same way at no cost).
    Auth,
    /// A 2xx whose body could not be read as the documented shape, or a reply in which the
    /// parser found no analysis: another model may well answer properly.
    Unreadable,
}

impl HandOver {
    pub const ALL: [Self; 8] = [
        Self::RateLimited,
        Self::ServerError,
        Self::Timeout,
        Self::Unreachable,
        Self::NotFound,
        Self::CircuitOpen,
        Self::Auth,
        Self::Unreadable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::NotFound => "not_found",
            Self::CircuitOpen => "circuit_open",
            Self::Auth => "auth",
            Self::Unreadable => "unreadable",
        }
    }
}

/// `Some(reason)` when `error` moves the call on; exhaustive, so a new error kind forces a
/// decision here.
pub fn hand_over(error: &UpstreamError) -> Option<HandOver> {
    match error {
        // A `RetryInfo` delay is that link's business: the learner does not wait for it.
        UpstreamError::RateLimited { .. } => Some(HandOver::RateLimited),
        UpstreamError::Server { .. } => Some(HandOver::ServerError),
        UpstreamError::Timeout { .. } => Some(HandOver::Timeout),
        UpstreamError::Unreachable { .. } => Some(HandOver::Unreachable),
        UpstreamError::Rejected { status: 404, .. } => Some(HandOver::NotFound),
        UpstreamError::CircuitOpen { .. } => Some(HandOver::CircuitOpen),
        UpstreamError::Auth { .. } => Some(HandOver::Auth),
        UpstreamError::InvalidResponse { .. } => Some(HandOver::Unreadable),
        UpstreamError::Rejected { .. }
        | UpstreamError::Blocked { .. }
        | UpstreamError::NotAdmitted { .. }
        | UpstreamError::Internal { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::upstream::Upstream;

    const G: Upstream = Upstream::Gemini;

    #[test]
    fn outages_quota_slowness_and_retirement_hand_over() {
        for (error, reason) in [
            (
                UpstreamError::RateLimited { upstream: G, retry_after: Some(Duration::from_secs(58)), per_day: false },
                HandOver::RateLimited,
            ),
            (UpstreamError::RateLimited { upstream: G, retry_after: None, per_day: true }, HandOver::RateLimited),
            (
                UpstreamError::Server { upstream: G, status: 503, message: String::new(), retry_after: None },
                HandOver::ServerError,
            ),
            (UpstreamError::Timeout { upstream: G }, HandOver::Timeout),
            (UpstreamError::Unreachable { upstream: G, message: "connection refused".into() }, HandOver::Unreachable),
            (UpstreamError::Rejected { upstream: G, status: 404, message: "NOT_FOUND".into() }, HandOver::NotFound),
            (UpstreamError::CircuitOpen { upstream: G, retry_after: Duration::from_secs(1) }, HandOver::CircuitOpen),
        ] {
            assert_eq!(hand_over(&error), Some(reason), "{error:?}");
        }
    }

    #[test]
    fn a_bad_request_of_ours_a_block_and_our_own_refusals_do_not() {
        for error in [
            UpstreamError::Rejected { upstream: G, status: 400, message: "INVALID_ARGUMENT".into() },
            UpstreamError::Blocked { upstream: G, reason: "SAFETY".into() },
            UpstreamError::NotAdmitted { upstream: G },
            UpstreamError::Internal { upstream: G, message: "panic".into() },
        ] {
            assert_eq!(hand_over(&error), None, "{error:?}");
        }
    }

    #[test]
    fn reasons_have_distinct_labels() {
        let labels: std::collections::HashSet<_> = HandOver::ALL.iter().map(|reason| reason.as_str()).collect();
        assert_eq!(labels.len(), HandOver::ALL.len());
    }
}
