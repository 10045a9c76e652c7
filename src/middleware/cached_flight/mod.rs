//! The cache and single-flight as one layer: look up, lease, call, store. One upstream call for
//! many identical jobs, and none for a job whose answer is stored.
//!
//! Within an instance, concurrent jobs with the same `CacheKey` share one future: the first
//! caller registers it, the others await a clone of it, and every one of them drives it, so the
//! first caller going away (its request dropped) does not cancel the others' answer. Across
//! instances (Redis modes), the instance that wants to call the upstream first takes a Redis
//! lease on the key; the others poll the cache until the holder has stored the answer, the
//! lease disappears (holder died or failed: take it over), or their wait budget runs out (then
//! call the upstream themselves). Redis trouble at any point means "call the upstream": this
//! layer may save calls, it never fails or stalls one.
//!
//! The lease this instance takes is a value, `lease::Claim`, owned by the one call it is for
//! (`store.rs`): the call's own cache lookup skips Redis (the claim just found it empty), its
//! store ends the lease in the same round trip, and a claim nothing used is released, by its
//! holder or, failing that, by its drop. With a detach layer given, the lookup, the call and the
//! store run on the detached task, so a call whose clients all left still stores its answer.
//! A hit is answered before anything below is asked, so hits are served while the breaker is open.

mod flights;
mod layer;
mod lease;
mod service;
mod store;

use std::time::Duration;

pub use layer::CachedFlightLayer;
pub use service::CachedFlightService;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedFlightConfig {
    /// Lease lifetime; renewed every third of it while the holder's call runs, so it only
    /// lapses when the holder stops (crash, partition). Bounds how long others wait for a dead
    /// holder.
    pub lease: Duration,
    /// How long a job waits on another instance's lease before calling the upstream itself.
    /// Keep it below the request deadline.
    pub max_wait: Duration,
    /// First pause between cache polls while waiting; doubles up to `poll_max`.
    pub poll_initial: Duration,
    pub poll_max: Duration,
}

impl Default for CachedFlightConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
            max_wait: Duration::from_secs(30),
            poll_initial: Duration::from_millis(25),
            poll_max: Duration::from_millis(250),
        }
    }
}

#[cfg(test)]
mod tests;
