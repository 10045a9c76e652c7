//! A retired model is loud. Google and the OpenAI-compatible servers answer 404 for a model
//! that no longer exists (or was never served); retries and the breaker ignore a 404 (the
//! upstream answered sanely), so without this layer a shut-down model shows only as a stream
//! of `rejected` errors or of quiet hand-overs to the next link.
//!
//! On a 404 it logs an ERROR naming the model and the variable to change, counts
//! `ai_model_not_found_total{operation, model}` (which `AnalysisModelUnavailable` alerts on) and
//! sets `service_health_status{service}` of this link to 0; the link's next answer sets it back.
//! It sits below the breaker so every 404 reaching the wire is seen, and nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::metrics::Metrics;
use crate::metrics::labels::Operation;
use crate::upstream::UpstreamError;

#[derive(Clone)]
pub struct ModelHealthLayer {
    shared: Arc<Shared>,
}

struct Shared {
    operation: Operation,
    model: Arc<str>,
    variable: &'static str,
    /// The `service` label of this link's health (its breaker's).
    service: Arc<str>,
    metrics: Metrics,
    /// Set by a 404, cleared by the next answer: the gauge is written on changes only, so the
    /// breaker's own writes are not fought on every call.
    missing: AtomicBool,
}

impl ModelHealthLayer {
    pub fn new(
        operation: Operation,
        model: Arc<str>,
        variable: &'static str,
        service: Arc<str>,
        metrics: Metrics,
    ) -> Self {
        let _ = metrics.ai_model_not_found_total.with_label_values(&[operation.as_str(), &model]);
        Self {
            shared: Arc::new(Shared { operation, model, variable, service, metrics, missing: AtomicBool::new(false) }),
        }
    }
}

impl<S> Layer<S> for ModelHealthLayer {
    type Service = ModelHealth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ModelHealth { inner, shared: self.shared.clone() }
    }
}

#[derive(Clone)]
pub struct ModelHealth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, Request> Service<Request> for ModelHealth<S>
where
    S: Service<Request, Error = UpstreamError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<S::Response, UpstreamError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let future = self.inner.call(request);
        let shared = self.shared.clone();
        Box::pin(async move {
            let result = future.await;
            match &result {
                Err(error @ UpstreamError::Rejected { status: 404, .. }) => shared.not_found(error),
                Ok(_) if shared.missing.swap(false, Ordering::Relaxed) => {
                    shared.metrics.service_health_status.with_label_values(&[&shared.service]).set(1);
                    tracing::info!(model = %shared.model, "the model answers again");
                }
                _ => {}
            }
            result
        })
    }
}

impl Shared {
    fn not_found(&self, error: &UpstreamError) {
        let operation = self.operation.as_str();
        self.metrics.ai_model_not_found_total.with_label_values(&[operation, &self.model]).inc();
        self.metrics.service_health_status.with_label_values(&[&self.service]).set(0);
        self.missing.store(true, Ordering::Relaxed);
        tracing::error!(
            operation,
            model = %self.model,
            variable = self.variable,
            cause = %error,
            "the model {} answers 404 (not found, or retired by its provider): set {} to a model it serves",
            self.model,
            self.variable
        );
    }
}

#[cfg(test)]
mod tests {
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::upstream::Upstream;

    #[tokio::test]
    async fn a_404_counts_and_marks_the_link_down_until_it_answers_again() {
        let metrics = Metrics::new();
        let layer = ModelHealthLayer::new(
            Operation::Analyze,
            "gemini-2.5-flash".into(),
            "GEMINI_MODEL",
            "gemini".into(),
            metrics.clone(),
        );
        let retired = layer.layer(service_fn(|_: ()| async {
            Err::<(), _>(UpstreamError::Rejected {
                upstream: Upstream::Gemini,
                status: 404,
                message: "NOT_FOUND".into(),
            })
        }));
        let _ = retired.oneshot(()).await;
        let scrape = metrics.render();
        assert!(
            scrape.contains(r#"ai_model_not_found_total{model="gemini-2.5-flash",operation="analyze"} 1"#),
            "{scrape}"
        );
        assert!(scrape.contains(r#"service_health_status{service="gemini"} 0"#), "{scrape}");
        let back = layer.layer(service_fn(|_: ()| async { Ok::<(), UpstreamError>(()) }));
        back.oneshot(()).await.expect("answers");
        assert!(metrics.render().contains(r#"service_health_status{service="gemini"} 1"#));
    }
}
