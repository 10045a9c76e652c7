//! The breaker's state machine, shared by every clone of the service that guards one upstream.
//!
//! Flow:
//! 1. Closed: every call goes through. `failure_threshold` consecutive upstream failures open it.
//! 2. Open: calls fail at once with `CircuitOpen` and the time left; nothing reaches the upstream.
//! 3. After `recovery_timeout` the next call finds it half-open: up to `half_open_max_probes`
//!    calls go through as probes, every other call fails fast (probes are not queued behind).
//! 4. A probe that succeeds closes it; a probe that fails opens it again with a fresh timer. A
//!    probe whose caller gave up (future dropped) frees its slot and decides nothing.
//!
//! Why a consecutive count and not a failure-rate sliding window (resilience4j's default): the
//! contract's knob is `BREAKER_FAILURE_THRESHOLD` consecutive failures, and at our traffic (a
//! learner app, a few upstream calls a second at most) a rate window either needs a minimum
//! number of calls that quiet hours never reach, or opens on two failures out of three calls.
//! A consecutive count reacts in a bounded number of calls whatever the traffic, costs O(1)
//! memory, and is easy to reason about in a test. Its weakness, an upstream failing 50% of
//! calls never opening it, is covered by the retry layer below it: a call only counts as failed
//! after its retries (or its whole deadline) are spent, so intermittent failures are absorbed
//! there and what reaches the breaker is "this upstream is not answering", which is what it is
//! for.
//!
//! Outcomes of calls admitted in an earlier state (a slow call admitted while closed that fails
//! after the breaker opened) are ignored: each transition bumps a generation and a permit only
//! counts in the generation that admitted it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamError};

/// What a caller refused in half-open state is told to wait: a probe is in flight and will
/// settle the state within one upstream call.
const HALF_OPEN_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive upstream failures that open the breaker (`BREAKER_FAILURE_THRESHOLD`); 0 is
    /// read as 1.
    pub failure_threshold: u32,
    /// How long it stays open before probing (`BREAKER_RECOVERY_TIMEOUT_SECONDS`).
    pub recovery_timeout: Duration,
    /// Concurrent probes admitted while half-open; 0 is read as 1.
    pub half_open_max_probes: u32,
}

impl BreakerConfig {
    pub fn new(failure_threshold: u32, recovery_timeout: Duration) -> Self {
        Self { failure_threshold, recovery_timeout, half_open_max_probes: 1 }
    }
}

impl Default for BreakerConfig {
    /// The contract's defaults: 5 failures, 60 s.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(60))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// `circuit_breaker_state` gauge value.
    fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    fn tag(self) -> u64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

/// Cheap to clone; all clones (and every service built on it) share one state.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    /// The `service`/`upstream` label of its gauges and logs: the upstream's name, or a
    /// fallback link's own (`gemini:<model>`), so each link of a chain is seen apart.
    label: Arc<str>,
    failure_threshold: u32,
    recovery_timeout: Duration,
    half_open_max_probes: u32,
    /// `generation << 2 | state tag`, published after every transition so admission while
    /// closed or open needs one atomic load and no lock: an open breaker under load refuses
    /// at request rate and must cost next to nothing.
    admission: AtomicU64,
    /// End of the current open period in ms since `epoch`; written before `admission` says
    /// open, so a reader that saw "open" sees this period's end or a later one.
    open_until_ms: AtomicU64,
    /// Tokio's clock (not std's) so paused-time tests drive the recovery timer.
    epoch: Instant,
    /// Authoritative state. Taken for transitions and outcomes only: outcomes come at upstream
    /// call rate and the lock is held for a few instructions, never across an await.
    core: Mutex<Core>,
    metrics: Metrics,
}

struct Core {
    state: BreakerState,
    generation: u64,
    consecutive_failures: u32,
    /// Wall-clock time of the last opening, for the health endpoint.
    opened_at: Option<SystemTime>,
    open_until: Instant,
    probes_in_flight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Admitted while closed.
    Normal,
    /// Admitted while half-open; holds one of the probe slots.
    Probe,
}

/// A call's admission. Settled with the call's outcome; dropped unsettled (the caller gave
/// up), it frees its probe slot and decides nothing.
pub(crate) struct Permit {
    breaker: Breaker,
    role: Role,
    generation: u64,
    settled: bool,
}

