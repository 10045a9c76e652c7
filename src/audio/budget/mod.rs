//! Bytes of recordings held at once, bounded by configuration (`AUDIO_BYTES_IN_FLIGHT`), not by
//! traffic.
//!
//! A held upload is its body plus what the normaliser makes of it: up to about 30 MB for the
//! largest and longest, against the 25 to 40 KB of a held analysis. `MAX_IN_FLIGHT` counts
//! requests, so a few dozen large uploads could fill a pod that thousands of analyses fit in.
//!
//! Each audio request carries one [`Reservation`], empty when it is admitted. It grows by what
//! the request really comes to hold, before the memory is allocated: the body's buffer as its
//! chunks arrive ([`Buffer`], for uploads and `audio_url` downloads alike), then the copies and
//! the 16 kHz output decoding makes ([`Output`], long recordings included). Nothing is reserved
//! for what a request might bring: a slow client that has sent nothing holds nothing, and a
//! class of forty small recordings holds forty small recordings.
//!
//! A growth that does not fit waits up to `AUDIO_BYTES_WAIT_MS` for bytes to come back, then
//! fails as [`Overloaded`] (503 `overloaded`, `Retry-After`). The wait is taken a step at a time
//! ([`STEP`]) from a fair semaphore, so one large growth never queues small ones behind it for
//! long, and requests that each hold a part and wait for more cannot wait forever on each other.
//! Everything a reservation holds comes back when its last handle is dropped: the request's
//! answer is sent, and any decoding or upstream call carrying its recording (the `Audio` holds
//! a handle) has ended, even for a client that went away.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

mod buffer;
mod output;

pub use buffer::Buffer;
pub use output::Output;

/// Permits count KiB: the largest budget fits `u32` many.
const UNIT: usize = 1024;
/// The most permits taken in one go while waiting: 256 KiB.
const STEP: usize = 256;
/// Multipart framing and text parts around the audio.
pub const FRAMING: usize = 256 * 1024;
/// The largest short-audio payload: 60 s of 16 kHz mono 16-bit WAV.
pub const OUTPUT: usize = 60 * 16_000 * 2 + 44;

/// The most one ordinary audio request comes to hold: the largest upload with its framing and
/// a short recording's output. The budget must hold at least this.
pub fn reservation(audio_max_bytes: usize) -> usize {
    audio_max_bytes.saturating_add(FRAMING).saturating_add(OUTPUT)
}

/// The bytes that would not fit, after waiting as long as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the recordings' memory budget stayed full")]
pub struct Overloaded;

/// The pod's budget: a handle shared by every audio request.
#[derive(Clone)]
pub struct AudioBudget {
    permits: Arc<Semaphore>,
    /// `audio_bytes_reserved`: the permits held, in bytes.
    reserved: IntGauge,
    /// `AUDIO_BYTES_WAIT_MS`: how long one growth may wait for bytes to come back.
    wait: Duration,
}

impl AudioBudget {
    pub fn new(bytes: usize, reserved: IntGauge, wait: Duration) -> Self {
        let units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(units)), reserved, wait }
    }

    /// An empty reservation for one request.
    pub fn reservation(&self) -> Reservation {
        Reservation::with(Some(self.clone()))
    }
}

