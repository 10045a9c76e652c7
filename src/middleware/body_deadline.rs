//! A request body must be complete within `REQUEST_BODY_DEADLINE_SECONDS` of the request's
//! arrival, whatever its pace.
//!
//! `REQUEST_BODY_TIMEOUT_SECONDS` bounds each pause; a client sending one byte every 14 s never
//! pauses that long, and held a request (and a `MAX_IN_FLIGHT` slot) for days: 50 such drips
//! made an instance with `MAX_IN_FLIGHT=50` answer 503 to everyone. The deadline is armed when
//! the request arrives, so the body's reader gets [`BodyDeadlineElapsed`] once it runs out, and
//! the handler answers 408 in the envelope.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;

use tokio::time::{Instant, Sleep};

/// The error a body gives once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not complete within its deadline")]
pub struct BodyDeadlineElapsed;

pin_project! {
    pub struct DeadlineBody<B> {
        #[pin]
        inner: B,
        #[pin]
        deadline: Sleep,
    }
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, within: Duration) -> Self {
        Self { inner, deadline: tokio::time::sleep_until(Instant::now() + within) }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyDeadlineElapsed)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
