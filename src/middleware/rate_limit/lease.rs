//! Leases of a shared limit: an instance takes up to `n` requests of a key's bucket at once from
//! the shared GCRA (`gcra.lua`, still the only admitter) and spends them from memory until they
//! run out or the lease's length `L` has passed since it was asked for. A request that finds
//! tokens, or a refusal still running (cached until its `Retry-After`), costs no Redis round trip
//! and no hand-off to another task. Only an empty or expired lease asks Redis again, one request
//! per key per instance at a time (the others wait for its answer instead of asking too); the
//! unused rest of an expired lease goes back to the bucket in that same call.
//!
//! The bound, with `N` instances, rate `r` and burst `b` of the limit, lease length `L` and lease
//! size `n = clamp(ceil(r·L), 1, b)`: in any window of length `W`, one key is served at most
//!
//! `A(W) ≤ b + r·(W + L) + N·n`
//!
//! - Redis grants at most `b + r·W'` in any window `W'` of its clock, net of what comes back;
//!   a granted request is spent within `L` of the grant (the lease's clock starts before the
//!   request is sent), so the requests served in `W` were granted within `W + L`.
//! - What comes back (an expired lease's rest) may be granted again, while the lease it came
//!   from was granted before that window: at most one lease of `n` per instance, `N·n`.
//!
//! The other way, capacity held but unused: at most `n` per instance for at most `L`. With
//! `r·L ≤ 1` (the contract's default limit of 60 a minute and `L` = 1 s) a lease is one request,
//! so the limit is exact and the round trips are as before, one per admitted request (refusals
//! are still free). The simulated instances in `lease_sim.rs` check the bound for every window.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::time::Instant;

/// What the shared limit granted for one lease request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Requests granted, up to the lease size; 0 is a refusal.
    pub granted: u64,
    /// Requests the shared bucket had left after the grant.
    pub remaining: u64,
    /// For a refusal: the wait until one request would be granted.
    pub retry_after: Duration,
}

/// The shared limit that grants leases: Redis's script, or an exact GCRA in the simulation.
pub trait Grantor {
    type Error;

    /// Take up to `want` requests from `key`'s bucket, after returning `give_back` unused ones.
    fn grant(&self, key: &str, want: u64, give_back: u64) -> impl Future<Output = Result<Grant, Self::Error>> + Send;
}

/// A request's outcome under the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Served; `remaining` is what the bucket had left at the grant plus the lease's rest.
    Admitted {
        remaining: u64,
    },
    Refused {
        retry_after: Duration,
    },
}

/// What one instance holds of one key's bucket.
struct Held {
    tokens: u64,
    expires: Instant,
    /// The bucket's remainder at the last grant, for `RateLimit-Remaining`.
    remaining: u64,
    /// A refusal holds until then: asking Redis again sooner could only be refused.
    refused_until: Option<Instant>,
}

impl Held {
    fn take(&mut self, now: Instant) -> Option<Take> {
        if let Some(until) = self.refused_until {
            if now < until {
                return Some(Take::Refused { retry_after: until - now });
            }
            self.refused_until = None;
        }
        if self.tokens > 0 && now < self.expires {
            self.tokens -= 1;
            return Some(Take::Admitted { remaining: self.remaining + self.tokens });
        }
        None
    }

    fn live(&self, now: Instant) -> bool {
        (self.tokens > 0 && now < self.expires) || self.refused_until.is_some_and(|until| now < until)
    }
}

struct Entry {
    held: Mutex<Held>,
    /// One lease request per key per instance at a time.
    refill: tokio::sync::Mutex<()>,
}

/// One limiter's leases on this instance, by key.
pub struct Leases {
    entries: DashMap<String, Arc<Entry>>,
    length: Duration,
    size: u64,
}

impl Leases {
    /// Leases of `length`; each asks for `ceil(length / interval)` requests, 1 to `burst`.
    pub fn new(length: Duration, interval: Duration, burst: u32) -> Self {
        let per_lease = length.as_nanos().div_ceil(interval.as_nanos().max(1));
        let size = u64::try_from(per_lease).unwrap_or(u64::MAX).clamp(1, u64::from(burst.max(1)));
        Self { entries: DashMap::new(), length, size }
    }

    /// Requests asked for per lease (`n`).
    #[cfg(test)]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The decision from what this instance holds, if it holds one: `None` means ask `refill`.
    pub fn take(&self, key: &str) -> Option<Take> {
        self.entries.get(key)?.held.lock().take(Instant::now())
    }

    /// Ask the shared limit for a lease and spend one request of it; waits for a request of this
    /// instance already asking for `key`, and takes from its lease when there is one.
    pub async fn refill<G: Grantor>(&self, key: &str, grantor: &G) -> Result<Take, G::Error> {
        let entry = match self.entries.get(key) {
            Some(entry) => entry.clone(),
            None => self.entries.entry(key.to_owned()).or_insert_with(Self::empty_entry).clone(),
        };
        let _turn = entry.refill.lock().await;
        let asked = Instant::now();
        let give_back = {
            let mut held = entry.held.lock();
            if let Some(taken) = held.take(asked) {
                return Ok(taken);
            }
            // Only an expired lease can still hold requests here.
            std::mem::take(&mut held.tokens)
        };
        let grant = grantor.grant(key, self.size, give_back).await?;
        let mut held = entry.held.lock();
        if grant.granted == 0 {
            held.refused_until = Some(Instant::now() + grant.retry_after);
            return Ok(Take::Refused { retry_after: grant.retry_after });
        }
        held.tokens = grant.granted - 1;
        held.expires = asked + self.length;
        held.remaining = grant.remaining;
        Ok(Take::Admitted { remaining: grant.remaining + held.tokens })
    }

    /// Return one request taken from a live lease, for a request another limit refused.
    pub fn give_back(&self, key: &str) {
        if let Some(entry) = self.entries.get(key) {
            let mut held = entry.held.lock();
            if Instant::now() < held.expires {
                held.tokens += 1;
            }
        }
    }

    /// Forget keys with nothing live. An expired lease's rest is not returned then: it only
    /// delays the bucket's refill by at most `n` requests' worth (about `L`).
    pub fn prune(&self) {
        let now = Instant::now();
        self.entries.retain(|_, entry| Arc::strong_count(entry) > 1 || entry.held.lock().live(now));
        self.entries.shrink_to_fit();
    }

    fn empty_entry() -> Arc<Entry> {
        let held = Held { tokens: 0, expires: Instant::now(), remaining: 0, refused_until: None };
        Arc::new(Entry { held: Mutex::new(held), refill: tokio::sync::Mutex::new(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_the_limits_rate_over_its_length_within_one_and_the_burst() {
        let second = Duration::from_secs(1);
        assert_eq!(Leases::new(second, second, 60).size(), 1, "60 a minute: one request per lease");
        assert_eq!(Leases::new(second, Duration::from_millis(10), 60).size(), 60, "capped at the burst");
        assert_eq!(Leases::new(second, Duration::from_millis(10), 1000).size(), 100);
        assert_eq!(Leases::new(Duration::ZERO, second, 60).size(), 1);
    }
}