impl Breaker {
    pub fn new(upstream: Upstream, config: BreakerConfig, metrics: Metrics) -> Self {
        Self::labelled(upstream, upstream.as_str(), config, metrics)
    }

    /// A breaker whose gauges and logs say `label` rather than the upstream's name: one per
    /// link of a fallback chain, several of which may call the same upstream.
    pub fn labelled(upstream: Upstream, label: &str, config: BreakerConfig, metrics: Metrics) -> Self {
        let now = Instant::now();
        let breaker = Self {
            inner: Arc::new(Inner {
                upstream,
                label: label.into(),
                failure_threshold: config.failure_threshold.max(1),
                recovery_timeout: config.recovery_timeout,
                half_open_max_probes: config.half_open_max_probes.max(1),
                admission: AtomicU64::new(encode(BreakerState::Closed, 0)),
                open_until_ms: AtomicU64::new(0),
                epoch: now,
                core: Mutex::new(Core {
                    state: BreakerState::Closed,
                    generation: 0,
                    consecutive_failures: 0,
                    opened_at: None,
                    open_until: now,
                    probes_in_flight: 0,
                }),
                metrics,
            }),
        };
        breaker.export(BreakerState::Closed);
        breaker
    }

    pub fn upstream(&self) -> Upstream {
        self.inner.upstream
    }

    /// Its `service` label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The current state; an open breaker whose timer ran out reports (and becomes) half-open.
    pub fn state(&self) -> BreakerState {
        let mut core = self.inner.core.lock();
        self.refresh(&mut core, Instant::now());
        core.state
    }

    /// This breaker for `/health/upstreams`.
    pub fn snapshot(&self) -> serde_json::Value {
        let now = Instant::now();
        let mut core = self.inner.core.lock();
        self.refresh(&mut core, now);
        let open = core.state == BreakerState::Open;
        serde_json::json!({
            "upstream": &*self.inner.label,
            "state": core.state,
            "consecutive_failures": core.consecutive_failures,
            "failure_threshold": self.inner.failure_threshold,
            "opened_at": core
                .opened_at
                .filter(|_| core.state != BreakerState::Closed)
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map(|since_epoch| since_epoch.as_secs()),
            "retry_in_seconds": open.then(|| core.open_until.saturating_duration_since(now).as_secs_f64().ceil() as u64),
            "half_open_probes_in_flight": core.probes_in_flight,
        })
    }

    /// Admit a call or refuse it with `CircuitOpen`. Lock-free while closed, and while open
    /// until the recovery timer runs out.
    pub(crate) fn try_acquire(&self) -> Result<Permit, UpstreamError> {
        let (state, generation) = decode(self.inner.admission.load(Ordering::Acquire));
        match state {
            BreakerState::Closed => return Ok(self.permit(Role::Normal, generation)),
            BreakerState::Open => {
                let now_ms = self.millis_since_epoch(Instant::now());
                let until_ms = self.inner.open_until_ms.load(Ordering::Acquire);
                if now_ms < until_ms {
                    return Err(UpstreamError::CircuitOpen {
                        upstream: self.inner.upstream,
                        retry_after: Duration::from_millis(until_ms - now_ms),
                    });
                }
            }
            BreakerState::HalfOpen => {}
        }
        self.acquire_slow()
    }

    fn acquire_slow(&self) -> Result<Permit, UpstreamError> {
        let now = Instant::now();
        let mut core = self.inner.core.lock();
        self.refresh(&mut core, now);
        match core.state {
            BreakerState::Closed => Ok(self.permit(Role::Normal, core.generation)),
            BreakerState::Open => Err(UpstreamError::CircuitOpen {
                upstream: self.inner.upstream,
                retry_after: core.open_until.saturating_duration_since(now),
            }),
            BreakerState::HalfOpen if core.probes_in_flight < self.inner.half_open_max_probes => {
                core.probes_in_flight += 1;
                Ok(self.permit(Role::Probe, core.generation))
            }
            BreakerState::HalfOpen => {
                Err(UpstreamError::CircuitOpen { upstream: self.inner.upstream, retry_after: HALF_OPEN_RETRY_AFTER })
            }
        }
    }

