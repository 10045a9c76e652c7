//! The link to one Redis store (the cache's, or the limits' when they have their own), shared by
//! the cache, the cross-instance single-flight and the distributed rate limiter.
//!
//! Redis is an optimisation here, never a dependency of a request: every operation has a hard
//! timeout, a failure is reported to the caller as an error to treat as "no Redis", and the link
//! state (up, degraded, down) is logged once per change rather than once per request. The
//! connections behind it are lazy and reconnect on their own, so Redis coming back is picked up
//! without a restart.
//!
//! Two things keep that cheap when Redis is in trouble, and Redis's return quick to notice:
//! - after a failure to reach a part of Redis (the endpoint, or a cluster's range of slots; see
//!   `health`), operations on that part are skipped (an immediate `BackingOff` error) for a
//!   back-off of one second; once it ends a single operation tries again while the others keep
//!   skipping. A hung Redis (connects, never answers) thus costs one op timeout per second
//!   instead of one per cache step of every request. The back-off does not grow: a longer one
//!   only delays noticing that Redis is back, and one try a second per instance is nothing to a
//!   Redis that is up, or to one that is down;
//! - a background PING of every part keeps the health gauge true to Redis even on an idle
//!   instance: every 5 s while all answer, every back-off period while some do not, so an idle
//!   instance too sees Redis return within about a second, and the PING ends the back-off.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{Gauge, IntGauge};

use super::backoff::Admission;
use super::connection::{Backend, Connection};
use super::health::{CLUSTER_PARTS, Parts, State};
use super::keys::KeySpace;
use super::topology::RedisTarget;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RedisLinkError {
    #[error("redis operation timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Not attempted: this part of Redis failed recently and the link is backing off.
    #[error("redis skipped: backing off after a recent failure")]
    BackingOff,
}

/// How old a probe `health` answers from may be. The background probe runs every 5 s while
/// Redis answers and every second while some of it does not, so an instance with that probe
/// seldom probes for `health` at all.
pub const HEALTH_FRESH_FOR: Duration = Duration::from_secs(5);

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
    /// The `service` label of its health metrics: `redis`, or `redis_limits` for a limits store.
    pub service: &'static str,
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
            service: "redis",
        }
    }
}

