use tower::Layer;

use super::limiter::RateLimiter;
use super::service::RateLimit;

/// Per-user rate limit over an axum service. The limiter's state lives in its shared handle,
/// so the per-connection clones axum makes all count against the same buckets.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.limiter.clone())
    }
}
