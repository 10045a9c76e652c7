use std::sync::Arc;

use tower::Layer;

use super::limiter::RateLimiter;
use super::service::RateLimit;

/// Rate limits over an axum service: the per-user one, and the ceiling per API key above it.
/// The limiters' state lives in their shared handles, so the per-connection clones axum makes
/// all count against the same buckets.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiters: Arc<[RateLimiter]>,
}

impl RateLimitLayer {
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiters: Arc::new([limiter]) }
    }

    /// Every limiter in `limiters` must allow a request.
    pub fn all(limiters: Vec<RateLimiter>) -> Self {
        Self { limiters: limiters.into() }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.limiters.clone())
    }
}
