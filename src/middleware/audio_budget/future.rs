use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;

use crate::audio::budget::Reservation;
use crate::error::AppError;

pin_project! {
    /// The request with its bytes reserved until its answer is ready, or the refusal.
    #[project = Projection]
    pub enum ResponseFuture<F, E> {
        Refused { _error: std::marker::PhantomData<E> },
        Admitted {
            #[pin]
            future: F,
            reservation: Option<Reservation>,
        },
    }
}

impl<F, E> ResponseFuture<F, E> {
    pub(super) fn admitted(future: F, reservation: Reservation) -> Self {
        Self::Admitted { future, reservation: Some(reservation) }
    }

    pub(super) fn refused() -> Self {
        Self::Refused { _error: std::marker::PhantomData }
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Refused { .. } => Poll::Ready(Ok(AppError::Overloaded.into_response())),
            Projection::Admitted { future, reservation } => {
                let result = std::task::ready!(future.poll(cx));
                // The recording is dropped with the handler: its bytes are free again.
                reservation.take();
                Poll::Ready(result)
            }
        }
    }
}
