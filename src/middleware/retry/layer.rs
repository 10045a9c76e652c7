use tower::Layer;

use super::budget::RetryBudget;
use super::policy::{Jitter, RetryPolicy};
use super::service::Retry;
use crate::metrics::Metrics;
use crate::upstream::Upstream;

#[derive(Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
    budget: RetryBudget,
    upstream: Upstream,
    metrics: Metrics,
    jitter: Jitter,
}

impl RetryLayer {
    /// Full jitter by default; see `with_jitter`.
    pub fn new(policy: RetryPolicy, budget: RetryBudget, upstream: Upstream, metrics: Metrics) -> Self {
        Self { policy, budget, upstream, metrics, jitter: Jitter::full() }
    }

    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(
            inner,
            self.policy.clone(),
            self.budget.clone(),
            self.upstream,
            self.metrics.clone(),
            self.jitter.clone(),
        )
    }
}
