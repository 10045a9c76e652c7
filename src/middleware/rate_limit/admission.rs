//! The rate limit's decision, made while the request starts. The limiters decide from memory
//! (`lease.rs`), so the decision is almost always in before the request goes on; when one must
//! wait for its lease request, what the request does meanwhile (reading its body, the cache's
//! lookup) overlaps that wait. Nothing that costs money or reaches outside waits less than the
//! decision: the cached flight awaits the admission before any upstream call, the audio intake
//! before fetching or decoding.
//!
//! The admission is a value, not an ambient task-local: the rate-limit service puts it in the
//! request's extensions, the handler takes it out (none there is a wiring error, refused) and
//! hands it to the stack with the job (`Admitted`), which a stack takes in place of a bare job.
//! So a layer reordered or a task spawned on the way cannot lose it and let a call through
//! unlimited: code without an admission does not compile, and a request without one is refused.

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::limiter::Decision;
use crate::audio::Audio;
use crate::cache::{CacheKey, CacheKeyed};
use crate::error::AppError;
use crate::metrics::labels::Operation;
use crate::middleware::recording_digest::Recorded;
use crate::usage::Allowance;

/// Every limiter's decision on one request, once in, and the user's daily budget, asked only when
/// the request is about to call an upstream (a cached answer costs nothing, so the budget must
/// not refuse it). Cheap to clone; made only here.
#[derive(Clone)]
pub struct Admission {
    decisions: Decisions,
    /// Set by the usage layer (`usage::layer`); none: no budget to hold.
    allowance: Option<Allowance>,
}

impl Admission {
    pub(crate) fn new(decisions: impl Future<Output = Vec<Decision>> + Send + 'static) -> Self {
        Self { decisions: Decisions::Pending(decisions.map(Arc::from).boxed().shared()), allowance: None }
    }

    /// An admission whose decisions are in: no future to box or share.
    pub(crate) fn decided(decisions: Vec<Decision>) -> Self {
        Self { decisions: Decisions::In(decisions.into()), allowance: None }
    }

    /// This admission, with the user's budget to pass before an upstream call.
    pub fn with_allowance(self, allowance: Allowance) -> Self {
        Self { allowance: Some(allowance), ..self }
    }

    /// Whether the user's budget still allows an upstream call for `operation` (no budget: yes).
    /// Asked after every cache tier missed, just before the call; a refusal is remembered by the
    /// allowance, which the usage layer turns into 429 `budget_exceeded`.
    pub async fn affords(&self, operation: Operation) -> bool {
        match &self.allowance {
            Some(allowance) => allowance.admits(operation).await,
            None => true,
        }
    }

    /// No limit to pass: for callers outside HTTP (tests, benchmarks) that drive a stack
    /// directly, and say so where they do.
    pub fn unlimited() -> Self {
        Self::new(async { Vec::new() })
    }

    pub(super) async fn decisions(&self) -> Arc<[Decision]> {
        match &self.decisions {
            Decisions::In(decisions) => decisions.clone(),
            Decisions::Pending(decisions) => decisions.clone().await,
        }
    }

    /// Whether every limiter admitted the request; waits for the decision when it is not in yet.
    pub async fn admitted(&self) -> bool {
        self.decisions().await.iter().all(|decision| decision.allowed)
    }

    /// The admission the rate-limit service gave `request`. Without one the route is wired
    /// wrongly: fail closed rather than call upstream unlimited.
    pub fn of(request: &Request) -> Result<Self, AppError> {
        request.extensions().get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("an API route was reached without the rate-limit layer's admission");
            AppError::Internal
        })
    }
}

/// The limiters' decisions: in (the usual case, decided from memory), or still to come.
#[derive(Clone)]
enum Decisions {
    In(Arc<[Decision]>),
    Pending(Shared<BoxFuture<'static, Arc<[Decision]>>>),
}

/// A job with the admission of the request it serves: what every upstream stack takes.
#[derive(Clone)]
pub struct Admitted<J> {
    admission: Admission,
    pub job: J,
}

impl<J> Admitted<J> {
    pub fn new(admission: Admission, job: J) -> Self {
        Self { admission, job }
    }

    pub fn into_parts(self) -> (Admission, J) {
        (self.admission, self.job)
    }
}

impl<J: CacheKeyed> CacheKeyed for Admitted<J> {
    fn cache_key(&self) -> CacheKey {
        self.job.cache_key()
    }
}

impl<J: Recorded> Recorded for Admitted<J> {
    fn recording(&self) -> &Audio {
        self.job.recording()
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
    async fn the_admission_decides_and_waits_for_its_decision() {
        assert!(Admission::unlimited().admitted().await);
        assert!(!Admission::new(async { decided(false) }).admitted().await);
        let (send, receive) = tokio::sync::oneshot::channel::<bool>();
        let later = Admission::new(async move { decided(receive.await.unwrap_or(false)) });
        let waiting = tokio::spawn(async move { later.admitted().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits for the decision");
        send.send(true).expect("sent");
        assert!(waiting.await.expect("joined"));
    }

    #[test]
    fn a_request_the_rate_limit_did_not_see_is_refused_not_let_through() {
        let request = Request::new(axum::body::Body::empty());
        assert!(matches!(Admission::of(&request), Err(AppError::Internal)));
    }
}
