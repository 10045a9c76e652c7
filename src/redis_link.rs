//! The one link to Redis that the cache, the cross-instance single-flight and the distributed
//! rate limiter share.
//!
//! Redis is an optimisation here, never a dependency of a request: every operation has a hard
//! timeout, a failure is reported to the caller as an error to treat as "no Redis", and the link
//! state (up/down) is logged once per change rather than once per request. The underlying
//! `ConnectionManager` is lazy and reconnects on its own, so Redis coming back is picked up
//! without a restart.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RedisLinkError {
    #[error("redis operation timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Cheap to clone; all clones share one connection and one health state.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    /// Outer bound on one operation, connect included: the manager's own timeouts do not cover
    /// every path (e.g. waiting for a reconnect), and a cache lookup must never stall a request.
    op_timeout: Duration,
    /// Last observed state; flips are logged and exported, steady state is silent.
    up: AtomicBool,
    failures: AtomicU64,
    url_for_logs: String,
    metrics: Metrics,
}

impl RedisLink {
    /// Does not connect: the first operation does. An unparsable URL is a configuration error.
    pub fn new(url: &str, op_timeout: Duration, metrics: Metrics) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(op_timeout))
            .set_response_timeout(Some(op_timeout))
            // One quick reconnect attempt per failed operation; the next operation tries again.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        metrics.service_health_status.with_label_values(&["redis"]).set(0);
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                op_timeout,
                up: AtomicBool::new(false),
                failures: AtomicU64::new(0),
                url_for_logs: redact(url),
                metrics,
            }),
        })
    }

    /// Run one operation on a clone of the multiplexed connection, bounded by the op timeout,
    /// and record the outcome in the link's health.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisLinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(self.inner.op_timeout, op(self.inner.manager.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(RedisLinkError::Redis(error)),
            Err(_) => Err(RedisLinkError::Timeout(self.inner.op_timeout)),
        };
        self.observe(result.as_ref().err());
        result
    }

    /// Whether the last operation reached Redis.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// Operations that failed since start.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// The URL without its password, for health output and logs.
    pub fn url_for_logs(&self) -> &str {
        &self.inner.url_for_logs
    }

    fn observe(&self, error: Option<&RedisLinkError>) {
        let now_up = error.is_none();
        if !now_up {
            self.inner.failures.fetch_add(1, Ordering::Relaxed);
        }
        let was_up = self.inner.up.swap(now_up, Ordering::Relaxed);
        if was_up != now_up {
            self.inner.metrics.service_health_status.with_label_values(&["redis"]).set(i64::from(now_up));
            match error {
                None => tracing::info!(redis = %self.inner.url_for_logs, "redis reachable"),
                Some(error) => tracing::warn!(
                    redis = %self.inner.url_for_logs,
                    %error,
                    "redis unreachable; serving from other tiers and local limits until it returns"
                ),
            }
        }
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
