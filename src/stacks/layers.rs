//! The order of the layers on every upstream stack, written once. Outermost first:
//!
//! 0. `front`: what one kind of job needs before anything else (audio: the recording's hash,
//!    its cache key's input, made on the blocking pool); nothing for a text;
//! 1. cached flight, one layer: a hit answers without going further (so cached results are served
//!    even while the upstream's breaker is open); identical concurrent jobs share one call
//!    (in-process, and across instances through a Redis lease); a miss's lookup, call and store
//!    run detached, on their own task, and live to their deadline even if every waiting client
//!    leaves, so hangs still open the breaker and late answers still get cached;
//! 2. AI metrics: duration and errors of the logical operation;
//! 3. circuit breaker: fails fast while the upstream is known to be down; outside the retry
//!    layer, so one logical call counts once, and a hang counts as the deadline's timeout;
//! 4. retry: transient failures again, with backoff, all inside `UPSTREAM_TIMEOUT_SECONDS`,
//!    under a retry budget so an outage cannot multiply the load;
//! 5. the client: one HTTP exchange with the upstream.
//!
//! A pronunciation assessment puts `domain::reading`'s service between 1 and 2: the whole reading
//! is one cache entry and one flight, and each of its pieces' calls takes steps 2 to 5.

use tower::layer::util::Identity;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder};

use super::Stack;
use crate::cache::{Answer, Cache, CacheKeyed, Cacheable};
use crate::domain::served::Served;
use crate::metrics::Metrics;
use crate::metrics::labels::Operation;
use crate::middleware::ai_metrics::AiMetricsLayer;
use crate::middleware::cached_flight::{CachedFlightConfig, CachedFlightLayer};
use crate::middleware::circuit_breaker::{Breaker, CircuitBreakerLayer};
use crate::middleware::detach::{DetachLayer, Detached};
use crate::middleware::fallback::FallbackChain;
use crate::middleware::model_health::ModelHealthLayer;
use crate::middleware::rate_limit::Admitted;
use crate::middleware::recording_digest::{Recorded, RecordingDigestLayer};
use crate::middleware::retry::RetryLayer;
use crate::upstream::{Upstream, UpstreamError};

/// What every stack shares: one cache, one pool of detached calls.
pub struct Layers {
    pub cache: Cache,
    pub cached_flight: CachedFlightConfig,
    pub detached: Detached,
    pub metrics: Metrics,
}

/// What one upstream's stacks share: its breaker and its retry budget, so an outage seen by one
/// operation protects the others on the same upstream.
pub struct Guard {
    pub upstream: Upstream,
    pub breaker: Breaker,
    pub retry: RetryLayer,
}

/// The outermost step, particular to a kind of job, boxing the stack once it is on.
pub trait Front<J, R> {
    fn wrap<S>(&self, stack: S) -> Stack<J, R>
    where
        S: Service<Admitted<J>, Response = Served<Answer<R>>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static;
}

/// No front step (a text needs none).
impl<J, R> Front<J, R> for Identity {
    fn wrap<S>(&self, stack: S) -> Stack<J, R>
    where
        S: Service<Admitted<J>, Response = Served<Answer<R>>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        BoxCloneSyncService::new(stack)
    }
}

/// A recording's hash before its key is asked for.
impl<J, R> Front<J, R> for RecordingDigestLayer
where
    J: Recorded + Send + 'static,
    R: Send + Sync + 'static,
{
    fn wrap<S>(&self, stack: S) -> Stack<J, R>
    where
        S: Service<Admitted<J>, Response = Served<Answer<R>>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        BoxCloneSyncService::new(self.layer(stack))
    }
}

impl Layers {
    /// `client` under every layer, in the order above; `name` is the operation's name in the
    /// detached calls' logs.
    pub fn stack<J, R, F, S>(
        &self,
        front: F,
        operation: Operation,
        name: &'static str,
        guard: &Guard,
        client: S,
    ) -> Stack<J, R>
    where
        J: CacheKeyed + Clone + Send + Sync + 'static,
        R: Cacheable,
        F: Front<J, R>,
        S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        self.stored(front, name, guard.upstream, self.guarded(operation, guard, client))
    }

    /// Steps 0 and 1 over `inner`: for work that makes several upstream calls below one cache
    /// entry (a long reading's pieces, each [`Self::guarded`]).
    pub fn stored<J, R, F, S>(&self, front: F, name: &'static str, upstream: Upstream, inner: S) -> Stack<J, R>
    where
        J: CacheKeyed + Clone + Send + Sync + 'static,
        R: Cacheable,
        F: Front<J, R>,
        S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        let stack = ServiceBuilder::new()
            .layer(CachedFlightLayer::detached(
                self.cache.clone(),
                self.cached_flight,
                DetachLayer::new(upstream, name, self.detached.clone(), self.metrics.clone()),
            ))
            .service(inner);
        front.wrap(stack)
    }

    /// Steps 2 to 5: one upstream call, measured, behind the breaker, retried.
    pub fn guarded<J, R, S>(
        &self,
        operation: Operation,
        guard: &Guard,
        client: S,
    ) -> impl Service<J, Response = Served<R>, Error = UpstreamError, Future: Send + 'static> + Clone + Send + Sync + 'static
    where
        J: Clone + Send + Sync + 'static,
        R: Send + 'static,
        S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        ServiceBuilder::new()
            .layer(AiMetricsLayer::new(operation, self.metrics.clone()))
            .layer(CircuitBreakerLayer::new(guard.breaker.clone()))
            .layer(guard.retry.clone())
            .service(client)
    }
}

/// The same order for a fallback chain, split where the chain sits: the cached flight (and its
/// detached call) above it, one flight and one lookup of every link's key for the whole chain;
/// each link below it with its own AI metrics, breaker, retired-model alarm, retry and client.
impl Layers {
    /// One link of a chain: the AI metrics, breaker, retry and client of the order above, with the retired-model alarm
    /// between the breaker and the retries (a 404 is not retried, so it is seen once).
    pub fn link<J, R, S>(
        &self,
        operation: Operation,
        provider: Upstream,
        guard: &Guard,
        health: Option<ModelHealthLayer>,
        client: S,
    ) -> BoxCloneSyncService<J, Served<R>, UpstreamError>
    where
        J: Clone + Send + 'static,
        R: Send + 'static,
        S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        // Boxed before the optional alarm, so both arms of it are one service type.
        let client = BoxCloneSyncService::new(ServiceBuilder::new().layer(guard.retry.clone()).service(client));
        BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(AiMetricsLayer::for_provider(operation, provider, self.metrics.clone()))
                .layer(CircuitBreakerLayer::new(guard.breaker.clone()))
                .option_layer(health)
                .service(client),
        )
    }

    /// The front and the cached flight of the order above over a chain of links built by
    /// [`Layers::link`].
    pub fn over_chain<J, R, F>(
        &self,
        front: F,
        name: &'static str,
        upstream: Upstream,
        chain: FallbackChain<J, R>,
    ) -> Stack<J, R>
    where
        J: CacheKeyed + Clone + Send + Sync + 'static,
        R: Cacheable,
        F: Front<J, R>,
    {
        let stack = ServiceBuilder::new()
            .layer(CachedFlightLayer::detached(
                self.cache.clone(),
                self.cached_flight,
                DetachLayer::new(upstream, name, self.detached.clone(), self.metrics.clone()),
            ))
            .service(chain);
        front.wrap(stack)
    }
}
