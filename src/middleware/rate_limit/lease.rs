//! Leases and credit of a shared limit, so that no admitted request waits for Redis.
//!
//! An instance spends what it holds of a key's bucket from memory:
//! - a **lease**: up to `n` requests the shared GCRA (`gcra.lua`) granted, spent until they run
//!   out or the lease's length `L` has passed since it was asked for (an unused rest is
//!   forfeited, not returned);
//! - **credit**: when it holds no lease, up to `n` requests served first and charged after, in
//!   the lease request those requests start *off their path* (a spawned task). The charge is
//!   made whatever the bucket holds, so the shared bucket still pays for every request served.
//!   Credit is given only while this instance's last answer from the bucket left room (refused
//!   with a known `Retry-After` otherwise), and at most the room that answer left plus what has
//!   refilled since.
//!
//! So a request waits for Redis only when one key sends this instance more than `n` requests
//! within one round trip of its lease running out, and a refusal is cached until its
//! `Retry-After` (no Redis either). Redis failing to answer hands the key to the instance's own
//! limiter for a second.
//!
//! The bound, with `N` instances, rate `r` and burst `b` of the limit, lease length `L` and
//! `n = clamp(ceil(r·L), 1, b)`: in any window of length `W`, one key is served at most
//!
//! `A(W) ≤ b + r·(W + L) + 2·N·n`
//!
//! - Served in `W` from leases: granted within `[start − L, end]`. Served on credit: charged
//!   after being served, so within `[start, end]`, or still owed at the end: at most `n` per
//!   instance, `N·n`.
//! - What the bucket takes in a window `W'` (grants and credit charges) is at most
//!   `b + r·W'` plus its excess over a full bucket, and that excess is at most `N·n`: a credit
//!   charge that overfills the bucket is answered with a refusal until the bucket, as it stood
//!   after that charge, has room again, so each instance's last charge is the only one of its
//!   own still in the excess.
//!
//! With `N = 1` and one key the credit never exceeds the room the bucket reported, so one
//! instance alone is held to the GCRA. Capacity held but unused: at most `n` per instance for at
//! most `L`. The simulated instances in `lease_sim.rs` check the bound for every window.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// After the shared limit could not be asked, how long a key is decided by the instance alone
/// before asking again: a Redis that is down costs one failed ask per key per second, not one
/// per request.
const UNREACHABLE_HOLD: Duration = Duration::from_secs(1);

/// What the shared limit answered to one lease request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Requests granted as a lease, up to the lease size; 0 with no room.
    pub granted: u64,
    /// Requests the shared bucket had room for after this answer.
    pub remaining: u64,
    /// With no room left: the wait until one request would be granted.
    pub wait: Duration,
}

/// The shared limit that grants leases and takes credit charges: Redis's script, or an exact
/// GCRA in the simulation. Called from a spawned task, never on a request's path.
pub trait Grantor: Clone + Send + Sync + 'static {
    type Error: std::fmt::Display + Send;

    /// Charge `owed` requests already served to `key`'s bucket whatever it holds, then grant up
    /// to `want` more that fit.
    fn grant(&self, key: &str, want: u64, owed: u64) -> impl Future<Output = Result<Grant, Self::Error>> + Send;
}

/// A request's outcome under the shared limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Served; `remaining` is what the bucket had room for at the last answer, refilled since,
    /// net of what this instance holds or owes.
    Admitted {
        remaining: u64,
    },
    Refused {
        retry_after: Duration,
    },
    /// The shared limit could not be asked lately: the instance's own limiter decides.
    Unreachable,
}

/// What one instance holds of one key's bucket.
struct Held {
    tokens: u64,
    expires: Instant,
    /// The bucket's room at the last answer, and when it came; `None` before any answer.
    room: Option<(u64, Instant)>,
    /// With no room at the last answer: until then, refused once the lease is spent.
    refused_until: Option<Instant>,
    /// Served on credit and not yet sent to be charged.
    owed: u64,
    /// Served on credit and in the lease request in flight.
    sending: u64,
    asking: bool,
    unreachable_until: Option<Instant>,
}

/// What `Held::take` decided.
enum Step {
    Now(Take),
    /// Served on credit, and no lease request in flight: this request starts one.
    Ask(Take),
    /// Credit spent, a lease request in flight: wait for its answer.
    Wait,
}

