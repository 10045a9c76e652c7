use tower::Layer;

use super::service::CacheService;
use crate::cache::Cache;

/// Wraps an upstream stack (`Service<J, Response = Served<R>, Error = UpstreamError>`, with
/// `J: CacheKeyed`, `R: Cacheable`) in the cache.
#[derive(Clone)]
pub struct CacheLayer {
    cache: Cache,
}

impl CacheLayer {
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::new(inner, self.cache.clone())
    }
}