/// Cheap to clone; all clones share one connection and one health state.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    topology: &'static str,
    keys: KeySpace,
    /// Outer bound on one operation, connect included: the drivers' own timeouts do not cover
    /// every path (e.g. waiting for a reconnect), and a cache lookup must never stall a request.
    op_timeout: Duration,
    parts: Parts,
    /// One key per part, read by the health probe.
    probe_keys: Vec<String>,
    failures: AtomicU64,
    service: &'static str,
    /// The state last logged and exported: flips are logged once, steady state is silent.
    last_state: Mutex<State>,
    health_gauge: IntGauge,
    coverage_gauge: Gauge,
    /// When a probe of every part last ended (background or `health`), and the lock that makes
    /// concurrent `health` calls share one probe: the endpoint needs no key, so a flood of it
    /// must not become a flood of Redis commands (64 per call on a cluster).
    last_probe: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// Dropped with the last clone of the link, which wakes the health probe so it ends at once
    /// rather than at its next tick.
    _stop_probe: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RedisLink {
    /// Does not connect: the first operation (or the first health PING) does. An unusable
    /// target (an unparsable URL, an unreadable CA file) is a configuration error.
    pub fn new(target: &RedisTarget, op_timeout: Duration, metrics: Metrics) -> Result<Self, redis::RedisError> {
        Self::with_options(target, LinkOptions::new(op_timeout), metrics)
    }

    /// Like `new`, with every knob. The health probe needs a Tokio runtime: built outside one,
    /// the link works but has no background probe.
    pub fn with_options(
        target: &RedisTarget,
        options: LinkOptions,
        metrics: Metrics,
    ) -> Result<Self, redis::RedisError> {
        let backend = Backend::open(target, options.op_timeout)?;
        let count = if backend.is_cluster() { CLUSTER_PARTS } else { 1 };
        let parts = Parts::new(count, options.backoff_initial, options.backoff_max);
        let health_gauge = metrics.service_health_status.with_label_values(&[options.service]);
        let coverage_gauge = metrics.redis_slot_coverage.with_label_values(&[options.service]);
        health_gauge.set(0);
        coverage_gauge.set(0.0);
        let probe_keys = (0..parts.len()).map(|part| parts.probe_key(part, &target.key_prefix)).collect();
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
            backend,
            topology: target.topology.kind(),
            keys: KeySpace::new(target.key_prefix.clone()),
            op_timeout: options.op_timeout,
            parts,
            probe_keys,
            failures: AtomicU64::new(0),
            service: options.service,
            last_state: Mutex::new(State::Down),
            health_gauge,
            coverage_gauge,
            last_probe: tokio::sync::Mutex::new(None),
            _stop_probe: stop_probe,
        });
        if let (Some((every, runtime)), Some(stopped)) = (probe, stopped) {
            runtime.spawn(health_probe(Arc::downgrade(&inner), every, options.backoff_max, stopped));
        }
        Ok(Self { inner })
    }

    /// Run one operation on the connection, bounded by the op timeout, and record the outcome in
    /// the health of the part that holds `key` (the first key the operation touches). While that
    /// part backs off, fails at once with `BackingOff` without touching Redis (counted in
    /// `failures`).
    pub async fn run<T, F, Fut>(&self, key: &str, op: F) -> Result<T, RedisLinkError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let part = self.inner.parts.of(key.as_bytes());
        let trial = match self.inner.parts.admit(part) {
            Admission::Skip => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                return Err(RedisLinkError::BackingOff);
            }
            Admission::Go => None,
            Admission::Trial => Some(TrialGuard { inner: &self.inner, part, armed: true }),
        };
        // Boxed: the command's future is large and short-lived, and callers' futures often live
        // for a whole upstream call (see `cache::tiered`).
        let result = Box::pin(self.execute(part, op)).await;
        if let Some(mut trial) = trial {
            // `execute` recorded the outcome, which ended the trial.
            trial.armed = false;
        }
        result
    }

    pub fn keys(&self) -> &KeySpace {
        &self.inner.keys
    }

    /// Whether the last operations reached Redis (some of it, on a degraded cluster).
    pub fn is_up(&self) -> bool {
        self.state() != State::Down
    }

    pub fn state(&self) -> State {
        self.inner.parts.state()
    }

    /// The share of the key space whose node answered last, 0 to 1.
    pub fn coverage(&self) -> f64 {
        self.inner.parts.coverage()
    }

    /// `single`, `cluster` or `sentinel`.
    pub fn topology(&self) -> &'static str {
        self.inner.topology
    }

    /// Operations that failed (or were skipped while backing off) since start.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// `{connected, state: up|degraded|down, topology, slot_coverage, failures}`, as of a probe
    /// at most [`HEALTH_FRESH_FOR`] old: one is made if the last (the background one's, or
    /// another call's) is older, and calls meanwhile wait for it rather than probe again. Where
    /// Redis is stays out: health endpoints need no key, and hosts tell an outsider about the
    /// network.
    pub async fn health(&self) -> serde_json::Value {
        {
            let mut last = self.inner.last_probe.lock().await;
            if last.is_none_or(|at| at.elapsed() > HEALTH_FRESH_FOR) {
                self.probe_all().await;
                *last = Some(tokio::time::Instant::now());
            }
        }
        serde_json::json!({
            "connected": self.is_up(),
            "state": self.state().as_str(),
            "topology": self.topology(),
            "slot_coverage": self.coverage(),
            "failures": self.failures(),
        })
    }

    /// Probe every part now (bounded by the op timeout each), whatever the back-off says: on
    /// one endpoint a PING, on a cluster a read of a key in each part (see `Parts::probe_key`).
    pub async fn probe(&self) {
        self.probe_all().await;
        *self.inner.last_probe.lock().await = Some(tokio::time::Instant::now());
    }

    async fn probe_all(&self) {
        self.inner.backend.refresh().await;
        let probes = self.inner.probe_keys.iter().enumerate().map(|(part, key)| {
            let cluster = self.inner.backend.is_cluster();
            self.execute(part, move |mut conn| async move {
                if cluster {
                    redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn).await.map(drop)
                } else {
                    redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop)
                }
            })
        });
        futures::future::join_all(probes).await;
    }

    /// One operation, whatever the back-off says.
    async fn execute<T, F, Fut>(&self, part: usize, op: F) -> Result<T, RedisLinkError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let connection = self.inner.backend.connection().await?;
            op(connection).await
        };
        let result = match tokio::time::timeout(self.inner.op_timeout, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(RedisLinkError::Redis(error)),
            Err(_) => Err(RedisLinkError::Timeout(self.inner.op_timeout)),
        };
        self.observe(part, result.as_ref().err());
        result
    }

    fn observe(&self, part: usize, error: Option<&RedisLinkError>) {
        let inner = &self.inner;
        if error.is_some() {
            inner.failures.fetch_add(1, Ordering::Relaxed);
        }
        // A command Redis refused (wrong type, out of memory, script error) still proves it is
        // reachable: that neither marks the part down nor starts a back-off.
        let reached = error.is_none_or(|error| !is_link_failure(error));
        if !reached {
            let timed_out = match error {
                Some(RedisLinkError::Timeout(_)) => true,
                Some(RedisLinkError::Redis(error)) => error.is_timeout(),
                _ => false,
            };
            inner.backend.failed(timed_out);
        }
        if !inner.parts.record(part, reached) {
            return;
        }
        inner.coverage_gauge.set(inner.parts.coverage());
        let after = inner.parts.state();
        if std::mem::replace(&mut *inner.last_state.lock(), after) == after {
            return;
        }
        inner.health_gauge.set(i64::from(after != State::Down));
        let (topology, service, state) = (inner.topology, inner.service, after.as_str());
        match (after, error) {
            (State::Up, _) => tracing::info!(service, topology, state, "redis reachable"),
            (_, Some(error)) if after == State::Down => tracing::warn!(
                service,
                topology,
                state,
                %error,
                "redis unreachable; serving from other tiers and local limits until it returns"
            ),
            (_, error) => tracing::warn!(
                service,
                topology,
                state,
                reachable = format!("{:.0}%", inner.parts.coverage() * 100.0),
                error = error.map(ToString::to_string),
                "part of the redis cluster unreachable; its keys are served from other tiers and local limits"
            ),
        }
    }
}

