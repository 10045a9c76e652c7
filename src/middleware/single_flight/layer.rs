use std::sync::Arc;

use tower::Layer;

use super::SingleFlightConfig;
use super::flights::Flights;
use super::service::SingleFlightService;
use crate::cache::Cache;

/// Wraps `Service<J, Response = Served<R>, Error = UpstreamError>` (`J: CacheKeyed`,
/// `R: Cacheable`). Every service made from one layer shares one registry of calls in flight;
/// the `Cache` supplies the Redis link (lease) and the reads that see other instances' results.
#[derive(Clone)]
pub struct SingleFlightLayer {
    flights: Arc<Flights>,
}

impl SingleFlightLayer {
    pub fn new(cache: Cache, config: SingleFlightConfig) -> Self {
        Self { flights: Arc::new(Flights::new(cache, config)) }
    }
}

impl<S> Layer<S> for SingleFlightLayer {
    type Service = SingleFlightService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SingleFlightService::new(inner, self.flights.clone())
    }
}
