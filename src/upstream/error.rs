//! The one error type of the upstream boundary (Azure Speech, Gemini), shared by the clients and
//! the resilience layers above them. Mapping to HTTP happens in `crate::error` only.

use std::time::Duration;

/// Which upstream an error or metric is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    AzureSpeech,
    Gemini,
    /// Any server of OpenAI's API (OpenAI, Azure OpenAI v1, vLLM, Ollama, llama.cpp, LiteLLM):
    /// the last link of the analysis chain and the transcription fallback.
    OpenAiCompatible,
}

impl Upstream {
    pub const ALL: [Self; 3] = [Self::AzureSpeech, Self::Gemini, Self::OpenAiCompatible];

    /// The one spelling of it in every metric label (`upstream`, `service`, `provider`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AzureSpeech => "azure_speech",
            Self::Gemini => "gemini",
            Self::OpenAiCompatible => "openai_compatible",
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
    /// Our own rate limit refused the request while it started (see `rate_limit::admission`): no
    /// call was made. The rate-limit layer answers its 429 in place of whatever this becomes.
    #[error("{upstream:?} not called: the request was refused by the rate limit")]
    NotAdmitted { upstream: Upstream },
    /// Our own code panicked while serving the call (a parser bug, say): a 500, never charged
    /// to the upstream's breaker. `message` is the panic's, for the log.
    #[error("internal error while calling {upstream:?}: {message}")]
    Internal { upstream: Upstream, message: String },
}

impl UpstreamError {
    /// A failed exchange with `upstream` before any status came back, one reading for every
    /// client. A connect timeout is an unreachable host (worth another try or the next link),
    /// not the call's deadline; reqwest's top-level message ("error sending request") hides the
    /// cause worth logging, so the whole chain is kept, without the URL (it may carry a key).
    pub fn transport(upstream: Upstream, error: reqwest::Error) -> Self {
        if error.is_timeout() && !error.is_connect() {
            return Self::Timeout { upstream };
        }
        let error = error.without_url();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Unreachable { upstream, message }
    }

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
            | Self::NotAdmitted { upstream }
            | Self::Internal { upstream, .. } => *upstream,
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
            | Self::NotAdmitted { .. }
            | Self::Internal { .. } => false,
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
            | Self::NotAdmitted { .. }
            | Self::Internal { .. } => None,
        }
    }

    /// Short label for `ai_operation_errors_total{error_type}` and `upstream_retries_total{reason}`.
    pub fn kind(&self) -> &'static str {
        self.error_kind().as_str()
    }

    /// Exhaustive, like every match on this type: a new variant forces a choice of kind here,
    /// and a new kind is in [`ErrorKind::ALL`] (and so in the metrics' series) by construction.
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Unreachable { .. } => ErrorKind::Unreachable,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Server { .. } => ErrorKind::Server,
            Self::Rejected { .. } => ErrorKind::Rejected,
            Self::Auth { .. } => ErrorKind::Auth,
            Self::InvalidResponse { .. } => ErrorKind::InvalidResponse,
            Self::Blocked { .. } => ErrorKind::Blocked,
            Self::CircuitOpen { .. } => ErrorKind::CircuitOpen,
            Self::NotAdmitted { .. } => ErrorKind::NotAdmitted,
            Self::Internal { .. } => ErrorKind::Internal,
        }
    }
}

/// Declares [`ErrorKind`] and its `ALL` from one list, so the list cannot lack a variant.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $variant:ident => $label:literal,)*) => {
        /// What kind of failure an [`UpstreamError`] is, as metrics label it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }
    };
}

error_kinds! {
    Timeout => "timeout",
    Unreachable => "unreachable",
    RateLimited => "rate_limited",
    Server => "server_error",
    Rejected => "rejected",
    Auth => "auth",
    InvalidResponse => "invalid_response",
    Blocked => "blocked",
    CircuitOpen => "circuit_open",
    /// Made above the metrics layer (in single-flight), so never counted in `ai_operation_*`.
    NotAdmitted => "not_admitted",
    /// Our own code panicked while serving the call (a bug, never the upstream's doing).
    Internal => "internal",
}

impl ErrorKind {
    /// Does `ai_operation_errors_total` ever count this kind? Its series are created at zero
    /// for exactly these.
    pub fn reaches_ai_metrics(self) -> bool {
        match self {
            Self::NotAdmitted => false,
            Self::Timeout
            | Self::Unreachable
            | Self::RateLimited
            | Self::Server
            | Self::Rejected
            | Self::Auth
            | Self::InvalidResponse
            | Self::Blocked
            | Self::CircuitOpen
            | Self::Internal => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_a_label_of_its_own() {
        let labels: std::collections::HashSet<&str> = ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(labels.len(), ErrorKind::ALL.len());
        // Two kinds added since the hand-kept list was written, which it lacked.
        assert!(labels.contains("not_admitted") && labels.contains("internal"), "{labels:?}");
    }

    #[test]
    fn every_kind_the_ai_metrics_count_has_its_series_from_the_first_scrape() {
        let metrics = crate::metrics::Metrics::new();
        metrics.initialise_series();
        let scrape = metrics.render();
        let counted: Vec<ErrorKind> = ErrorKind::ALL.iter().copied().filter(|kind| kind.reaches_ai_metrics()).collect();
        assert!(counted.contains(&ErrorKind::Internal) && !counted.contains(&ErrorKind::NotAdmitted));
        for kind in counted {
            for operation in ["transcribe", "pronunciation", "analyze"] {
                let series = format!(
                    "ai_operation_errors_total{{error_type=\"{}\",operation=\"{operation}\"}} 0",
                    kind.as_str()
                );
                assert!(scrape.contains(&series), "{series} missing from:\n{scrape}");
            }
        }
    }
}
