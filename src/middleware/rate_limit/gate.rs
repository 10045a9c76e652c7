//! The rate limit's decision, made while the request starts: the limiter's Redis script runs
//! side by side with the cache's own Redis round trip (the single-flight claim, which also looks
//! the result up), so a request pays one round trip before its answer or its upstream call, not
//! two. Nothing that costs money or reaches outside waits less than the decision: the single-flight
//! layer awaits the gate before any upstream call, the audio intake before fetching or decoding.
//!
//! The gate travels with the request as a task-local, set by the rate-limit service around the
//! inner call; code outside that scope (a request on a route without limits, a test calling a
//! stack directly) sees no gate and is admitted at once.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::limiter::Decision;

tokio::task_local! {
    static GATE: Gate;
}

/// Every limiter's decision on the request, once in. Cheap to clone.
#[derive(Clone)]
pub struct Gate(Shared<BoxFuture<'static, Arc<[Decision]>>>);

impl Gate {
    pub fn new(decisions: impl Future<Output = Vec<Decision>> + Send + 'static) -> Self {
        Self(decisions.map(Arc::from).boxed().shared())
    }

    pub async fn decisions(&self) -> Arc<[Decision]> {
        self.0.clone().await
    }

    /// The gate of the request this task serves, if it passed a rate limit.
    pub fn current() -> Option<Self> {
        GATE.try_with(Clone::clone).ok()
    }

    /// Whether every limiter admitted the request.
    pub async fn admitted(&self) -> bool {
        self.decisions().await.iter().all(|decision| decision.allowed)
    }

    /// Run `work` with this gate as the request's.
    pub fn scope<F: Future>(self, work: F) -> impl Future<Output = F::Output> {
        GATE.scope(self, work)
    }
}

/// Whether the current request may go on to work that costs (an upstream call, an outbound
/// fetch, decoding); waits for the limiter's decision when it is not in yet.
pub async fn admitted() -> bool {
    match Gate::current() {
        Some(gate) => gate.admitted().await,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::middleware::rate_limit::Limiter;

    fn decided(allowed: bool) -> Vec<Decision> {
        let second = Duration::from_secs(1);
        vec![Decision { allowed, limit: 1, remaining: 0, retry_after: second, reset: second, limiter: Limiter::Local }]
    }

    #[tokio::test]
    async fn outside_a_scope_everything_is_admitted_inside_the_gate_decides() {
        assert!(admitted().await);
        let refused = Gate::new(async { decided(false) });
        assert!(!refused.scope(admitted()).await);
        let (send, receive) = tokio::sync::oneshot::channel::<bool>();
        let later = Gate::new(async move { decided(receive.await.unwrap_or(false)) });
        let waiting = tokio::spawn(later.clone().scope(admitted()));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits for the decision");
        send.send(true).expect("sent");
        assert!(waiting.await.expect("joined"));
    }
}
