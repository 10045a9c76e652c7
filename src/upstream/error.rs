//! The one error type of the upstream boundary (Azure Speech, Gemini), shared by the clients and
//! the resilience layers above them. Mapping to HTTP happens in `crate::error` only.

use std::time::Duration;

/// Which upstream an error or metric is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    AzureSpeech,
    Gemini,
}

impl Upstream {
    pub const ALL: [Self; 2] = [Self::AzureSpeech, Self::Gemini];

    /// The one spelling of it in every metric label (`upstream`, `service`, `provider`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AzureSpeech => "azure_speech",
            Self::Gemini => "gemini",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// The whole deadline (`UPSTREAM_TIMEOUT_SECONDS`, retries included) ran out.
    #[error("{upstream:?} did not answer within the deadline")]
    Timeout { upstream: Upstream },
    /// No HTTP answer at all: DNS, connect, reset before a response.
    #[error("{upstream:?} unreachable: {message}")]
    Unreachable { upstream: Upstream, message: String },
    /// 429 from the upstream. `retry_after` from `Retry-After` (Azure) or `RetryInfo` (Gemini);
    /// `per_day` when Gemini's `QuotaFailure` names a per-day quota: retrying is pointless.
    #[error("{upstream:?} rate limited us")]
    RateLimited { upstream: Upstream, retry_after: Option<Duration>, per_day: bool },
    /// 5xx, 408 (and Azure's in-body `RecognitionStatus: Error`): transient by nature.
    /// `retry_after` from `Retry-After` (or Gemini's `RetryInfo`), which an overloaded service
    /// sends with a 503 as it does with a 429.
    #[error("{upstream:?} failed with {status}: {message}")]
    Server { upstream: Upstream, status: u16, message: String, retry_after: Option<Duration> },
    /// A 4xx that the same request would get again (bad language, bad audio, wrong model...).
    #[error("{upstream:?} rejected the request with {status}: {message}")]
    Rejected { upstream: Upstream, status: u16, message: String },
    /// Our credentials are wrong or missing (Azure 401/403, Gemini 400 `API_KEY_INVALID`, 403).
    #[error("{upstream:?} refused our credentials: {message}")]
    Auth { upstream: Upstream, message: String },
    /// 2xx with a body we cannot read as the documented shape.
    #[error("{upstream:?} sent an unreadable response: {message}")]
    InvalidResponse { upstream: Upstream, message: String },
    /// Gemini declined the content (`promptFeedback.blockReason`, `finishReason` SAFETY,
    /// RECITATION, PROHIBITED_CONTENT...). Deterministic for the same input.
    #[error("{upstream:?} declined the content: {reason}")]
    Blocked { upstream: Upstream, reason: String },
    /// Our circuit breaker for this upstream is open: no call was made.
    #[error("{upstream:?} circuit open")]
    CircuitOpen { upstream: Upstream, retry_after: Duration },
    /// Our own rate limit refused the request while it started (see `rate_limit::gate`): no
    /// call was made. The rate-limit layer answers its 429 in place of whatever this becomes.
    #[error("{upstream:?} not called: the request was refused by the rate limit")]
    NotAdmitted { upstream: Upstream },
}

impl UpstreamError {
    pub fn upstream(&self) -> Upstream {
        match self {
            Self::Timeout { upstream }
            | Self::Unreachable { upstream, .. }
            | Self::RateLimited { upstream, .. }
            | Self::Server { upstream, .. }
            | Self::Rejected { upstream, .. }
            | Self::Auth { upstream, .. }
            | Self::InvalidResponse { upstream, .. }
            | Self::Blocked { upstream, .. }
            | Self::CircuitOpen { upstream, .. }
            | Self::NotAdmitted { upstream } => *upstream,
        }
    }

    /// Does this count against the upstream's health (circuit breaker)? The caller's own
    /// mistakes and content decisions do not: the upstream answered sanely.
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Unreachable { .. } | Self::RateLimited { .. } | Self::Server { .. } => true,
            Self::Rejected { .. }
            | Self::Auth { .. }
            | Self::InvalidResponse { .. }
            | Self::Blocked { .. }
            | Self::CircuitOpen { .. }
            | Self::NotAdmitted { .. } => false,
        }
    }

    /// May the same request be sent again? `Some(hint)` carries the upstream's own wait, if any.
    pub fn retry(&self) -> Option<Option<Duration>> {
        match self {
            Self::Unreachable { .. } => Some(None),
            Self::Server { retry_after, .. } => Some(*retry_after),
            Self::RateLimited { per_day: false, retry_after, .. } => Some(*retry_after),
            Self::RateLimited { per_day: true, .. }
            | Self::Timeout { .. }
            | Self::Rejected { .. }
            | Self::Auth { .. }
            | Self::InvalidResponse { .. }
            | Self::Blocked { .. }
            | Self::CircuitOpen { .. }
            | Self::NotAdmitted { .. } => None,
        }
    }

    /// Every value `kind()` can return, so metrics can show each series from the start.
    pub const KINDS: [&'static str; 9] = [
        "timeout",
        "unreachable",
        "rate_limited",
        "server_error",
        "rejected",
        "auth",
        "invalid_response",
        "blocked",
        "circuit_open",
    ];

    /// Short label for `ai_operation_errors_total{error_type}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Server { .. } => "server_error",
            Self::Rejected { .. } => "rejected",
            Self::Auth { .. } => "auth",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::Blocked { .. } => "blocked",
            Self::CircuitOpen { .. } => "circuit_open",
            // Made above the metrics layer (in single-flight), so never counted there.
            Self::NotAdmitted { .. } => "not_admitted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_for_the_metrics() {
        let upstream = Upstream::Gemini;
        let message = String::new();
        let all = [
            UpstreamError::Timeout { upstream },
            UpstreamError::Unreachable { upstream, message: message.clone() },
            UpstreamError::RateLimited { upstream, retry_after: None, per_day: false },
            UpstreamError::Server { upstream, status: 503, message: message.clone(), retry_after: None },
            UpstreamError::Rejected { upstream, status: 400, message: message.clone() },
            UpstreamError::Auth { upstream, message: message.clone() },
            UpstreamError::InvalidResponse { upstream, message: message.clone() },
            UpstreamError::Blocked { upstream, reason: message },
            UpstreamError::CircuitOpen { upstream, retry_after: Duration::from_secs(1) },
        ];
        let kinds: Vec<&str> = all.iter().map(UpstreamError::kind).collect();
        assert_eq!(kinds, UpstreamError::KINDS);
    }
}
