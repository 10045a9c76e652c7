use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::audio::budget::Reservation;

pin_project! {
    /// The request, with its reservation kept until its answer is ready.
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        reservation: Option<Reservation>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(future: F, reservation: Reservation) -> Self {
        Self { future, reservation: Some(reservation) }
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        // The handler has dropped the recording: this was the last handle unless decoding it
        // still runs for a client that went away, which then gives the bytes back itself.
        this.reservation.take();
        Poll::Ready(output)
    }
}
