//! `ai_operation_duration_seconds` and `ai_operation_errors_total` around one logical upstream
//! operation (retries included), placed above the breaker so fast-failed calls are counted as
//! errors (`circuit_open`) without polluting the latency histogram with near-zero samples.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::metrics::Metrics;
use crate::metrics::labels::Operation;
use crate::upstream::UpstreamError;

#[derive(Clone)]
pub struct AiMetricsLayer {
    operation: &'static str,
    provider: &'static str,
    metrics: Metrics,
}

impl AiMetricsLayer {
    /// `provider` is the upstream serving `operation`, spelled as its other labels are.
    pub fn new(operation: Operation, metrics: Metrics) -> Self {
        Self::for_provider(operation, operation.upstream(), metrics)
    }

    /// For a link of a fallback chain, whose provider may not be the operation's first.
    pub fn for_provider(operation: Operation, provider: crate::upstream::Upstream, metrics: Metrics) -> Self {
        let _ = metrics.ai_operation_duration_seconds.with_label_values(&[operation.as_str(), provider.as_str()]);
        Self { operation: operation.as_str(), provider: provider.as_str(), metrics }
    }
}

impl<S> Layer<S> for AiMetricsLayer {
    type Service = AiMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AiMetrics { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct AiMetrics<S> {
    inner: S,
    layer: AiMetricsLayer,
}

impl<S, Request> Service<Request> for AiMetrics<S>
where
    S: Service<Request, Error = UpstreamError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = UpstreamError;
    // Boxed: one allocation per upstream call, which costs nothing next to a network round trip.
    type Future = BoxFuture<'static, Result<S::Response, UpstreamError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let future = self.inner.call(request);
        let AiMetricsLayer { operation, provider, metrics } = self.layer.clone();
        Box::pin(async move {
            let result = future.await;
            match &result {
                Err(error @ UpstreamError::CircuitOpen { .. }) => {
                    metrics.ai_operation_errors_total.with_label_values(&[operation, error.kind()]).inc();
                }
                Err(error) => {
                    metrics.ai_operation_errors_total.with_label_values(&[operation, error.kind()]).inc();
                    metrics
                        .ai_operation_duration_seconds
                        .with_label_values(&[operation, provider])
                        .observe(started.elapsed().as_secs_f64());
                }
                Ok(_) => {
                    metrics
                        .ai_operation_duration_seconds
                        .with_label_values(&[operation, provider])
                        .observe(started.elapsed().as_secs_f64());
                }
            }
            result
        })
    }
}
