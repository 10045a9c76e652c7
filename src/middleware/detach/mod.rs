//! Runs each upstream call on its own task, so it lives to its deadline even when every client
//! waiting for it has gone away.
//!
//! Without this, a client that gives up before `UPSTREAM_TIMEOUT_SECONDS` (mobile apps often
//! wait less) cancels the call: a hung upstream then never produces the timeout that would open
//! its breaker, and a slow answer that did arrive is never cached for the client's retry. The
//! task is bounded by the retry layer's deadline below it, so it always ends.
//!
//! The tasks are not loose: [`Detached`] tracks them (drained at shutdown within the grace
//! period, counted in `upstream_calls_detached`), and a call whose caller has gone takes a
//! `MAX_IN_FLIGHT` slot of its own, so clients that give up and retry cannot pile up work past
//! the bound. A panic in our code below (a parser bug) is ours: a 500 `internal_error`, logged
//! at ERROR and counted as `ai_operation_errors_total{error_type="internal"}`, never the
//! upstream's 502 and never charged to its breaker.

mod tracker;

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tower::{Layer, Service};

pub use self::tracker::Detached;
use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamError};

#[derive(Clone)]
pub struct DetachLayer {
    upstream: Upstream,
    /// `ai_operation_errors_total{operation}` for a panic, as the AI metrics layer below names it.
    operation: &'static str,
    detached: Detached,
    metrics: Metrics,
}

impl DetachLayer {
    pub fn new(upstream: Upstream, operation: &'static str, detached: Detached, metrics: Metrics) -> Self {
        Self { upstream, operation, detached, metrics }
    }
}

impl<S> Layer<S> for DetachLayer {
    type Service = Detach<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Detach { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Detach<S> {
    inner: S,
    layer: DetachLayer,
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
        self.layer.run(self.inner.call(request))
    }
}

impl DetachLayer {
    /// Run `call` on its own tracked task; the returned future only waits for it.
    pub fn run<F, T>(&self, call: F) -> BoxFuture<'static, Result<T, UpstreamError>>
    where
        F: Future<Output = Result<T, UpstreamError>> + Send + 'static,
        T: Send + 'static,
    {
        let DetachLayer { upstream, operation, detached, metrics } = self.clone();
        let call = AssertUnwindSafe(call).catch_unwind().map(move |outcome| {
            outcome.unwrap_or_else(|panic| {
                let message = panic_message(&*panic);
                // A bug of ours, whoever is still waiting: logged and counted in the task.
                tracing::error!(upstream = upstream.as_str(), operation, panic = %message, "upstream call panicked");
                metrics
                    .ai_operation_errors_total
                    .with_label_values(&[operation, crate::upstream::ErrorKind::Internal.as_str()])
                    .inc();
                Err(UpstreamError::Internal { upstream, message })
            })
        });
        let caller_gone = Arc::new(Notify::new());
        let task = detached.spawn(call, caller_gone.clone());
        let guard = CallerGone(caller_gone);
        // Dropping this future drops the JoinHandle, which detaches the task without aborting it.
        Box::pin(async move {
            let outcome = task.await;
            drop(guard);
            // The task catches its own panics: only a runtime shutting down cancels it.
            outcome.unwrap_or_else(|error| Err(UpstreamError::Internal { upstream, message: error.to_string() }))
        })
    }
}

impl DetachLayer {
    /// Run `work` on a tracked task of its own, awaited by nobody: what an answer need not wait
    /// for but shutdown must (the Redis half of a store). Not an upstream call: it takes no
    /// `MAX_IN_FLIGHT` slot and is not counted in `upstream_calls_detached`; it ends within the
    /// Redis timeout.
    pub fn track(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.detached.track(work);
    }
}

/// Tells the task its caller has left (the future above was dropped, or finished): from then
/// on the task holds a `MAX_IN_FLIGHT` slot of its own.
struct CallerGone(Arc<Notify>);

impl Drop for CallerGone {
    fn drop(&mut self) {
        // `notify_one` keeps the wake-up for a task that is not listening yet.
        self.0.notify_one();
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod tests;