/// Whether an error says Redis could not be reached or did not answer in time, as opposed to
/// Redis answering with an error. A node that answers `READONLY` (a demoted master), or a
/// cluster that says its slot has no master now, is as good as unreachable for that part.
pub(super) fn is_link_failure(error: &RedisLinkError) -> bool {
    use redis::ServerErrorKind::{ClusterDown, MasterDown, ReadOnly, TryAgain};
    match error {
        RedisLinkError::Timeout(_) | RedisLinkError::BackingOff => true,
        RedisLinkError::Redis(error) => {
            if matches!(error.kind(), redis::ErrorKind::Server(ReadOnly | ClusterDown | MasterDown | TryAgain)) {
                return true;
            }
            let answered = matches!(
                error.kind(),
                redis::ErrorKind::Server(_) | redis::ErrorKind::Extension | redis::ErrorKind::UnexpectedReturnType
            ) && matches!(error.retry_method(), redis::RetryMethod::NoRetry);
            !answered
        }
    }
}

/// Pings until the link is gone: every `up_every` while all of Redis answers, every
/// `down_every` while some does not. Holds the link only while a PING runs, so the link's
/// lifetime stays its users'.
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
        wait = if link_now.state() == State::Up { up_every } else { down_every.min(up_every) };
    }
}

/// Ends a trial that was cancelled before it could report, so the next operation tries instead.
struct TrialGuard<'a> {
    inner: &'a Inner,
    part: usize,
    armed: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.parts.abandon_trial(self.part);
        }
    }
}
