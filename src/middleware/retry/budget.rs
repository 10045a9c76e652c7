use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

/// How many retries one upstream may take, shared by every caller (clone it into each
/// `RetryLayer` of the same upstream). Each first attempt deposits, each retry withdraws: over
/// the window, retries stay under `retry_ratio` of first attempts plus a floor of
/// `min_retries_per_second`, so an outage costs the upstream at most `1 + ratio` times the
/// normal load, and a quiet service can still retry its rare failures.
///
/// The accounting is tower's `TpsBudget` (Finagle's design), behind our own constructor that
/// clamps the arguments it would otherwise panic on.
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<TpsBudget>,
}

impl RetryBudget {
    /// `window` is clamped to 1..=60 s and `retry_ratio` to 0..=1000.
    pub fn new(window: Duration, min_retries_per_second: u32, retry_ratio: f32) -> Self {
        let window = window.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let retry_ratio = if retry_ratio.is_finite() { retry_ratio.clamp(0.0, 1000.0) } else { 0.0 };
        let min_retries_per_second = min_retries_per_second.min(i32::MAX as u32 - 1);
        Self { inner: Arc::new(TpsBudget::new(window, min_retries_per_second, retry_ratio)) }
    }

    pub(crate) fn deposit(&self) {
        self.inner.deposit();
    }

    pub(crate) fn withdraw(&self) -> bool {
        self.inner.withdraw()
    }
}

impl Default for RetryBudget {
    /// Retries may add 20% over a 10 s window, with a floor of one retry a second.
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 1, 0.2)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
