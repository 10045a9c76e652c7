//! Runs each upstream call on its own task, so it lives to its deadline even when every client
//! waiting for it has gone away.
//!
//! Without this, a client that gives up before `UPSTREAM_TIMEOUT_SECONDS` (mobile apps often
//! wait less) cancels the call: a hung upstream then never produces the timeout that would open
//! its breaker, and a slow answer that did arrive is never cached for the client's retry. The
//! task is bounded by the retry layer's deadline below it, so it always ends; at shutdown the
//! runtime drops whatever is left.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::upstream::{Upstream, UpstreamError};

#[derive(Clone, Copy)]
pub struct DetachLayer {
    upstream: Upstream,
}

impl DetachLayer {
    pub fn new(upstream: Upstream) -> Self {
        Self { upstream }
    }
}

impl<S> Layer<S> for DetachLayer {
    type Service = Detach<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Detach { inner, upstream: self.upstream }
    }
}

#[derive(Clone)]
pub struct Detach<S> {
    inner: S,
    upstream: Upstream,
}

impl<S, Request> Service<Request> for Detach<S>
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
        let task = tokio::spawn(self.inner.call(request));
        let upstream = self.upstream;
        // Dropping this future drops the JoinHandle, which detaches the task without aborting it.
        Box::pin(async move {
            match task.await {
                Ok(result) => result,
                // Only a panic below (a bug) gets here; answer like an unreadable upstream.
                Err(error) => Err(UpstreamError::InvalidResponse {
                    upstream,
                    message: format!("the upstream call failed internally: {error}"),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tower::{ServiceExt, service_fn};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_call_finishes_after_its_caller_gave_up() {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let service = DetachLayer::new(Upstream::Gemini).layer(service_fn(move |_: ()| {
            let flag = flag.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                flag.store(true, Ordering::SeqCst);
                Ok::<_, UpstreamError>(())
            }
        }));
        let caller = tokio::time::timeout(Duration::from_secs(1), service.oneshot(())).await;
        assert!(caller.is_err(), "the caller gave up first");
        assert!(!finished.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(finished.load(Ordering::SeqCst), "the upstream call ran to its end regardless");
    }
}
