use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::Service;

use super::flights::{Call, Flights};
use super::lease::{Claim, Claimed, Lease, lease_exists};
use super::store::{ChainKeys, look_call_store};
use crate::cache::{Answer, CacheKeyed, CacheKind, Cacheable};
use crate::domain::served::{Origin, Served};
use crate::metrics::labels::Tier;
use crate::middleware::rate_limit::{Admission, Admitted};
use crate::upstream::error::Upstream;
use crate::upstream::error::UpstreamError;

#[derive(Clone)]
pub struct CachedFlightService<S> {
    inner: S,
    flights: Arc<Flights>,
}

impl<S> CachedFlightService<S> {
    pub(super) fn new(inner: S, flights: Arc<Flights>) -> Self {
        Self { inner, flights }
    }
}

/// Takes a job with its request's admission (`rate_limit::Admitted`), checked before any call.
impl<S, J, R> Service<Admitted<J>> for CachedFlightService<S>
where
    J: CacheKeyed + Send + 'static,
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + 'static,
    S::Future: Send,
    R: Cacheable,
{
    type Response = Served<Answer<R>>;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<Served<Answer<R>>, UpstreamError>>;

    /// Always ready: a job that joins a flight never touches the inner service; the one that
    /// starts it waits for readiness inside the call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Admitted<J>) -> Self::Future {
        let (admission, job) = request.into_parts();
        let key = job.cache_key();
        let flights = self.flights.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            // A memory-tier hit is a local read with nothing to coordinate: answering it before
            // the registry spares every hit the flight's bookkeeping (lock, boxed shared
            // future, a clone of the result for the registry's copy), and the other keys of a
            // fallback chain.
            if let Some(answer) = flights.cache.get_from_memory::<R>(&key).await {
                return Ok(Served { value: answer, origin: Origin::Cache { tier: Tier::Memory.as_str() } });
            }
            let registry = flights.clone();
            let rendered = key.as_str().to_string();
            // A fallback chain's job has one key per link: looked up in order, the first leased.
            let keys = ChainKeys::of(&job, key);
            // The job moves into the flight when this caller starts it; when it joined another's,
            // the job is still here. A flight whose starter the rate limit refused ends with
            // `NotAdmitted`: not this caller's refusal, so a joiner flies again under its own
            // admission (a few times at most: each try needs another refused starter for the same
            // content).
            let mut unstarted = Some((job, keys));
            let mut result = Err(UpstreamError::NotAdmitted { upstream: upstream_of::<R>() });
            for _ in 0..3 {
                let start = || -> Call<R> {
                    let (job, keys) = unstarted.take().expect("a flight is started once");
                    Box::pin(fly(flights.clone(), inner.clone(), job, keys, admission.clone()))
                };
                result = registry.join_or_start::<R>(&rendered, start).finish().await;
                let refused_starter = matches!(result, Err(UpstreamError::NotAdmitted { .. })) && unstarted.is_some();
                if !refused_starter || !admission.admitted().await {
                    break;
                }
            }
            result
        })
    }
}

