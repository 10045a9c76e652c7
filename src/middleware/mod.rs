//! Tower layers: HTTP-level (request id, auth, rate limit, access log/metrics) and the
//! domain-level layers stacked on every upstream call.

pub mod ai_metrics;
pub mod audio_budget;
pub mod auth;
pub mod body_deadline;

pub mod cached_flight;
pub mod circuit_breaker;
pub mod detach;
pub mod fallback;
pub mod http_metrics;
pub mod model_health;
pub mod rate_limit;
pub mod recording_digest;
pub mod request_id;
pub mod retry;
