//! The one link to Redis that the cache, the cross-instance single-flight and the distributed
//! rate limiter share.
//!
//! Redis is an optimisation here, never a dependency of a request: every operation has a hard
//! timeout, a failure is reported to the caller as an error to treat as "no Redis", and the link
//! state (up/down) is logged once per change rather than once per request. The underlying
//! `ConnectionManager` is lazy and reconnects on its own, so Redis coming back is picked up
//! without a restart.
//!
//! Two things keep that cheap when Redis is in trouble, and Redis's return quick to notice:
//! - after a failure to reach Redis, operations are skipped (an immediate `BackingOff` error) for
//!   a back-off of one second; once it ends a single operation tries Redis again while the others
//!   keep skipping. A hung Redis (connects, never answers) thus costs one op timeout per second
//!   instead of one per cache step of every request. The back-off does not grow: a longer one
//!   only delays noticing that Redis is back (cross-instance hits, shared limits), and one try a
//!   second per instance is nothing to a Redis that is up, or to one that is down;
//! - a background PING keeps the health gauge and `is_up` true to Redis even on an idle
//!   instance: every 5 s while Redis answers, every back-off period while it does not, so an
//!   idle instance too sees Redis return within about a second, and the PING ends the back-off.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use super::backoff::{Admission, Backoff};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RedisLinkError {
    #[error("redis operation timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Not attempted: Redis failed recently and the link is backing off.
    #[error("redis skipped: backing off after a recent failure")]
    BackingOff,
}

/// How the link bounds, probes and backs off. `LinkOptions::new(op_timeout)` gives the
/// production defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOptions {
    /// Outer bound on one operation, connect included.
    pub op_timeout: Duration,
    /// Period of the background health PING while Redis answers; while it does not, the PING
    /// runs every `backoff_max`. `None`: no background probe.
    pub health_every: Option<Duration>,
    /// First back-off after a failure; doubles up to `backoff_max` while failures continue.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl LinkOptions {
    pub const DEFAULT_HEALTH_EVERY: Duration = Duration::from_secs(5);
    /// Redis answering again is noticed within this (plus one operation).
    pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(1);

    pub fn new(op_timeout: Duration) -> Self {
        Self {
            op_timeout,
            health_every: Some(Self::DEFAULT_HEALTH_EVERY),
            backoff_initial: Self::DEFAULT_BACKOFF_INITIAL,
            backoff_max: Self::DEFAULT_BACKOFF_MAX,
        }
    }
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
    backoff: Mutex<Backoff>,
    /// Dropped with the last clone of the link, which wakes the health probe so it ends at once
    /// rather than at its next tick.
    _stop_probe: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RedisLink {
    /// Does not connect: the first operation (or the first health PING) does. An unparsable URL
    /// is a configuration error.
    pub fn new(url: &str, op_timeout: Duration, metrics: Metrics) -> Result<Self, redis::RedisError> {
        Self::with_options(url, LinkOptions::new(op_timeout), metrics)
    }

    /// Like `new`, with every knob. The health probe needs a Tokio runtime: built outside one,
    /// the link works but has no background probe.
    pub fn with_options(url: &str, options: LinkOptions, metrics: Metrics) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.op_timeout))
            .set_response_timeout(Some(options.op_timeout))
            // One quick reconnect attempt per failed operation; the next operation tries again.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        metrics.service_health_status.with_label_values(&["redis"]).set(0);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let probe = options.health_every.zip(runtime);
        let (stop_probe, stopped) = match probe {
            Some(_) => {
                let (stop, stopped) = tokio::sync::oneshot::channel();
                (Some(stop), Some(stopped))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            manager,
            op_timeout: options.op_timeout,
            up: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            url_for_logs: redact(url),
            metrics,
            backoff: Mutex::new(Backoff::new(options.backoff_initial, options.backoff_max)),
            _stop_probe: stop_probe,
        });
        if let (Some((every, runtime)), Some(stopped)) = (probe, stopped) {
            runtime.spawn(health_probe(Arc::downgrade(&inner), every, options.backoff_max, stopped));
        }
        Ok(Self { inner })
    }

    /// Run one operation on a clone of the multiplexed connection, bounded by the op timeout,
    /// and record the outcome in the link's health. While the link backs off, fails at once
    /// with `BackingOff` without touching Redis (counted in `failures`).
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisLinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let admission = self.inner.backoff.lock().admit(Instant::now());
        let trial = match admission {
            Admission::Skip => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                return Err(RedisLinkError::BackingOff);
            }
            Admission::Go => None,
            Admission::Trial => Some(TrialGuard { inner: &self.inner, armed: true }),
        };
        // Boxed: the command's future is large and short-lived, and callers' futures often live
        // for a whole upstream call (see `cache::tiered`).
        let result = Box::pin(self.execute(op)).await;
        if let Some(mut trial) = trial {
            // `execute` recorded the outcome, which ended the trial.
            trial.armed = false;
        }
        result
    }

    /// Whether the last operation reached Redis.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// Operations that failed (or were skipped while backing off) since start.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// The URL without its password, for health output and logs.
    pub fn url_for_logs(&self) -> &str {
        &self.inner.url_for_logs
    }

    /// One operation, whatever the back-off says.
    async fn execute<T, F, Fut>(&self, op: F) -> Result<T, RedisLinkError>
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

    /// The health PING: probes Redis even while backing off, so a recovery ends the back-off.
    async fn probe(&self) {
        let _ = self.execute(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await;
    }

    fn observe(&self, error: Option<&RedisLinkError>) {
        if error.is_some() {
            self.inner.failures.fetch_add(1, Ordering::Relaxed);
        }
        // A command Redis refused (wrong type, out of memory, script error) still proves it is
        // reachable: that neither marks the link down nor starts a back-off.
        let reached = error.is_none_or(|error| !is_link_failure(error));
        self.inner.backoff.lock().record(reached, Instant::now());
        let was_up = self.inner.up.swap(reached, Ordering::Relaxed);
        if was_up != reached {
            self.inner.metrics.service_health_status.with_label_values(&["redis"]).set(i64::from(reached));
            match error {
                Some(error) if !reached => tracing::warn!(
                    redis = %self.inner.url_for_logs,
                    %error,
                    "redis unreachable; serving from other tiers and local limits until it returns"
                ),
                _ => tracing::info!(redis = %self.inner.url_for_logs, "redis reachable"),
            }
        }
    }
}

