//! Circuit breaker for one upstream: after repeated upstream failures, callers get an
//! immediate `CircuitOpen` (503 with `Retry-After`) instead of queueing behind a dead upstream,
//! and the upstream gets room to recover. See `breaker.rs` for the state machine.
//!
//! Place it outside the retry layer (`CircuitBreakerLayer` then `RetryLayer` in a
//! `ServiceBuilder`): a call then counts once, after its retries, and a hung upstream is
//! reported by the retry layer's deadline as a `Timeout` the breaker can count. Inside the
//! retry layer, an attempt cut short by the deadline would be dropped uncounted.

mod breaker;
mod future;
mod layer;
mod service;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreaker;
