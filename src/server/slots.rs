//! Connection slots (`MAX_CONNECTIONS`), and who gives one up when all are taken.
//!
//! Refusing every new connection once the slots are full let sockets that say nothing take an
//! instance offline: 4096 of them, each renewed when closed, and the liveness probe (`/health`)
//! was refused with everyone else. So a new connection that finds every slot taken asks the
//! connection idle the longest (no request in progress: it has sent nothing yet, or is between
//! requests) to close, and takes its slot once it has. Of the ways to keep probes answered this
//! one needs no guess at what a connection will ask for before it has asked (a reserve for
//! probes would have to wait for the request line, and silent sockets can fill a reserve too),
//! and it serves any client that talks, not only the probes: a socket that talks at once is never
//! the one idle the longest while silent ones are held. Only when every connection has a request
//! in progress is a new one refused. The price: under such a flood a proxy's idle keep-alive
//! connection may be closed, which a proxy expects of any server.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::Activity;

/// How long a new connection waits for the slot of the one it evicted: an idle connection
/// closes at once, one that started a request just then finishes it first.
const EVICTION_WAIT: Duration = Duration::from_secs(2);

pub(super) struct Slots {
    permits: Arc<Semaphore>,
    max: usize,
    /// Every connection holding a slot, by id.
    held: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// What a new connection got.
pub(super) enum Admission {
    /// A free slot.
    Now(OwnedSemaphorePermit),
    /// The slot of a connection told to close: `Slots::take_evicted` waits for it.
    Soon,
    /// Every connection has a request in progress.
    Refused,
}

impl Slots {
    pub(super) fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            held: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    pub(super) fn admit(&self) -> Admission {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Admission::Now(permit);
        }
        let mut held = self.held.lock();
        let longest_idle = held
            .iter()
            .filter(|(_, activity)| activity.is_idle())
            .min_by_key(|(_, activity)| activity.idle_since())
            .map(|(id, _)| *id);
        match longest_idle.and_then(|id| held.remove(&id)) {
            Some(activity) => {
                activity.evict();
                Admission::Soon
            }
            None => Admission::Refused,
        }
    }

    /// The slot an eviction frees, if it is freed soon enough.
    pub(super) async fn take_evicted(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(EVICTION_WAIT, self.permits.clone().acquire_owned()).await.ok()?.ok()
    }

    /// Count `activity`'s connection among those that may be evicted, until the guard drops.
    pub(super) fn hold(self: &Arc<Self>, activity: Arc<Activity>) -> Held {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.held.lock().insert(id, activity);
        Held { slots: self.clone(), id }
    }

    /// Completes once every slot is free again: every connection has ended.
    pub(super) async fn all_free(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

pub(super) struct Held {
    slots: Arc<Slots>,
    id: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.slots.held.lock().remove(&self.id);
    }
}
