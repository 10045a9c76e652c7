//! Retries of transient upstream failures, all inside one deadline.
//!
//! Flow of one call:
//! 1. The whole call (every attempt and every wait) runs under `RetryPolicy::deadline`
//!    (`UPSTREAM_TIMEOUT_SECONDS`); when it runs out the caller gets `UpstreamError::Timeout`,
//!    so a hung upstream answers at the deadline, not never.
//! 2. Only what `UpstreamError::retry()` allows is sent again (unreachable, 5xx, a 429 that is
//!    not a per-day quota); credentials, rejected requests and content decisions never are.
//! 3. The wait is full-jitter exponential backoff, or the upstream's own hint (`Retry-After`,
//!    Gemini `RetryInfo`, on a 429 or on a 5xx/408 alike) when that is longer. A wait that would not leave time for another
//!    attempt before the deadline is not taken: the last error is returned at once.
//! 4. Every retry spends from a `RetryBudget` shared by all callers of the upstream, so during
//!    an outage retries add a bounded fraction of load instead of multiplying it.

mod budget;
mod layer;
mod policy;
mod service;

pub use budget::RetryBudget;
pub use layer::RetryLayer;
pub use policy::{Jitter, RetryPolicy};
pub use service::{ResponseFuture, Retry};
