use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::Service;

use super::admission::Admission;
use super::decide::decide;
use super::key::{Scope, UserKey};
use super::limiter::RateLimiter;
use crate::error::AppError;

pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiters: Arc<[RateLimiter]>,
}

impl<S> RateLimit<S> {
    pub fn new(inner: S, limiters: Arc<[RateLimiter]>) -> Self {
        Self { inner, limiters }
    }
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let checks: Vec<(RateLimiter, String)> = self
            .limiters
            .iter()
            .map(|limiter| {
                let key = limiter.scope().key(request.headers(), request.extensions(), limiter.api_keys_enabled());
                (limiter.clone(), key)
            })
            .collect();
        if let Some((_, key)) = checks.iter().find(|(limiter, _)| limiter.scope() == Scope::User) {
            request.extensions_mut().insert(UserKey(key.clone()));
        }
        // The instance polled ready goes with this call; the clone waits for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            // Decided from memory unless a limiter must wait for its lease request: then the
            // request goes on while it waits.
            let mut deciding = Box::pin(async move { decide(&checks).await });
            let admission = match futures::poll!(deciding.as_mut()) {
                Poll::Ready(decisions) => Admission::decided(decisions),
                Poll::Pending => Admission::new(deciding),
            };
            let decided = admission.clone();
            // The request starts now, its admission with it: what it does before the decision is
            // in (reading its body, the cache's Redis lookup) overlaps the limiter's round trip,
            // and what costs money waits for the admission (see `admission.rs`).
            request.extensions_mut().insert(admission);
            let mut work = std::pin::pin!(inner.call(request));
            let (decisions, finished) = tokio::select! {
                biased;
                decisions = decided.decisions() => (decisions, None),
                finished = &mut work => (decided.decisions().await, Some(finished)),
            };
            // The headers describe the tightest limit: the refusal's, else the first (per-user).
            let refusal =
                decisions.iter().filter(|decision| !decision.allowed).max_by_key(|decision| decision.retry_after);
            if let Some(decision) = refusal {
                tracing::debug!(limiter = decision.limiter.as_str(), "request refused by the rate limit");
                let mut refusal = AppError::RateLimited { retry_after: decision.retry_after }.into_response();
                decision.write_headers(refusal.headers_mut());
                return Ok(refusal);
            }
            let mut response = match finished {
                Some(finished) => finished?,
                None => work.await?,
            };
            if let Some(decision) = decisions.first() {
                decision.write_headers(response.headers_mut());
            }
            Ok(response)
        })
    }
}
