use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use tower::Service;

use super::future::ResponseFuture;
use crate::audio::budget::AudioBudget;

#[derive(Clone)]
pub struct AudioBudgetService<S> {
    inner: S,
    /// A shared handle: axum clones this service per request.
    budget: AudioBudget,
}

impl<S> AudioBudgetService<S> {
    pub(super) fn new(inner: S, budget: AudioBudget) -> Self {
        Self { inner, budget }
    }
}

impl<S> Service<Request> for AudioBudgetService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // Nothing is reserved yet: the body reader and the decoder grow it as bytes are held.
        let reservation = self.budget.reservation();
        request.extensions_mut().insert(reservation.clone());
        ResponseFuture::new(self.inner.call(request), reservation)
    }
}
