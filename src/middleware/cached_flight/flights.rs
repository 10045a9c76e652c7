//! The registry of calls in flight in this instance, keyed by rendered `CacheKey`.
//!
//! Each entry holds a `Shared` future. Every participant (the one that started it and those
//! that joined) awaits a clone, so whichever is still there drives it; the entry is removed
//! when the call completes or when its last participant goes away (which cancels the call: no
//! one wants its answer any more). The lock is never held across an await.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Map, Shared};

use super::CachedFlightConfig;
use crate::cache::{Answer, Cache, Cacheable};
use crate::domain::served::{Origin, Served};
use crate::middleware::detach::DetachLayer;
use crate::upstream::error::UpstreamError;

pub(super) type Call<R> = BoxFuture<'static, Result<Served<Answer<R>>, UpstreamError>>;
/// The result behind an `Arc`: `Shared` hands every participant a clone of the output, and the
/// registry's own handle means the starter's is never the last. Cloning an analysis was ~20
/// allocations per miss; cloning the `Arc` is none, and once the registry lets go, the last
/// participant unwraps it without a copy (an answer the memory tier kept is an `Arc` itself).
type SharedCall<R> = Shared<Map<Call<R>, ShareResult<R>>>;
type Outcome<R> = Result<Arc<Served<Answer<R>>>, UpstreamError>;
type ShareResult<R> = fn(Result<Served<Answer<R>>, UpstreamError>) -> Outcome<R>;

fn share<R>(result: Result<Served<Answer<R>>, UpstreamError>) -> Outcome<R> {
    result.map(Arc::new)
}

pub(crate) struct Flights {
    pub(super) cache: Cache,
    pub(super) config: CachedFlightConfig,
    pub(super) detach: Option<DetachLayer>,
    in_flight: Mutex<HashMap<String, Flight>>,
    next_id: AtomicU64,
}

struct Flight {
    id: u64,
    participants: usize,
    /// A `SharedCall<R>`; erased so one registry serves every result type. Keys embed the kind,
    /// and a kind has one result type, so a lookup never finds another type in practice.
    call: Box<dyn Any + Send + Sync>,
}

impl Flights {
    pub fn new(cache: Cache, config: CachedFlightConfig, detach: Option<DetachLayer>) -> Self {
        Self { cache, config, detach, in_flight: Mutex::new(HashMap::new()), next_id: AtomicU64::new(0) }
    }

    /// Join the call in flight for `key`, or start one with `start`.
    pub fn join_or_start<R: Cacheable>(
        self: &Arc<Self>,
        key: &str,
        start: impl FnOnce() -> Call<R>,
    ) -> Participation<R> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = in_flight.get_mut(key)
            && let Some(call) = flight.call.downcast_ref::<SharedCall<R>>()
        {
            flight.participants += 1;
            return Participation {
                call: call.clone(),
                started: false,
                guard: Some(Guard { flights: self.clone(), key: key.to_string(), id: flight.id, done: false }),
                flights: self.clone(),
            };
        }
        let call = start().map(share as ShareResult<R>).shared();
        if in_flight.contains_key(key) {
            // A flight of another result type under the same key: run alone rather than evict it.
            return Participation { call, started: true, guard: None, flights: self.clone() };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        in_flight.insert(key.to_string(), Flight { id, participants: 1, call: Box::new(call.clone()) });
        Participation {
            call,
            started: true,
            guard: Some(Guard { flights: self.clone(), key: key.to_string(), id, done: false }),
            flights: self.clone(),
        }
    }

    /// Work an answer need not wait for (the Redis half of a store, a lease's end): on a task
    /// the detach layer tracks, so shutdown waits for it, when the layer has one; else now.
    /// Boxed by the caller: a call's future is moved several times on its way to its task, and
    /// carrying this work inline made it half as large again.
    pub(super) async fn after_answer(&self, work: BoxFuture<'static, ()>) {
        match &self.detach {
            Some(detach) => detach.track(work),
            None => work.await,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

pub(super) struct Participation<R: Cacheable> {
    call: SharedCall<R>,
    started: bool,
    guard: Option<Guard>,
    flights: Arc<Flights>,
}

impl<R: Cacheable> Participation<R> {
    pub async fn finish(self) -> Result<Served<Answer<R>>, UpstreamError> {
        let Self { call, started, mut guard, flights } = self;
        let result = call.await;
        if let Some(guard) = guard.as_mut() {
            guard.done = true;
        }
        drop(guard);
        // The registry has let go: unless another participant is still reading, this is the
        // last handle on the result and it is taken without a copy.
        let result = result.map(|served| Arc::try_unwrap(served).unwrap_or_else(|shared| Served::clone(&shared)));
        if started {
            return result;
        }
        flights.cache.metrics().single_flight_shared_total.with_label_values(&[R::KIND.operation(), "local"]).inc();
        result.map(|served| match served.origin {
            Origin::Upstream => Served { origin: Origin::SharedLocal, ..served },
            // Read from storage on the starter's behalf: as cached for us as for it.
            Origin::Cache { .. } | Origin::SharedRemote | Origin::SharedLocal => served,
        })
    }
}

struct Guard {
    flights: Arc<Flights>,
    key: String,
    id: u64,
    done: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let removed = {
            let mut in_flight = self.flights.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            match in_flight.get_mut(&self.key) {
                Some(flight) if flight.id == self.id => {
                    flight.participants = flight.participants.saturating_sub(1);
                    if self.done || flight.participants == 0 { in_flight.remove(&self.key) } else { None }
                }
                _ => None,
            }
        };
        // Dropping the last clone of a call cancels it; do that outside the lock.
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cache::{CacheConfig, CacheMode, ModeSource};
    use crate::domain::speech::Transcription;
    use crate::metrics::Metrics;

    fn flights() -> Arc<Flights> {
        let config = CacheConfig::new(CacheMode::DiskOnly, ModeSource::Env, PathBuf::from("unused"));
        Arc::new(Flights::new(Cache::new(config, None, Metrics::new()), CachedFlightConfig::default(), None))
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_participant_leaves_the_call_is_cancelled_and_forgotten() {
        let flights = flights();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let participation = flights.join_or_start::<Transcription>("k", || {
            Box::pin(async move {
                let _notify_on_drop = dropped_tx;
                std::future::pending::<()>().await;
                Ok(Served::fresh(Answer::Value(Transcription::default())))
            })
        });
        let running = tokio::spawn(participation.finish());
        tokio::task::yield_now().await;
        assert_eq!(flights.len(), 1);
        running.abort();
        assert!(dropped_rx.await.is_err(), "the call's future was dropped");
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_completed_call_is_forgotten_so_the_next_job_starts_afresh() {
        let flights = flights();
        let first = flights.join_or_start::<Transcription>("k", || {
            Box::pin(async { Ok(Served::fresh(Answer::Value(Transcription::default()))) })
        });
        assert!(first.finish().await.is_ok());
        assert_eq!(flights.len(), 0);
    }
}