/// Whether an error says Redis could not be reached or did not answer in time, as opposed to
/// Redis answering with an error.
fn is_link_failure(error: &RedisLinkError) -> bool {
    match error {
        RedisLinkError::Timeout(_) | RedisLinkError::BackingOff => true,
        RedisLinkError::Redis(error) => {
            let answered = matches!(
                error.kind(),
                redis::ErrorKind::Server(_) | redis::ErrorKind::Extension | redis::ErrorKind::UnexpectedReturnType
            ) && matches!(error.retry_method(), redis::RetryMethod::NoRetry);
            !answered
        }
    }
}

/// Pings until the link is gone: every `up_every` while Redis answers, every `down_every` while
/// it does not. Holds the link only while a PING runs, so the link's lifetime stays its users'.
async fn health_probe(
    link: Weak<Inner>,
    up_every: Duration,
    down_every: Duration,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(wait) => {}
        }
        let Some(inner) = link.upgrade() else { return };
        let link_now = RedisLink { inner };
        link_now.probe().await;
        wait = if link_now.is_up() { up_every } else { down_every.min(up_every) };
    }
}

/// Ends a trial that was cancelled before it could report, so the next operation tries instead.
struct TrialGuard<'a> {
    inner: &'a Inner,
    armed: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.backoff.lock().trial = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn redis_answering_with_an_error_is_not_a_link_failure() {
        let refused =
            redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "WRONGTYPE"));
        assert!(!is_link_failure(&RedisLinkError::Redis(refused)));
        let io = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_link_failure(&RedisLinkError::Redis(io)));
        assert!(is_link_failure(&RedisLinkError::Timeout(SECOND)));
    }

    /// A port that refuses connections: bound, then closed.
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        format!("redis://127.0.0.1:{port}/0")
    }

    fn quiet_options(op_timeout: Duration) -> LinkOptions {
        LinkOptions { health_every: None, ..LinkOptions::new(op_timeout) }
    }

    async fn get(link: &RedisLink) -> Result<Option<String>, RedisLinkError> {
        link.run(|mut conn| async move { redis::cmd("GET").arg("k").query_async(&mut conn).await }).await
    }

    /// The operation went to Redis (and failed, there being no Redis), rather than being skipped.
    fn attempted_and_failed(result: &Result<Option<String>, RedisLinkError>) -> bool {
        matches!(result, Err(RedisLinkError::Timeout(_) | RedisLinkError::Redis(_)))
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_redis_is_tried_again_only_when_each_back_off_ends() {
        let metrics = Metrics::new();
        // A doubling back-off, as the link can be configured (its default stays at one second).
        let options = LinkOptions { backoff_max: 10 * SECOND, ..quiet_options(SECOND / 4) };
        let link = RedisLink::with_options(&closed_port_url(), options, metrics).expect("valid url");
        assert!(attempted_and_failed(&get(&link).await), "the first operation tries");
        let failed_at = Instant::now();
        assert!(matches!(get(&link).await, Err(RedisLinkError::BackingOff)));
        assert!(!link.is_up());

        tokio::time::advance((failed_at + SECOND).saturating_duration_since(Instant::now())).await;
        assert!(attempted_and_failed(&get(&link).await), "tried again after 1 s");
        let failed_again_at = Instant::now();
        tokio::time::advance(SECOND).await;
        assert!(matches!(get(&link).await, Err(RedisLinkError::BackingOff)), "the second back-off is 2 s");
        tokio::time::advance((failed_again_at + 2 * SECOND).saturating_duration_since(Instant::now())).await;
        assert!(attempted_and_failed(&get(&link).await), "tried again after 2 s");
        assert_eq!(link.failures(), 5, "skipped operations count as failures");
    }

    #[tokio::test]
    async fn a_hung_redis_costs_one_timeout_then_operations_skip_it() {
        // Accepts connections and never answers, as a wedged Redis or a black-holing proxy does.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("redis://{}/0", listener.local_addr().expect("address"));
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let metrics = Metrics::new();
        let link =
            RedisLink::with_options(&url, quiet_options(Duration::from_millis(200)), metrics.clone()).expect("url");

        let first = get(&link).await;
        assert!(attempted_and_failed(&first), "the first operation waits for Redis and fails: {first:?}");
        for _ in 0..50 {
            assert!(matches!(get(&link).await, Err(RedisLinkError::BackingOff)), "skipped, not attempted");
        }
        assert!(!link.is_up());
        assert_eq!(link.failures(), 51);
        assert_eq!(metrics.service_health_status.with_label_values(&["redis"]).get(), 0);
        accepting.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_abandoned_by_its_caller_lets_the_next_operation_try() {
        // Bound but never accepting: the kernel completes connections, nothing ever answers.
        let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("redis://{}/0", hung.local_addr().expect("address"));
        let link = RedisLink::with_options(&url, quiet_options(SECOND), Metrics::new()).expect("valid url");
        assert!(attempted_and_failed(&get(&link).await));
        tokio::time::advance(2 * SECOND).await;
        // The caller gives up (its request was dropped) while its trial operation is pending.
        let abandoned = tokio::time::timeout(Duration::from_millis(1), get(&link)).await;
        assert!(abandoned.is_err(), "the trial was still pending: {abandoned:?}");
        assert!(attempted_and_failed(&get(&link).await), "not stuck skipping behind a trial that will never report");
    }

    #[tokio::test(start_paused = true)]
    async fn while_redis_is_down_an_idle_link_probes_it_every_second() {
        let options = LinkOptions { health_every: Some(5 * SECOND), ..LinkOptions::new(SECOND / 4) };
        let link = RedisLink::with_options(&closed_port_url(), options, Metrics::new()).expect("url");
        // Let the first probe run, then count the probes of the next ten seconds: each failed.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let before = link.failures();
        for _ in 0..100 {
            tokio::time::sleep(SECOND / 10).await;
        }
        let probes = link.failures() - before;
        assert!((9..=11).contains(&probes), "{probes} probes in 10 s, where every 5 s would make 2");
    }

    #[tokio::test]
    async fn the_health_probe_ends_when_the_last_link_is_dropped() {
        let metrics = Metrics::new();
        let options = LinkOptions { health_every: Some(Duration::from_millis(20)), ..LinkOptions::new(SECOND) };
        let link = RedisLink::with_options(&closed_port_url(), options, metrics).expect("url");
        let clone = link.clone();
        let runtime = tokio::runtime::Handle::current();
        assert!(runtime.metrics().num_alive_tasks() >= 1, "the probe runs");
        drop(link);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(runtime.metrics().num_alive_tasks() >= 1, "a clone still uses the link");
        drop(clone);
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        while runtime.metrics().num_alive_tasks() > 0 {
            assert!(std::time::Instant::now() < give_up, "the probe outlived its link");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
