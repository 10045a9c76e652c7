//! A chain of links (models, providers) serving one operation: the first that answers wins.
//!
//! Flow of one call:
//! 1. Each link in order gets the job re-aimed at it (its model, so its cache key); each link
//!    is a whole stack of its own below this one (metrics, breaker, retry with its own deadline,
//!    client), so an open breaker refuses at once and a hang ends at that link's deadline.
//! 2. A failure that [`hand_over`] names moves the call to the next link at once (counted in
//!    `ai_fallbacks_total`, logged); any other failure is the answer. An answer the caller
//!    cannot use (`usable` false: an analysis the parser found nothing in) moves on too, and is
//!    served only if no later link does better.
//! 3. When every link failed, the learner gets the first link's failure, with a `Retry-After`
//!    (the shortest any link asked for), so a 503 says when to come back.
//! 4. The whole chain stays inside one deadline (`UPSTREAM_TIMEOUT_SECONDS`): past it the first
//!    link's failure, or a timeout, is the answer.

mod policy;
mod service;

pub use policy::{HandOver, hand_over};
pub use service::{FallbackChain, Link, LinkInfo};

#[cfg(test)]
mod tests;
