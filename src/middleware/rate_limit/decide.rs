//! One request's decision by every limit, in order (the per-user limit, then the key's ceiling),
//! such that a refused request spends none of them. Without that, the requests one user's limit
//! refused still spent the ceiling of the key, and one user in a retry loop that ignores
//! `Retry-After` (~50 requests a second of 429s) held every other learner on the key at 429, on
//! every instance.
//!
//! 1. Every shared limit's script runs at once (one Redis round trip, as before): the buckets
//!    are apart (on a cluster, on any shard), so one script could not check both atomically
//!    without putting every user of a key in the key's slot, and checking one after the other
//!    would add a round trip to every admitted request.
//! 2. In order, Redis's word where it answered, else the instance's own limiter's. A limiter
//!    after a refusal is not charged on this instance.
//! 3. A refused request gives back what the shared limits took from it (one more round trip,
//!    for refused requests only; see `gcra_refund.lua`).

use futures::future::join_all;

use super::limiter::{Decision, Limiter, RateLimiter};

/// The decisions, in the limiters' order; a limiter this instance would have decided alone
/// after an earlier refusal is left out (it was not asked).
pub async fn decide(checks: &[(RateLimiter, String)]) -> Vec<Decision> {
    let shared = join_all(checks.iter().map(|(limiter, key)| limiter.charge_redis(key))).await;
    let mut decisions = Vec::with_capacity(checks.len());
    let mut charged_in_redis = Vec::new();
    let mut refused = false;
    for ((limiter, key), shared) in checks.iter().zip(shared) {
        let decision = match shared {
            Some(Ok(decision)) => {
                // The shadow that takes over if Redis goes away is charged as Redis is.
                if !refused {
                    limiter.check_local(key);
                }
                decision
            }
            unshared => {
                if let Some(Err(error)) = unshared {
                    // The link logs Redis going down once; per request this is routine.
                    tracing::debug!(%error, "rate limit decided locally: redis unavailable");
                }
                if refused {
                    continue;
                }
                limiter.check_local(key)
            }
        };
        if !decision.allowed {
            limiter.count_refusal(&decision);
            refused = true;
        } else if decision.limiter == Limiter::Redis {
            charged_in_redis.push((limiter, key));
        }
        decisions.push(decision);
    }
    if refused {
        join_all(charged_in_redis.into_iter().map(|(limiter, key)| limiter.refund_redis(key))).await;
    }
    decisions
}