/// The one call this instance makes for a key: straight to the inner service without Redis,
/// else under the cross-instance lease.
async fn fly<S, J, R>(
    flights: Arc<Flights>,
    inner: S,
    job: J,
    keys: ChainKeys,
    admission: Admission,
) -> Result<Served<Answer<R>>, UpstreamError>
where
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Send + 'static,
    S::Future: Send,
    J: Send + 'static,
    R: Cacheable,
{
    let cache = &flights.cache;
    let key = keys.first().clone();
    let refused = || Err(UpstreamError::NotAdmitted { upstream: upstream_of::<R>() });
    let Some(link) = cache.redis().cloned() else {
        if !admission.admitted().await {
            return refused();
        }
        return call(&flights, inner, job, keys, None, &admission).await;
    };
    let config = flights.config;
    let now = Instant::now();
    let deadline = now.checked_add(config.max_wait).unwrap_or(now + Duration::from_secs(86_400));
    let lease_key = link.keys().lease(key.kind().as_str(), key.digest());
    let mut unreadable_seen = false;
    loop {
        // The memory tier was looked at by `call`; the claim looks at Redis and, when the value
        // is not there, takes the lease in the same round trip.
        // Side by side with the rate limit's decision: one round trip for both.
        let (claimed, admitted) =
            tokio::join!(Lease::claim(&link, &key, lease_key.clone(), config.lease), admission.admitted());
        if !admitted {
            if let Ok(Claimed::Acquired(lease)) = claimed {
                lease.release().await;
            }
            return refused();
        }
        match claimed {
            // Redis failing or backing off: coordinating would only add timeouts to a request
            // that is going upstream anyway.
            Err(_) => return call(&flights, inner, job, keys, None, &admission).await,
            Ok(Claimed::Stored(bytes)) => {
                if let Some((answer, tier)) = cache.accept_from_redis::<R>(&key, bytes).await {
                    return Ok(Served { value: answer, origin: Origin::Cache { tier } });
                }
                // An unreadable entry, deleted by the cache: claim again, once.
                if std::mem::replace(&mut unreadable_seen, true) {
                    return call(&flights, inner, job, keys, None, &admission).await;
                }
            }
            // The claim goes with the call: its lookup skips the Redis read this claim just
            // made, and its store ends the lease in the same round trip (`store.rs`).
            Ok(Claimed::Acquired(lease)) => {
                return call(&flights, inner, job, keys, Some(Claim::new(lease)), &admission).await;
            }
            Ok(Claimed::Held) => match wait_for_holder::<R>(&flights, &keys, &lease_key, deadline).await {
                Waited::Stored(answer) => {
                    cache
                        .metrics()
                        .single_flight_shared_total
                        .with_label_values(&[R::KIND.operation(), "remote"])
                        .inc();
                    return Ok(Served { value: answer, origin: Origin::SharedRemote });
                }
                Waited::LeaseGone => continue,
                Waited::GiveUp => return call(&flights, inner, job, keys, None, &admission).await,
            },
        }
    }
}

/// Look up, call and store: on the detached task when the layer has one.
async fn call<S, J, R>(
    flights: &Arc<Flights>,
    inner: S,
    job: J,
    keys: ChainKeys,
    claim: Option<Claim>,
    admission: &Admission,
) -> Result<Served<Answer<R>>, UpstreamError>
where
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Send + 'static,
    S::Future: Send,
    J: Send + 'static,
    R: Cacheable,
{
    let admission = admission.clone();
    match &flights.detach {
        Some(detach) => {
            let flights = flights.clone();
            detach.run(async move { look_call_store(&flights, inner, job, keys, claim, &admission).await }).await
        }
        None => look_call_store(flights, inner, job, keys, claim, &admission).await,
    }
}

enum Waited<R> {
    Stored(Answer<R>),
    /// The holder finished without storing (error, uncacheable result) or died.
    LeaseGone,
    /// Deadline passed or Redis failed: stop coordinating and make the call.
    GiveUp,
}

async fn wait_for_holder<R: Cacheable>(
    flights: &Flights,
    keys: &ChainKeys,
    lease_key: &str,
    deadline: Instant,
) -> Waited<R> {
    let (cache, config) = (&flights.cache, &flights.config);
    let Some(link) = cache.redis() else {
        return Waited::GiveUp;
    };
    let mut pause = config.poll_initial;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Waited::GiveUp;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = pause.saturating_mul(2).min(config.poll_max).max(Duration::from_millis(1));
        for (_, key) in keys.iter() {
            if let Some((answer, _tier)) = cache.probe::<R>(key).await {
                return Waited::Stored(answer);
            }
        }
        match lease_exists(link, lease_key).await {
            Ok(true) => {}
            Ok(false) => return Waited::LeaseGone,
            Err(_) => return Waited::GiveUp,
        }
    }
}

pub(super) fn upstream_of<R: Cacheable>() -> Upstream {
    match R::KIND {
        CacheKind::Analysis => Upstream::Gemini,
        CacheKind::Transcription | CacheKind::Pronunciation => Upstream::AzureSpeech,
    }
}
