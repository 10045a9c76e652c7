use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use tower::Service;

use super::future::ResponseFuture;
use crate::audio::budget::{AudioBudget, FRAMING, OUTPUT};

#[derive(Clone)]
pub struct AudioBudgetService<S> {
    inner: S,
    budget: AudioBudget,
    audio_max_bytes: usize,
}

impl<S> AudioBudgetService<S> {
    pub(super) fn new(inner: S, budget: AudioBudget, audio_max_bytes: usize) -> Self {
        Self { inner, budget, audio_max_bytes }
    }

    /// What this request can come to hold. An upload that declares its length brings that
    /// much; one that does not (chunked) may bring the most an upload may be; a JSON body names
    /// an `audio_url`, whose download may be as large. Either way, plus the normalised output.
    fn bytes_for(&self, request: &Request) -> usize {
        let headers = request.headers();
        let multipart = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("multipart/"));
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let body = match (multipart, declared) {
            (true, Some(length)) => length.min(self.audio_max_bytes.saturating_add(FRAMING)),
            (true, None) => self.audio_max_bytes.saturating_add(FRAMING),
            (false, _) => self.audio_max_bytes,
        };
        body.saturating_add(OUTPUT)
    }
}

impl<S> Service<Request> for AudioBudgetService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.budget.try_reserve(self.bytes_for(&request)) {
            Some(reservation) => ResponseFuture::admitted(self.inner.call(request), reservation),
            None => ResponseFuture::refused(),
        }
    }
}
