use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::Service;

use super::key::rate_limit_key;
use super::limiter::RateLimiter;
use crate::error::AppError;

pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> RateLimit<S> {
    pub fn new(inner: S, limiter: RateLimiter) -> Self {
        Self { inner, limiter }
    }
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let key = rate_limit_key(request.headers(), request.extensions(), self.limiter.api_keys_enabled());
        // The instance polled ready goes with this call; the clone waits for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let decision = limiter.check(&key).await;
            if !decision.allowed {
                tracing::debug!(limiter = decision.limiter.as_str(), "request refused by the rate limit");
                let mut refusal = AppError::RateLimited { retry_after: decision.retry_after }.into_response();
                decision.write_headers(refusal.headers_mut());
                return Ok(refusal);
            }
            let mut response = inner.call(request).await?;
            decision.write_headers(response.headers_mut());
            Ok(response)
        })
    }
}