/// What one request holds of the budget. Cheap to clone: clones share one count, and the bytes
/// come back when the last clone is dropped.
#[derive(Clone)]
pub struct Reservation {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None` for [`Reservation::uncounted`].
    budget: Option<AudioBudget>,
    /// A std mutex: held for a few instructions, never across an `.await`.
    held: Mutex<Held>,
}

struct Held {
    /// Bytes the request holds; the permits cover them rounded up to whole KiB.
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    fn units(&self) -> usize {
        self.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

impl Reservation {
    /// Bytes counted against no budget, never refused: for tools and tests that fetch or
    /// normalise outside the service.
    pub fn uncounted() -> Self {
        Self::with(None)
    }

    fn with(budget: Option<AudioBudget>) -> Self {
        Self { shared: Arc::new(Shared { budget, held: Mutex::new(Held { bytes: 0, permit: None }) }) }
    }

    /// Hold `bytes` more, waiting up to the budget's wait for them to be free.
    pub async fn grow(&self, bytes: usize) -> Result<(), Overloaded> {
        if bytes == 0 {
            return Ok(());
        }
        let Some(budget) = &self.shared.budget else {
            let mut held = self.lock();
            held.bytes = held.bytes.saturating_add(bytes);
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + budget.wait;
        loop {
            let missing = {
                let mut held = self.lock();
                let missing = held.bytes.saturating_add(bytes).div_ceil(UNIT).saturating_sub(held.units());
                if missing == 0 {
                    held.bytes += bytes;
                    return Ok(());
                }
                missing
            };
            let step = u32::try_from(missing.min(STEP)).unwrap_or(u32::MAX);
            let permit = match budget.permits.clone().try_acquire_many_owned(step) {
                Ok(permit) => permit,
                Err(TryAcquireError::NoPermits) => {
                    let waited = tokio::time::timeout_at(deadline, budget.permits.clone().acquire_many_owned(step));
                    // The semaphore is never closed; a request past its wait is refused.
                    waited.await.map_err(|_| Overloaded)?.map_err(|_| Overloaded)?
                }
                Err(TryAcquireError::Closed) => return Err(Overloaded),
            };
            budget.reserved.add(i64::from(step) * UNIT as i64);
            let mut held = self.lock();
            match &mut held.permit {
                Some(permits) => permits.merge(permit),
                None => held.permit = Some(permit),
            }
        }
    }

    /// Give back `bytes` the request no longer holds (a copy that was dropped).
    pub fn shrink(&self, bytes: usize) {
        let mut held = self.lock();
        held.bytes = held.bytes.saturating_sub(bytes);
        let spare = held.units().saturating_sub(held.bytes.div_ceil(UNIT));
        let freed = held.permit.as_mut().and_then(|permits| permits.split(spare));
        if let (Some(freed), Some(budget)) = (freed, &self.shared.budget) {
            budget.reserved.sub(freed.num_permits() as i64 * UNIT as i64);
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.shared.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let units = self.held.get_mut().unwrap_or_else(PoisonError::into_inner).units();
        if let Some(budget) = &self.budget {
            budget.reserved.sub(units as i64 * UNIT as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn budget(bytes: usize, wait: Duration) -> (AudioBudget, IntGauge) {
        let gauge = IntGauge::new("reserved", "test").expect("gauge");
        (AudioBudget::new(bytes, gauge.clone(), wait), gauge)
    }

    #[tokio::test]
    async fn an_admitted_request_holds_nothing_until_its_bytes_arrive() {
        let (budget, gauge) = budget(10 * MIB, Duration::ZERO);
        let reservation = budget.reservation();
        assert_eq!(gauge.get(), 0);
        reservation.grow(1500).await.expect("fits");
        reservation.grow(600).await.expect("fits");
        assert_eq!(reservation.bytes(), 2100);
        assert_eq!(gauge.get(), 3 * 1024, "whole KiB, no more");
        drop(reservation);
        assert_eq!(gauge.get(), 0, "given back with the last handle");
    }

    #[tokio::test]
    async fn growth_past_the_budget_is_refused_once_the_wait_is_over() {
        let (budget, gauge) = budget(10 * MIB, Duration::from_millis(50));
        let big = budget.reservation();
        big.grow(6 * MIB).await.expect("fits");
        let other = budget.reservation();
        assert_eq!(other.grow(6 * MIB).await, Err(Overloaded), "two do not fit");
        other.grow(40 * 1024).await.expect("a small growth still fits");
        assert!(gauge.get() <= 10 * MIB as i64, "never past the budget: {}", gauge.get());
        drop(big);
        other.grow(6 * MIB).await.expect("given back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_growth_that_does_not_fit_waits_for_bytes_to_come_back() {
        let (budget, _gauge) = budget(MIB, Duration::from_secs(2));
        let first = budget.reservation();
        first.grow(MIB).await.expect("fits");
        let second = budget.reservation();
        let waiting = tokio::spawn(async move { second.grow(512 * 1024).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        assert_eq!(waiting.await.expect("joined"), Ok(()));
    }

    #[tokio::test]
    async fn a_dropped_copy_is_given_back_at_once() {
        let (budget, gauge) = budget(10 * MIB, Duration::ZERO);
        let reservation = budget.reservation();
        reservation.grow(3 * MIB).await.expect("fits");
        reservation.shrink(2 * MIB);
        assert_eq!(gauge.get(), MIB as i64);
        assert_eq!(reservation.bytes(), MIB);
    }
}