impl Held {
    fn take(&mut self, now: Instant, size: u64, interval: Duration, burst: u64) -> Step {
        if self.tokens > 0 && now < self.expires {
            self.tokens -= 1;
            return Step::Now(Take::Admitted { remaining: self.room(now, interval, burst) });
        }
        if let Some(until) = self.refused_until {
            if now < until {
                return Step::Now(Take::Refused { retry_after: until - now });
            }
            self.refused_until = None;
        }
        if self.unreachable_until.is_some_and(|until| now < until) {
            return Step::Now(Take::Unreachable);
        }
        let credit = match self.room {
            Some((room, at)) => size.min(room + refilled(now - at, interval)),
            None => size,
        };
        if self.owed + self.sending >= credit.max(1) {
            return Step::Wait;
        }
        self.owed += 1;
        let take = Take::Admitted { remaining: self.room(now, interval, burst) };
        if self.asking {
            return Step::Now(take);
        }
        self.asking = true;
        Step::Ask(take)
    }

    /// Start the lease request a `Step::Ask` promised: `Some(owed)` to charge, or `None` when
    /// every request served on credit was given back meanwhile (nothing to ask).
    fn send(&mut self) -> Option<u64> {
        if self.owed == 0 {
            self.asking = false;
            return None;
        }
        self.sending = std::mem::take(&mut self.owed);
        Some(self.sending)
    }

    /// The bucket's room as this instance last heard it, refilled since, net of what this
    /// instance holds or owes: for `RateLimit-Remaining`.
    fn room(&self, now: Instant, interval: Duration, burst: u64) -> u64 {
        // Before any answer the bucket is taken as rested, as a fresh key's is.
        let (room, at) = self.room.unwrap_or((burst, now));
        (room + refilled(now - at, interval) + self.tokens).saturating_sub(self.owed + self.sending).min(burst)
    }

    /// Take in the answer to a lease request sent at `asked`; `Some(owed)` when the credit
    /// served meanwhile is still to be charged (by another request, at once).
    fn answer<E>(&mut self, answer: Result<Grant, E>, asked: Instant, length: Duration) -> Option<u64> {
        let now = Instant::now();
        self.sending = 0;
        match answer {
            Ok(grant) => {
                self.tokens = grant.granted;
                self.expires = asked + length;
                self.room = Some((grant.remaining, now));
                // No room left: once the lease is spent, refused until the bucket has room.
                self.refused_until = (grant.remaining == 0).then(|| now + grant.wait);
                // Credit served during the ask comes out of the new lease where it can.
                let covered = self.owed.min(self.tokens);
                self.tokens -= covered;
                self.owed -= covered;
            }
            Err(_) => {
                // Redis is down: the instance's own limiter, fed all along, decides; what was
                // owed is not carried over to a Redis that comes back.
                self.owed = 0;
                self.unreachable_until = Some(now + UNREACHABLE_HOLD);
            }
        }
        if self.owed == 0 {
            self.asking = false;
            return None;
        }
        self.sending = std::mem::take(&mut self.owed);
        Some(self.sending)
    }

    fn live(&self, now: Instant) -> bool {
        self.asking
            || self.owed > 0
            || (self.tokens > 0 && now < self.expires)
            || self.refused_until.is_some_and(|until| now < until)
            || self.unreachable_until.is_some_and(|until| now < until)
    }
}

fn refilled(elapsed: Duration, interval: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u64::MAX)
}

struct Entry {
    held: Mutex<Held>,
    /// Woken when a lease request is answered, for the requests that wait for it.
    answered: Notify,
}

/// One limiter's leases on this instance, by key.
pub struct Leases {
    entries: DashMap<String, Arc<Entry>>,
    length: Duration,
    interval: Duration,
    size: u64,
    burst: u64,
}

impl Leases {
    /// Leases of `length`; each asks for `ceil(length / interval)` requests, 1 to `burst`.
    pub fn new(length: Duration, interval: Duration, burst: u32) -> Self {
        let per_lease = length.as_nanos().div_ceil(interval.as_nanos().max(1));
        let size = u64::try_from(per_lease).unwrap_or(u64::MAX).clamp(1, u64::from(burst.max(1)));
        Self { entries: DashMap::new(), length, interval, size, burst: u64::from(burst.max(1)) }
    }

