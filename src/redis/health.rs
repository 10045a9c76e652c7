//! Health and back-off per part of Redis, so one failing shard does not pause the others.
//!
//! A single endpoint (or Sentinel's master) is one part. A cluster is cut into `CLUSTER_PARTS`
//! ranges of hash slots: a master owns whole ranges in the usual layout (`redis-cli --cluster
//! create` gives each a contiguous block), so a dead master's ranges back off while the others'
//! keys keep reaching their masters. The split needs no `CLUSTER` command: a key's slot is a
//! CRC16 of it, and the probe PINGs the master of one slot per range through the driver's routing.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::time::Instant;

use super::backoff::{Admission, Backoff};

/// Ranges of 256 slots each.
pub const CLUSTER_PARTS: usize = 64;
const SLOTS: u16 = 16_384;

/// The slot of a key, as Redis Cluster computes it (the hash tag's content when there is one).
pub fn slot(key: &[u8]) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&byte| byte == b'{')?;
    let close = key[open + 1..].iter().position(|&byte| byte == b'}')?;
    (close > 0).then(|| &key[open + 1..open + 1 + close])
}

/// Up, degraded (some parts answer) or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    Degraded,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }
}

struct Part {
    backoff: Mutex<Backoff>,
    up: AtomicBool,
    /// No back-off is running (the last report was an answer): every operation of a healthy
    /// Redis goes ahead and reports on this flag alone, with no lock shared by every request.
    /// Written only under `backoff`'s lock. A failure racing a success may leave one back-off
    /// the lock would have ended; it runs out on its own.
    clear: AtomicBool,
}

pub(super) struct Parts {
    parts: Vec<Part>,
}

impl Parts {
    /// `count` parts, each backing off from `initial` up to `max` after a failure.
    pub fn new(count: usize, initial: std::time::Duration, max: std::time::Duration) -> Self {
        let parts = (0..count.max(1))
            .map(|_| Part {
                backoff: Mutex::new(Backoff::new(initial, max)),
                up: AtomicBool::new(false),
                clear: AtomicBool::new(true),
            })
            .collect();
        Self { parts }
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// The part that serves `key`.
    pub fn of(&self, key: &[u8]) -> usize {
        if self.parts.len() == 1 { 0 } else { usize::from(slot(key)) * self.parts.len() / usize::from(SLOTS) }
    }

    /// A key in part `index` for the probe to read: a PING routed to a dead node's slot is
    /// answered by another node (the driver sends it anywhere after an I/O error), but a key
    /// read is redirected back to the slot's owner, so it fails until a replica takes over.
    pub fn probe_key(&self, index: usize, prefix: &str) -> String {
        (0u32..)
            .map(|n| format!("{prefix}probe:{n}"))
            .find(|key| self.of(key.as_bytes()) == index)
            .expect("every part holds some key")
    }

    pub fn admit(&self, index: usize) -> Admission {
        let part = &self.parts[index];
        if part.clear.load(Ordering::Acquire) {
            return Admission::Go;
        }
        part.backoff.lock().admit(Instant::now())
    }

    /// A trial whose caller went away before it reported: let the next operation try.
    pub fn abandon_trial(&self, index: usize) {
        self.parts[index].backoff.lock().trial = false;
    }

    /// Record whether part `index` was reached. `true` when that changed the part's health, so
    /// the steady state (every operation of a healthy Redis) costs no walk over the parts.
    pub fn record(&self, index: usize, reached: bool) -> bool {
        let part = &self.parts[index];
        // An answer while no back-off runs changes nothing in it (see `Backoff::record`).
        if !(reached && part.clear.load(Ordering::Acquire)) {
            let mut backoff = part.backoff.lock();
            backoff.record(reached, Instant::now());
            part.clear.store(backoff.is_clear(), Ordering::Release);
        }
        part.up.load(Ordering::Relaxed) != reached && part.up.swap(reached, Ordering::Relaxed) != reached
    }

    pub fn reachable(&self) -> usize {
        self.parts.iter().filter(|part| part.up.load(Ordering::Relaxed)).count()
    }

    pub fn state(&self) -> State {
        match self.reachable() {
            0 => State::Down,
            up if up == self.parts.len() => State::Up,
            _ => State::Degraded,
        }
    }

    /// The share of the key space whose node answers, 0 to 1.
    pub fn coverage(&self) -> f64 {
        self.reachable() as f64 / self.parts.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 12_739);
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"), "an empty tag: the whole key is hashed");
    }

    #[test]
    fn a_failing_part_degrades_the_link_without_pausing_the_others() {
        let second = std::time::Duration::from_secs(1);
        let parts = Parts::new(CLUSTER_PARTS, second, second);
        for index in 0..parts.len() {
            assert!(parts.record(index, true), "each part's first answer is a change");
        }
        assert_eq!(parts.state(), State::Up);
        assert!(!parts.record(4, true), "an answer from a healthy part changes nothing");
        assert!(parts.record(3, false));
        assert_eq!(parts.state(), State::Degraded);
        assert_eq!(parts.admit(3), Admission::Skip);
        assert_eq!(parts.admit(4), Admission::Go);
        assert!((parts.coverage() - 63.0 / 64.0).abs() < 1e-9);
        assert!(parts.record(3, true), "an answer ends the back-off");
        assert_eq!(parts.admit(3), Admission::Go);
        assert!(parts.record(3, false));
        for index in 0..parts.len() {
            parts.record(index, false);
        }
        assert_eq!(parts.state(), State::Down);
    }

    #[test]
    fn the_probe_reads_a_key_inside_each_part() {
        let second = std::time::Duration::from_secs(1);
        let parts = Parts::new(CLUSTER_PARTS, second, second);
        for index in 0..parts.len() {
            let key = parts.probe_key(index, "backend-ai:");
            assert_eq!(usize::from(slot(key.as_bytes())) * CLUSTER_PARTS / usize::from(SLOTS), index, "{key}");
        }
    }
}
