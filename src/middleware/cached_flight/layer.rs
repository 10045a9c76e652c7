use std::sync::Arc;

use tower::Layer;

use super::CachedFlightConfig;
use super::flights::Flights;
use super::service::CachedFlightService;
use crate::cache::Cache;
use crate::middleware::detach::DetachLayer;

/// Wraps `Service<J, Response = Served<R>, Error = UpstreamError>` (`J: CacheKeyed`,
/// `R: Cacheable`). Every service made from one layer shares one registry of calls in flight;
/// the `Cache` supplies the tiers and the Redis link (lease).
#[derive(Clone)]
pub struct CachedFlightLayer {
    flights: Arc<Flights>,
}

impl CachedFlightLayer {
    pub fn new(cache: Cache, config: CachedFlightConfig) -> Self {
        Self { flights: Arc::new(Flights::new(cache, config, None)) }
    }

    /// Run each miss's lookup, call and store on a detached task (see `middleware::detach`).
    pub fn detached(cache: Cache, config: CachedFlightConfig, detach: DetachLayer) -> Self {
        Self { flights: Arc::new(Flights::new(cache, config, Some(detach))) }
    }
}

impl<S> Layer<S> for CachedFlightLayer {
    type Service = CachedFlightService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CachedFlightService::new(inner, self.flights.clone())
    }
}
