use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Service, ServiceExt};

use crate::cache::{Cache, CacheKeyed, Cacheable, answer_key};
use crate::domain::served::{Origin, Served};
use crate::upstream::error::UpstreamError;

#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    cache: Cache,
}

impl<S> CacheService<S> {
    pub fn new(inner: S, cache: Cache) -> Self {
        Self { inner, cache }
    }
}

impl<S, J, R> Service<J> for CacheService<S>
where
    J: CacheKeyed + Send + 'static,
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Clone + Send + 'static,
    S::Future: Send,
    R: Cacheable,
{
    type Response = Served<R>;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<Served<R>, UpstreamError>>;

    /// Always ready: a hit needs nothing from the inner service, so readiness (a breaker slot,
    /// a concurrency permit) is only waited for on a miss, inside the response future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, job: J) -> Self::Future {
        // A fallback chain's job has one key per link, looked up in order before any call.
        let keys = job.chain_keys();
        let cache = self.cache.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            for (_, key) in &keys {
                if let Some((value, tier)) = cache.get::<R>(key).await {
                    return Ok(Served { value, origin: Origin::Cache { tier } });
                }
            }
            let served = inner.oneshot(job).await?;
            if served.origin == Origin::Upstream && served.value.is_cacheable() {
                // Under the key of the model that made it, never the first link's by default.
                if let Some(key) = answer_key(&keys, &served.value) {
                    cache.set(key, &served.value).await;
                }
            }
            Ok(served)
        })
    }
}
