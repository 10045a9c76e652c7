use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::flights::{Call, Flights};
use super::lease::{Claimed, Lease, lease_exists};
use crate::cache::claims::{Claim, Claims};
use crate::cache::{CacheKey, CacheKeyed, CacheKind, Cacheable};
use crate::middleware::rate_limit::Gate;
use crate::domain::served::{Origin, Served};
use crate::upstream::error::Upstream;
use crate::upstream::error::UpstreamError;

#[derive(Clone)]
pub struct SingleFlightService<S> {
    inner: S,
    flights: Arc<Flights>,
}

impl<S> SingleFlightService<S> {
    pub(super) fn new(inner: S, flights: Arc<Flights>) -> Self {
        Self { inner, flights }
    }
}

impl<S, J, R> Service<J> for SingleFlightService<S>
where
    J: CacheKeyed + Send + 'static,
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + 'static,
    S::Future: Send,
    R: Cacheable,
{
    type Response = Served<R>;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<Served<R>, UpstreamError>>;

    /// Always ready: a job that joins a flight never touches the inner service; the one that
    /// starts it waits for readiness inside the call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, job: J) -> Self::Future {
        let key = job.cache_key();
        let flights = self.flights.clone();
        let inner = self.inner.clone();
        // Taken here, in the request's task: the flight may be driven from another caller's.
        let gate = Gate::current();
        Box::pin(async move {
            // A memory-tier hit is a local read with nothing to coordinate: answering it before
            // the registry spares every hit the flight's bookkeeping (lock, boxed shared
            // future, a clone of the result for the registry's copy).
            if let Some((value, tier)) = flights.cache.get_from_memory::<R>(&key).await {
                return Ok(Served { value, origin: Origin::Cache { tier } });
            }
            let registry = flights.clone();
            let rendered = key.as_str().to_string();
            // The job moves into the flight when this caller starts it; when it joined another's,
            // the job is still here. A flight whose starter the rate limit refused ends with
            // `NotAdmitted`: not this caller's refusal, so a joiner flies again under its own
            // gate (a few times at most: each try needs another refused starter for the same
            // content).
            let mut unstarted = Some((job, key));
            let mut result = Err(UpstreamError::NotAdmitted { upstream: upstream_of::<R>() });
            for _ in 0..3 {
                let start = || -> Call<R> {
                    let (job, key) = unstarted.take().expect("a flight is started once");
                    Box::pin(fly(flights.clone(), inner.clone(), job, key, gate.clone()))
                };
                result = registry.join_or_start::<R>(&rendered, start).finish().await;
                let refused_starter = matches!(result, Err(UpstreamError::NotAdmitted { .. })) && unstarted.is_some();
                if !refused_starter || !admitted_by(gate.as_ref()).await {
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
    key: CacheKey,
    gate: Option<Gate>,
) -> Result<Served<R>, UpstreamError>
where
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Send,
    S::Future: Send,
    J: CacheKeyed + Send,
    R: Cacheable,
{
    let cache = &flights.cache;
    let refused = || Err(UpstreamError::NotAdmitted { upstream: upstream_of::<R>() });
    let Some(link) = cache.redis().cloned() else {
        if !admitted_by(gate.as_ref()).await {
            return refused();
        }
        return inner.oneshot(job).await;
    };
    let config = flights.config;
    let now = Instant::now();
    let deadline = now.checked_add(config.max_wait).unwrap_or(now + Duration::from_secs(86_400));
    let lease_key = link.keys().lease(key.kind().as_str(), key.digest());
    // The holder may store its answer under a later link's key (a fallback made it).
    let keys: Vec<CacheKey> = job.chain_keys().into_iter().map(|(_, key)| key).collect();
    let mut unreadable_seen = false;
    loop {
        // The memory tier was looked at by `call`; the claim looks at Redis and, when the value
        // is not there, takes the lease in the same round trip.
        // Side by side with the rate limit's decision: one round trip for both.
        let (claimed, admitted) =
            tokio::join!(Lease::claim(&link, &key, lease_key.clone(), config.lease), admitted_by(gate.as_ref()));
        if !admitted {
            if let Ok(Claimed::Acquired(lease)) = claimed {
                lease.release().await;
            }
            return refused();
        }
        match claimed {
            // Redis failing or backing off: coordinating would only add timeouts to a request
            // that is going upstream anyway.
            Err(_) => return inner.oneshot(job).await,
            Ok(Claimed::Stored(bytes)) => {
                if let Some((value, tier)) = cache.accept_from_redis::<R>(&key, bytes).await {
                    return Ok(Served { value, origin: Origin::Cache { tier } });
                }
                // An unreadable entry, deleted by the cache: claim again, once.
                if std::mem::replace(&mut unreadable_seen, true) {
                    return inner.oneshot(job).await;
                }
            }
            Ok(Claimed::Acquired(lease)) => {
                // The cache layer beneath sees the claim: it skips the Redis read this claim just
                // made, and its store ends the lease in the same round trip (`cache::claims`).
                let claim = ClaimGuard::new(cache.claims(), key.as_str(), &lease);
                let result = lease.hold_while(inner.oneshot(job)).await;
                if claim.take() {
                    // Not used by a store (an error, an answer not to be cached): end it here.
                    lease.release().await;
                }
                return result;
            }
            Ok(Claimed::Held) => match wait_for_holder::<R>(&flights, &keys, &lease_key, deadline).await {
                Waited::Stored(value) => {
                    cache
                        .metrics()
                        .single_flight_shared_total
                        .with_label_values(&[R::KIND.operation(), "remote"])
                        .inc();
                    return Ok(Served { value, origin: Origin::SharedRemote });
                }
                Waited::LeaseGone => continue,
                Waited::GiveUp => return inner.oneshot(job).await,
            },
        }
    }
}

/// This instance's claim on a key while its call runs. Dropped with an unfinished flight (every
/// caller left), it forgets the claim, so the cache layer never skips Redis for a key on the
/// strength of a lease nobody here will end; the lease then expires on its own.
struct ClaimGuard<'a> {
    claims: &'a Claims,
    key: &'a str,
}

impl<'a> ClaimGuard<'a> {
    fn new(claims: &'a Claims, key: &'a str, lease: &Lease) -> Self {
        claims.insert(key, Claim { lease_key: lease.key().to_owned(), token: lease.token().to_owned() });
        Self { claims, key }
    }

    /// Whether the claim was still here (no store used it).
    fn take(self) -> bool {
        self.claims.take(self.key).is_some()
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.claims.take(self.key);
    }
}

enum Waited<R> {
    Stored(R),
    /// The holder finished without storing (error, uncacheable result) or died.
    LeaseGone,
    /// Deadline passed or Redis failed: stop coordinating and make the call.
    GiveUp,
}

async fn wait_for_holder<R: Cacheable>(
    flights: &Flights,
    keys: &[CacheKey],
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
        for key in keys {
            if let Some((value, _tier)) = cache.probe::<R>(key).await {
                return Waited::Stored(value);
            }
        }
        match lease_exists(link, lease_key).await {
            Ok(true) => {}
            Ok(false) => return Waited::LeaseGone,
            Err(_) => return Waited::GiveUp,
        }
    }
}

/// Whether the request may make its upstream call: no gate (no rate limit on its route) is yes.
async fn admitted_by(gate: Option<&Gate>) -> bool {
    match gate {
        Some(gate) => gate.admitted().await,
        None => true,
    }
}

fn upstream_of<R: Cacheable>() -> Upstream {
    match R::KIND {
        CacheKind::Analysis => Upstream::Gemini,
        CacheKind::Transcription | CacheKind::Pronunciation => Upstream::AzureSpeech,
    }
}
