//! What normalising a recording makes, reserved before it is allocated.
//!
//! Normalising runs on the blocking pool (`audio::prepare`), so it waits for bytes by blocking
//! its thread on the runtime that started it. The worker permit it holds meanwhile is bounded
//! like every other wait: by `AUDIO_BYTES_WAIT_MS`.

use tokio::runtime::Handle;

use super::Reservation;
use crate::audio::error::AudioError;

/// The first output allocation: a few seconds of 16 kHz audio.
const FIRST: usize = 64 * 1024;

/// The copies and the 16 kHz output one recording's normalising holds, counted in its request's
/// reservation. Without one ([`Output::unbounded`], for tools, tests and fuzzing) nothing is
/// counted and nothing waits.
pub struct Output {
    budget: Option<(Reservation, Handle)>,
    /// Copies made whole: they are held until normalising ends.
    copies: usize,
    /// Room made for the output that grows.
    room: usize,
}

impl Output {
    pub fn unbounded() -> Self {
        Self { budget: None, copies: 0, room: 0 }
    }

    /// Counted in `reservation`. Call on the runtime: the handle to block on is taken here.
    pub fn within(reservation: Reservation) -> Self {
        Self { budget: Some((reservation, Handle::current())), copies: 0, room: 0 }
    }

    /// A copy of `bytes` is about to be made.
    pub fn copy(&mut self, bytes: usize) -> Result<(), AudioError> {
        self.reserve(bytes)?;
        self.copies += bytes;
        Ok(())
    }

    /// Room for at least `needed` bytes of growing output, at most `most`: the room now made,
    /// in steps of half again, so a long recording is reserved a few times, not per packet.
    pub fn room_for(&mut self, needed: usize, most: usize) -> Result<usize, AudioError> {
        if needed <= self.room {
            return Ok(self.room);
        }
        let target = self.room.saturating_add(self.room / 2).max(FIRST).min(most).max(needed);
        self.reserve(target - self.room)?;
        self.room = target;
        Ok(target)
    }

    /// The growing output was dropped (it was copied into the payload, or not needed).
    pub fn release_room(&mut self) {
        if let Some((reservation, _)) = &self.budget {
            reservation.shrink(self.room);
        }
        self.room = 0;
    }

    fn reserve(&self, bytes: usize) -> Result<(), AudioError> {
        match &self.budget {
            Some((reservation, handle)) => handle.block_on(reservation.grow(bytes)).map_err(|_| AudioError::Overloaded),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::IntGauge;

    use super::*;
    use crate::audio::budget::AudioBudget;

    const MIB: usize = 1024 * 1024;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn decoding_output_is_reserved_ahead_in_steps_and_given_back_when_dropped() {
        let gauge = IntGauge::new("reserved", "test").expect("gauge");
        let budget = AudioBudget::new(8 * MIB, gauge.clone(), Duration::from_millis(50));
        let reservation = budget.reservation();
        let mut output = Output::within(reservation.clone());
        let (rooms, refused) = tokio::task::spawn_blocking(move || {
            let rooms: Vec<usize> = [1000, 70_000, 100_000, 3 * MIB]
                .into_iter()
                .map(|needed| output.room_for(needed, 4 * MIB).expect("fits"))
                .collect();
            // A 6 MB copy beside 3 MB of output does not fit in 8 MiB: refused after the wait.
            let refused = output.copy(6 * MIB);
            output.release_room();
            (rooms, refused)
        })
        .await
        .expect("joined");
        assert_eq!(rooms[0], 64 * 1024, "a first step, not the most it could come to");
        assert!(rooms.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(rooms[3] >= 3 * MIB && rooms[3] <= 4 * MIB, "{rooms:?}");
        assert_eq!(refused, Err(AudioError::Overloaded));
        assert!(reservation.bytes() < MIB, "the room came back: {}", reservation.bytes());
        drop(reservation);
        assert_eq!(gauge.get(), 0);
    }
}
