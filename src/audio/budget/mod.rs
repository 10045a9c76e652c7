//! Bytes of recordings held at once, bounded by configuration (`AUDIO_BYTES_IN_FLIGHT`), not by
//! traffic.
//!
//! A held upload is its body, buffered whole (up to `AUDIO_MAX_BYTES`), plus what the
//! normaliser makes of it: about 11 MB for the largest, against the 25 to 40 KB of a held
//! analysis. `MAX_IN_FLIGHT` counts requests, so a few dozen large uploads could fill a pod that
//! thousands of analyses fit in. Each audio request reserves, before its body is read, what it
//! can come to hold (its declared length, or the most an upload or download may be), plus the
//! largest short-audio output, and gives it back when its answer is sent. A request that does
//! not fit is answered 503 `overloaded` at once, like one past `MAX_IN_FLIGHT`.

use std::sync::Arc;

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB: the largest budget fits `u32` many.
const UNIT: usize = 1024;
/// Multipart framing and text parts around the audio.
pub const FRAMING: usize = 256 * 1024;
/// The largest short-audio payload: 60 s of 16 kHz mono 16-bit WAV (a long recording that must
/// be transcoded for fast transcription can keep more; see `normalise`).
pub const OUTPUT: usize = 60 * 16_000 * 2 + 44;

/// The most one audio request can reserve.
pub fn reservation(audio_max_bytes: usize) -> usize {
    audio_max_bytes.saturating_add(FRAMING).saturating_add(OUTPUT)
}

#[derive(Clone)]
pub struct AudioBudget {
    permits: Arc<Semaphore>,
    reserved: IntGauge,
}

/// Bytes held for one request until it is dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    reserved: IntGauge,
    bytes: i64,
}

impl AudioBudget {
    pub fn new(bytes: usize, reserved: IntGauge) -> Self {
        let units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(units)), reserved }
    }

    /// `bytes` of the budget, or `None` when they are not free right now.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let permit = self.permits.clone().try_acquire_many_owned(units).ok()?;
        let bytes = i64::from(units) * UNIT as i64;
        self.reserved.add(bytes);
        Some(Reservation { _permit: permit, reserved: self.reserved.clone(), bytes })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.reserved.sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_come_back_when_dropped() {
        let gauge = IntGauge::new("reserved", "test").expect("gauge");
        let budget = AudioBudget::new(10 * 1024 * 1024, gauge.clone());
        let big = budget.try_reserve(6 * 1024 * 1024).expect("fits");
        assert!(budget.try_reserve(6 * 1024 * 1024).is_none(), "two do not fit");
        let small = budget.try_reserve(40 * 1024).expect("a small one still fits");
        assert_eq!(gauge.get(), 6 * 1024 * 1024 + 40 * 1024);
        drop(big);
        assert!(budget.try_reserve(6 * 1024 * 1024).is_some(), "given back");
        drop(small);
    }
}
