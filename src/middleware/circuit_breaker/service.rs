use std::task::{Context, Poll};

use tower::Service;

use super::breaker::Breaker;
use super::future::ResponseFuture;
use crate::upstream::UpstreamError;

#[derive(Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    breaker: Breaker,
}

impl<S> CircuitBreaker<S> {
    pub fn new(inner: S, breaker: Breaker) -> Self {
        Self { inner, breaker }
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<S, Request> Service<Request> for CircuitBreaker<S>
where
    S: Service<Request, Error = UpstreamError>,
{
    type Response = S::Response;
    type Error = UpstreamError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => ResponseFuture::called(self.inner.call(request), permit),
            Err(refused) => ResponseFuture::refused(refused),
        }
    }
}