    /// Requests asked for per lease (`n`).
    #[cfg(test)]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// One request against `key`. Decided from memory unless this instance's credit for the key
    /// is spent while its lease request is in flight; then waits for that answer. A request
    /// served on credit may come with the lease request to send: it goes when the `Charge` is
    /// dropped, after every limit has decided (a later refusal gives the credit back first).
    pub async fn take<G: Grantor>(&self, key: &str, grantor: &G) -> (Take, Option<Charge<G>>) {
        let entry = self.entry(key);
        loop {
            if let Some(taken) = self.step(&entry, key, grantor) {
                return taken;
            }
            let answered = entry.answered.notified();
            let mut answered = std::pin::pin!(answered);
            answered.as_mut().enable();
            // The answer may have come between the step and the registration.
            if let Some(taken) = self.step(&entry, key, grantor) {
                return taken;
            }
            answered.await;
        }
    }

    fn step<G: Grantor>(&self, entry: &Arc<Entry>, key: &str, grantor: &G) -> Option<(Take, Option<Charge<G>>)> {
        let step = entry.held.lock().take(Instant::now(), self.size, self.interval, self.burst);
        match step {
            Step::Now(take) => Some((take, None)),
            Step::Wait => None,
            Step::Ask(take) => {
                let charge = Charge {
                    entry: entry.clone(),
                    key: key.to_owned(),
                    grantor: grantor.clone(),
                    size: self.size,
                    length: self.length,
                };
                Some((take, Some(charge)))
            }
        }
    }

    fn entry(&self, key: &str) -> Arc<Entry> {
        if let Some(entry) = self.entries.get(key) {
            return entry.clone();
        }
        self.entries.entry(key.to_owned()).or_insert_with(Self::empty_entry).clone()
    }

    /// Return one request taken for a request another limit refused: to the credit when it is
    /// not sent yet, else to a live lease.
    pub fn give_back(&self, key: &str) {
        if let Some(entry) = self.entries.get(key) {
            let mut held = entry.held.lock();
            if held.owed > 0 {
                held.owed -= 1;
            } else if Instant::now() < held.expires {
                held.tokens += 1;
            }
        }
    }

    /// Forget keys with nothing live.
    pub fn prune(&self) {
        let now = Instant::now();
        self.entries.retain(|_, entry| Arc::strong_count(entry) > 1 || entry.held.lock().live(now));
        self.entries.shrink_to_fit();
    }

    fn empty_entry() -> Arc<Entry> {
        let held = Held {
            tokens: 0,
            expires: Instant::now(),
            room: None,
            refused_until: None,
            owed: 0,
            sending: 0,
            asking: false,
            unreachable_until: None,
        };
        Arc::new(Entry { held: Mutex::new(held), answered: Notify::new() })
    }
}

/// The lease request one request started, sent when it is dropped: by then every limit has
/// decided the request, and credit a refusal gave back is not charged.
pub struct Charge<G: Grantor> {
    entry: Arc<Entry>,
    key: String,
    grantor: G,
    size: u64,
    length: Duration,
}

impl<G: Grantor> Drop for Charge<G> {
    fn drop(&mut self) {
        let owed = self.entry.held.lock().send();
        let runtime = tokio::runtime::Handle::try_current();
        match (owed, runtime) {
            (Some(owed), Ok(runtime)) => {
                let (entry, key, grantor) = (self.entry.clone(), std::mem::take(&mut self.key), self.grantor.clone());
                runtime.spawn(ask(entry, key, grantor, self.size, self.length, owed));
            }
            (Some(_), Err(_)) => {
                // No runtime left (shutting down): nothing will be charged, nor asked again.
                let mut held = self.entry.held.lock();
                held.sending = 0;
                held.asking = false;
                drop(held);
                self.entry.answered.notify_waiters();
            }
            // Nothing owed: whoever waited for this request's answer decides again.
            (None, _) => self.entry.answered.notify_waiters(),
        }
    }
}

/// The lease request, off every request's path: charge what was served on credit, take a lease,
/// and again while credit served meanwhile is still owed.
async fn ask<G: Grantor>(entry: Arc<Entry>, key: String, grantor: G, size: u64, length: Duration, mut owed: u64) {
    loop {
        let asked = Instant::now();
        let answer = grantor.grant(&key, size, owed).await;
        if let Err(error) = &answer {
            // The link logs Redis going down once; per key this is routine.
            tracing::debug!(%error, "rate limit decided locally: redis unavailable");
        }
        let again = entry.held.lock().answer(answer, asked, length);
        entry.answered.notify_waiters();
        match again {
            Some(more) => owed = more,
            None => return,
        }
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
