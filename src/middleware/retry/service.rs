use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::budget::RetryBudget;
use super::policy::{Jitter, RetryPolicy};
use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamError};

pub type ResponseFuture<T> = Pin<Box<dyn Future<Output = Result<T, UpstreamError>> + Send>>;

#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

struct Shared {
    policy: RetryPolicy,
    budget: RetryBudget,
    upstream: Upstream,
    metrics: Metrics,
    jitter: Jitter,
}

impl<S> Retry<S> {
    pub fn new(
        inner: S,
        policy: RetryPolicy,
        budget: RetryBudget,
        upstream: Upstream,
        metrics: Metrics,
        jitter: Jitter,
    ) -> Self {
        Self { inner, shared: Arc::new(Shared { policy, budget, upstream, metrics, jitter }) }
    }
}

impl<S, Request> Service<Request> for Retry<S>
where
    S: Service<Request, Error = UpstreamError> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
    Request: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = UpstreamError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The instance polled ready goes with this call; the clone waits for the next one.
        let fresh = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, fresh);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let started = Instant::now();
            let upstream = shared.upstream;
            match tokio::time::timeout(shared.policy.deadline, attempts(service, request, &shared, started)).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        upstream = upstream.as_str(),
                        deadline_seconds = shared.policy.deadline.as_secs_f64(),
                        "upstream call ran out of its deadline"
                    );
                    Err(UpstreamError::Timeout { upstream })
                }
            }
        })
    }
}

async fn attempts<S, Request>(
    mut service: S,
    request: Request,
    shared: &Shared,
    started: Instant,
) -> Result<S::Response, UpstreamError>
where
    S: Service<Request, Error = UpstreamError>,
    Request: Clone,
{
    let policy = &shared.policy;
    let max_attempts = policy.max_attempts.max(1);
    shared.budget.deposit();
    let mut attempt = 1;
    loop {
        let error = match service.ready().await?.call(request.clone()).await {
            Ok(response) => return Ok(response),
            Err(error) => error,
        };
        let Some(hint) = error.retry() else {
            return Err(error);
        };
        if attempt >= max_attempts {
            return Err(error);
        }
        let backoff = shared.jitter.apply(policy.backoff(attempt));
        let wait = hint.map_or(backoff, |hint| hint.max(backoff));
        let remaining = policy.deadline.saturating_sub(started.elapsed());
        if wait >= remaining {
            tracing::info!(
                upstream = shared.upstream.as_str(),
                reason = error.kind(),
                wait_ms = wait.as_millis() as u64,
                remaining_ms = remaining.as_millis() as u64,
                "not retrying: the wait would outlast the deadline"
            );
            return Err(error);
        }
        if !shared.budget.withdraw() {
            tracing::info!(
                upstream = shared.upstream.as_str(),
                reason = error.kind(),
                "not retrying: the retry budget is spent"
            );
            return Err(error);
        }
        shared.metrics.upstream_retries_total.with_label_values(&[shared.upstream.as_str(), error.kind()]).inc();
        tracing::debug!(
            upstream = shared.upstream.as_str(),
            reason = error.kind(),
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retrying upstream call"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}
