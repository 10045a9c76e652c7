use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::flights::Flights;
use super::lease::{Lease, lease_exists, lease_key};
use crate::cache::{CacheKey, CacheKeyed, Cacheable};
use crate::served::{Origin, Served};
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
        Box::pin(async move {
            // A memory-tier hit is a local read with nothing to coordinate: answering it before
            // the registry spares every hit the flight's bookkeeping (lock, boxed shared
            // future, a clone of the result for the registry's copy).
            if let Some((value, tier)) = flights.cache.get_from_memory::<R>(&key).await {
                return Ok(Served { value, origin: Origin::Cache { tier } });
            }
            let registry = flights.clone();
            let rendered = key.as_str().to_string();
            let participation = registry.join_or_start::<R>(&rendered, move || Box::pin(fly(flights, inner, job, key)));
            participation.finish().await
        })
    }
}

/// The one call this instance makes for a key: straight to the inner service without Redis,
/// else under the cross-instance lease.
async fn fly<S, J, R>(flights: Arc<Flights>, inner: S, job: J, key: CacheKey) -> Result<Served<R>, UpstreamError>
where
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Send,
    S::Future: Send,
    J: Send,
    R: Cacheable,
{
    let cache = &flights.cache;
    let Some(link) = cache.redis().cloned() else {
        return inner.oneshot(job).await;
    };
    // A hit needs no lease: answer it without two extra Redis round trips. Uncounted misses:
    // the cache layer beneath counts this request's miss when the call goes ahead.
    if let Some((value, tier)) = cache.probe::<R>(&key).await {
        return Ok(Served { value, origin: Origin::Cache { tier } });
    }
    // The probe's Redis read just failed: coordinating would only add lease timeouts to a
    // request that is going upstream anyway.
    if !link.is_up() {
        return inner.oneshot(job).await;
    }
    let config = flights.config;
    let now = Instant::now();
    let deadline = now.checked_add(config.max_wait).unwrap_or(now + Duration::from_secs(86_400));
    let lease_key = lease_key(key.as_str());
    loop {
        match Lease::try_acquire(&link, lease_key.clone(), config.lease).await {
            Err(_) => return inner.oneshot(job).await,
            Ok(Some(lease)) => {
                // Another instance may have stored the answer between our look and the lease.
                // No second look here: the cache layer beneath makes exactly that lookup before
                // it calls the upstream, so looking here too would cost a Redis round trip per
                // miss for nothing.
                let result = lease.hold_while(inner.oneshot(job)).await;
                lease.release().await;
                return result;
            }
            Ok(None) => match wait_for_holder::<R>(&flights, &key, &lease_key, deadline).await {
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

enum Waited<R> {
    Stored(R),
    /// The holder finished without storing (error, uncacheable result) or died.
    LeaseGone,
    /// Deadline passed or Redis failed: stop coordinating and make the call.
    GiveUp,
}

async fn wait_for_holder<R: Cacheable>(
    flights: &Flights,
    key: &CacheKey,
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
        if let Some((value, _tier)) = cache.probe::<R>(key).await {
            return Waited::Stored(value);
        }
        match lease_exists(link, lease_key).await {
            Ok(true) => {}
            Ok(false) => return Waited::LeaseGone,
            Err(_) => return Waited::GiveUp,
        }
    }
}
