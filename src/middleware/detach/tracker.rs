//! The detached upstream calls of one instance: tracked, counted, bounded, drained.

use std::future::Future;
use std::sync::Arc;

use prometheus::IntGauge;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// Cheap to clone; every detach layer of the instance holds the same one.
#[derive(Clone)]
pub struct Detached {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every detached task, so shutdown can wait for them (a bare `tokio::spawn` would be
    /// dropped by the runtime mid-call, its answer never cached).
    tracker: TaskTracker,
    /// `upstream_calls_detached`: tasks running, their caller still waiting or not.
    running: IntGauge,
    /// `MAX_IN_FLIGHT`'s slots, shared with the `/api/*` load shedder; `None` when it is 0.
    slots: Option<Arc<Semaphore>>,
}

impl Detached {
    pub fn new(running: IntGauge, slots: Option<Arc<Semaphore>>) -> Self {
        Self { inner: Arc::new(Inner { tracker: TaskTracker::new(), running, slots }) }
    }

    /// The `MAX_IN_FLIGHT` semaphore the load shedder must use, so that requests and orphaned
    /// calls share one bound.
    pub fn slots(&self) -> Option<Arc<Semaphore>> {
        self.inner.slots.clone()
    }

    /// Tasks running now: calls, and the stores that follow answers.
    pub fn running(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Run `call` on a tracked task. While its caller waits, the caller's own request holds the
    /// `MAX_IN_FLIGHT` slot; once `caller_gone` fires, the task waits for a slot of its own
    /// beside the call. The semaphore is fair, so the slot the leaving request gives back goes
    /// to the task before any new request: the bound holds, and the call is never delayed.
    pub(super) fn spawn<F>(&self, call: F, caller_gone: Arc<Notify>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let running = RunningGuard::new(self.inner.running.clone());
        let slots = self.inner.slots.clone();
        self.inner.tracker.spawn(async move {
            let _running = running;
            let Some(slots) = slots else {
                return call.await;
            };
            tokio::pin!(call);
            let slot = async {
                caller_gone.notified().await;
                slots.acquire_owned().await
            };
            tokio::pin!(slot);
            let mut _held = None;
            loop {
                tokio::select! {
                    biased;
                    output = &mut call => return output,
                    // The semaphore is never closed; `Err` would only mean no slot to hold.
                    permit = &mut slot, if _held.is_none() => _held = Some(permit.ok()),
                }
            }
        })
    }

    /// Run `work` on a tracked task, outside the slots and the gauge (see `DetachLayer::track`).
    pub(super) fn track<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.inner.tracker.spawn(work));
    }

    /// Wait for every call running now, or started meanwhile, to end. Each ends within its
    /// `UPSTREAM_TIMEOUT_SECONDS`; the caller bounds the wait by the shutdown grace period.
    pub async fn drain(&self) {
        self.inner.tracker.close();
        let running = self.running();
        if running > 0 {
            tracing::info!(running, "waiting for detached upstream calls and cache stores to end");
        }
        self.inner.tracker.wait().await;
    }
}

/// Counts a task in `upstream_calls_detached` for as long as it lives.
struct RunningGuard(IntGauge);

impl RunningGuard {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
