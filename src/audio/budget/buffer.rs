//! A recording's bytes as they arrive, each allocation reserved before it is made.

use bytes::Bytes;

use super::{Overloaded, Reservation};

/// The first allocation: a small recording's whole body, a large one's first chunks.
const FIRST: usize = 64 * 1024;

/// Bytes gathered chunk by chunk (an upload's `audio` part, an `audio_url` download). Its
/// capacity grows by doubling, but never past what the sender said it would send nor past
/// `most`, and every growth is reserved first: the reservation is the buffer's capacity.
pub struct Buffer {
    bytes: Vec<u8>,
    reservation: Reservation,
    /// The length the sender declared, when it did: room for it is made in steps, not at once,
    /// so a sender that declares 10 MB and sends nothing holds nothing.
    declared: Option<usize>,
    /// The most the caller accepts.
    most: usize,
}

impl Buffer {
    pub fn new(reservation: Reservation, declared: Option<usize>, most: usize) -> Self {
        Self { bytes: Vec::new(), reservation, declared, most }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Append `chunk`, first reserving any room it needs. The caller has checked the length.
    pub async fn extend(&mut self, chunk: &[u8]) -> Result<(), Overloaded> {
        let needed = self.bytes.len().saturating_add(chunk.len());
        let capacity = self.bytes.capacity();
        if needed > capacity {
            let doubled = capacity.saturating_mul(2).max(FIRST);
            let bound = match self.declared {
                Some(declared) if needed <= declared => declared.min(self.most),
                _ => self.most,
            };
            let target = doubled.min(bound).max(needed);
            self.reservation.grow(target - capacity).await?;
            self.bytes.reserve_exact(target - self.bytes.len());
            // `reserve_exact` may round up; what it really took is what is held.
            let extra = self.bytes.capacity().saturating_sub(target);
            self.reservation.grow(extra).await?;
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    pub fn into_bytes(self) -> Bytes {
        Bytes::from(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::IntGauge;

    use super::*;
    use crate::audio::budget::AudioBudget;

    #[tokio::test]
    async fn the_reservation_follows_the_bytes_that_arrive_not_the_declared_length() {
        let gauge = IntGauge::new("reserved", "test").expect("gauge");
        let budget = AudioBudget::new(64 * 1024 * 1024, gauge.clone(), Duration::ZERO);
        let reservation = budget.reservation();
        let mut buffer = Buffer::new(reservation.clone(), Some(10 * 1024 * 1024), 10 * 1024 * 1024);
        buffer.extend(&[1; 1000]).await.expect("fits");
        assert_eq!(reservation.bytes(), FIRST, "one small first allocation for a 10 MB promise");
        for _ in 0..200 {
            buffer.extend(&[2; 1000]).await.expect("fits");
        }
        assert!(reservation.bytes() >= buffer.bytes.capacity());
        assert!(reservation.bytes() <= 2 * buffer.len(), "{} for {}", reservation.bytes(), buffer.len());
        let bytes = buffer.into_bytes();
        assert_eq!(bytes.len(), 201_000);
    }

    #[tokio::test]
    async fn a_body_that_reaches_its_declared_length_holds_exactly_it() {
        let gauge = IntGauge::new("reserved", "test").expect("gauge");
        let budget = AudioBudget::new(64 * 1024 * 1024, gauge, Duration::ZERO);
        let reservation = budget.reservation();
        let declared = 1_000_000;
        let mut buffer = Buffer::new(reservation.clone(), Some(declared), 10 * 1024 * 1024);
        for _ in 0..1000 {
            buffer.extend(&[3; 1000]).await.expect("fits");
        }
        assert_eq!(reservation.bytes(), declared);
    }
}