    fn permit(&self, role: Role, generation: u64) -> Permit {
        Permit { breaker: self.clone(), role, generation, settled: false }
    }

    /// Record a settled call. `failed`: the upstream did not answer sanely.
    fn settle(&self, role: Role, generation: u64, failed: bool) {
        let mut core = self.inner.core.lock();
        if core.generation != generation {
            return;
        }
        if role == Role::Probe {
            core.probes_in_flight = core.probes_in_flight.saturating_sub(1);
        }
        match (core.state, role, failed) {
            (BreakerState::Closed, Role::Normal, false) => core.consecutive_failures = 0,
            (BreakerState::Closed, Role::Normal, true) => {
                core.consecutive_failures = core.consecutive_failures.saturating_add(1);
                if core.consecutive_failures >= self.inner.failure_threshold {
                    self.open(&mut core, Instant::now());
                }
            }
            (BreakerState::HalfOpen, Role::Probe, false) => self.close(&mut core),
            (BreakerState::HalfOpen, Role::Probe, true) => {
                core.consecutive_failures = core.consecutive_failures.saturating_add(1);
                self.open(&mut core, Instant::now());
            }
            // A generation only ever admits the role of its own state.
            _ => {}
        }
    }

    fn abandon(&self, role: Role, generation: u64) {
        if role != Role::Probe {
            return;
        }
        let mut core = self.inner.core.lock();
        if core.generation == generation {
            core.probes_in_flight = core.probes_in_flight.saturating_sub(1);
        }
    }

    /// Open -> half-open once the recovery timer has run out.
    fn refresh(&self, core: &mut Core, now: Instant) {
        if core.state == BreakerState::Open && now >= core.open_until {
            self.transition(core, BreakerState::HalfOpen);
            tracing::info!(upstream = &*self.inner.label, "circuit half-open: probing the upstream");
        }
    }

    fn open(&self, core: &mut Core, now: Instant) {
        let reopened = core.state == BreakerState::HalfOpen;
        core.open_until = now + self.inner.recovery_timeout;
        core.opened_at = Some(SystemTime::now());
        self.inner.open_until_ms.store(self.millis_since_epoch(core.open_until), Ordering::Release);
        self.transition(core, BreakerState::Open);
        tracing::warn!(
            upstream = &*self.inner.label,
            consecutive_failures = core.consecutive_failures,
            retry_in_seconds = self.inner.recovery_timeout.as_secs(),
            reopened,
            "circuit open: failing fast instead of calling the upstream"
        );
    }

    fn close(&self, core: &mut Core) {
        core.consecutive_failures = 0;
        core.opened_at = None;
        self.transition(core, BreakerState::Closed);
        tracing::info!(upstream = &*self.inner.label, "circuit closed: the upstream answered a probe");
    }

    fn transition(&self, core: &mut Core, to: BreakerState) {
        core.state = to;
        // The admission word keeps 62 bits of it; wrapping there keeps both views equal.
        core.generation = core.generation.wrapping_add(1) & (u64::MAX >> 2);
        core.probes_in_flight = 0;
        self.inner.admission.store(encode(to, core.generation), Ordering::Release);
        self.export(to);
    }

    fn export(&self, state: BreakerState) {
        let upstream = &*self.inner.label;
        let metrics = &self.inner.metrics;
        metrics.circuit_breaker_state.with_label_values(&[upstream]).set(state.gauge());
        metrics.service_health_status.with_label_values(&[upstream]).set(i64::from(state != BreakerState::Open));
    }

    fn millis_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.inner.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

impl Permit {
    /// Settle with the call's result. Only upstream failures count against the upstream: a
    /// rejected request, blocked content or an unreadable body all prove it is answering.
    pub(crate) fn settle<T>(mut self, result: &Result<T, UpstreamError>) {
        self.settled = true;
        let failed = matches!(result, Err(error) if error.is_upstream_failure());
        self.breaker.settle(self.role, self.generation, failed);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.abandon(self.role, self.generation);
        }
    }
}

fn encode(state: BreakerState, generation: u64) -> u64 {
    (generation << 2) | state.tag()
}

fn decode(word: u64) -> (BreakerState, u64) {
    let state = match word & 0b11 {
        0 => BreakerState::Closed,
        1 => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    };
    (state, word >> 2)
}
