//! Per-user rate limit on `/api/*`: `RATE_LIMIT_PER_MINUTE` requests per user, and above it a
//! ceiling per API key (per client address without one), `RATE_LIMIT_PER_KEY_PER_MINUTE`, that
//! user ids the client invents cannot dodge. Both are held across instances through Redis when
//! there is one, and by each instance alone when there is not or when Redis fails (a Redis
//! outage never turns into refused or failed requests).
//!
//! Who a request counts against is in `key.rs`; the two limiters (one GCRA, in Redis or in
//! memory) in `limiter.rs`; how an instance spends leases and credit of the Redis one from
//! memory, charged off the requests' path, and the bound across instances that keeps, in
//! `lease.rs`. Refusals are the contract's 429 envelope with `Retry-After`; every answer carries
//! the IETF draft `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers so
//! well-behaved clients can pace themselves. The decision is made as the request starts
//! (`admission.rs`), and a request one limit refuses spends none of the others (`decide.rs`):
//! one user's retry loop cannot use up the key's ceiling for the key's other users.

mod admission;
mod decide;
mod key;
mod layer;
mod lease;
#[cfg(test)]
mod lease_sim;
mod limiter;
mod service;

pub use admission::{Admission, Admitted};
pub use key::{Scope, UserKey, rate_limit_key};
pub use layer::RateLimitLayer;
pub use limiter::{DEFAULT_LEASE, Decision, Limiter, RateLimitConfig, RateLimiter};
pub use service::RateLimit;
