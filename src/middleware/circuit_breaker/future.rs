use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::breaker::Permit;
use crate::upstream::UpstreamError;

pin_project! {
    /// The inner call with its admission, or the breaker's refusal.
    #[project = Projection]
    pub enum ResponseFuture<F> {
        Refused { error: Option<UpstreamError> },
        Called {
            #[pin]
            future: F,
            // Dropped with the future when the caller gives up: a probe slot is freed then.
            permit: Option<Permit>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn called(future: F, permit: Permit) -> Self {
        Self::Called { future, permit: Some(permit) }
    }

    pub(crate) fn refused(error: UpstreamError) -> Self {
        Self::Refused { error: Some(error) }
    }
}

impl<F, T> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, UpstreamError>>,
{
    type Output = Result<T, UpstreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projection::Refused { error } => {
                Poll::Ready(Err(error.take().expect("circuit breaker future polled after completion")))
            }
            Projection::Called { future, permit } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.settle(&result);
                }
                Poll::Ready(result)
            }
        }
    }
}
