use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Whole budget of one call, retries and waits included (`UPSTREAM_TIMEOUT_SECONDS`).
    pub deadline: Duration,
    /// Attempts including the first; 0 is read as 1.
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles for each further retry.
    pub base_delay: Duration,
    /// Cap on the backoff ceiling.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Defaults for everything but the deadline.
    pub fn new(deadline: Duration) -> Self {
        Self { deadline, ..Self::default() }
    }

    /// Backoff ceiling before retry number `retry` (1 for the first retry), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base_delay.saturating_mul(1u32 << doublings).min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    /// 3 attempts, 250 ms doubling to at most 4 s: with the contract's 30 s deadline that
    /// leaves room for three slow attempts (UPSTREAMS.md section 3 suggests 3 to 4 attempts).
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

/// Turns a backoff ceiling into the actual wait. Full jitter (uniform in `0..=ceiling`) spreads
/// the retries of callers that failed together, so they do not hit a recovering upstream in
/// lockstep; tests use `none()` for exact waits.
#[derive(Clone)]
pub struct Jitter(Arc<dyn Fn(Duration) -> Duration + Send + Sync>);

impl Jitter {
    /// Uniform in `0..=ceiling` (AWS's "full jitter").
    pub fn full() -> Self {
        Self::from_fn(|ceiling| {
            let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rand::rng().random_range(0..=nanos))
        })
    }

    /// The ceiling itself: deterministic waits.
    pub fn none() -> Self {
        Self::from_fn(|ceiling| ceiling)
    }

    /// Any rule; its result is capped at the ceiling.
    pub fn from_fn(rule: impl Fn(Duration) -> Duration + Send + Sync + 'static) -> Self {
        Self(Arc::new(rule))
    }

    pub(crate) fn apply(&self, ceiling: Duration) -> Duration {
        (self.0)(ceiling).min(ceiling)
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::full()
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jitter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<_> = (1..=7).map(|retry| policy.backoff(retry).as_millis()).collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn full_jitter_never_exceeds_the_ceiling() {
        let jitter = Jitter::full();
        for _ in 0..1000 {
            assert!(jitter.apply(Duration::from_millis(500)) <= Duration::from_millis(500));
        }
        assert_eq!(jitter.apply(Duration::ZERO), Duration::ZERO);
    }
}
