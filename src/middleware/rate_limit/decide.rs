//! One request's decision by every limit, in order (the per-user limit, then the key's ceiling),
//! such that a refused request spends none of them. Without that, the requests one user's limit
//! refused still spent the ceiling of the key, and one user in a retry loop that ignores
//! `Retry-After` (~50 requests a second of 429s) held every other learner on the key at 429, on
//! every instance.
//!
//! 0. What this instance holds of each shared limit answers first (`lease.rs`): a served
//!    request with every lease holding, or a refusal still running, asks Redis nothing.
//! 1. Every shared limit still to ask runs its script at once (one Redis round trip, as before): the buckets
//!    are apart (on a cluster, on any shard), so one script could not check both atomically
//!    without putting every user of a key in the key's slot, and checking one after the other
//!    would add a round trip to every admitted request.
//! 2. In order, Redis's word where it answered, else the instance's own limiter's. A limiter
//!    after a refusal is not charged on this instance.
//! 3. A refused request gives back what the shared limits took from it: to the lease it came
//!    from, or, when it came with a round trip, to Redis (one more round trip, for refused
//!    requests only; see `gcra_refund.lua`).

use futures::future::join_all;

use super::limiter::{Decision, Limiter, RateLimiter};

/// How a limiter's answer was reached, so a later refusal can give it back.
enum Step {
    /// From what this instance holds of the shared limit: no Redis.
    Leased(Decision),
    /// Needs Redis (no lease, or it ran out); asked side by side with the others.
    Ask,
}

/// The decisions, in the limiters' order; a limiter this instance would have decided alone
/// after an earlier refusal is left out (it was not asked).
pub async fn decide(checks: &[(RateLimiter, String)]) -> Vec<Decision> {
    // 0. What the leases answer, in order; a refusal here asks nobody after it.
    let mut steps = Vec::with_capacity(checks.len());
    for (limiter, key) in checks {
        match limiter.charge_leased(key) {
            Some(decision) if !decision.allowed => {
                give_back_leased(checks, &steps);
                limiter.count_refusal(&decision);
                let mut decisions: Vec<Decision> = leased(&steps).cloned().collect();
                decisions.push(decision);
                return decisions;
            }
            Some(decision) => steps.push(Step::Leased(decision)),
            None => steps.push(Step::Ask),
        }
    }
    // A hit with every lease holding: no Redis, no await that could wait.
    if steps.iter().all(|step| matches!(step, Step::Leased(_))) {
        for (limiter, key) in checks {
            limiter.check_local(key);
        }
        return leased(&steps).cloned().collect();
    }
    let asked = join_all(checks.iter().zip(&steps).map(|((limiter, key), step)| async move {
        match step {
            Step::Ask => limiter.charge_redis(key).await,
            Step::Leased(decision) => Some(Ok(decision.clone())),
        }
    }))
    .await;
    let mut decisions = Vec::with_capacity(checks.len());
    let mut charged_in_redis = Vec::new();
    let mut charged_leases = Vec::new();
    let mut refused = false;
    for (((limiter, key), shared), step) in checks.iter().zip(asked).zip(&steps) {
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
            match step {
                Step::Leased(_) => charged_leases.push((limiter, key)),
                Step::Ask => charged_in_redis.push((limiter, key)),
            }
        }
        decisions.push(decision);
    }
    if refused {
        for (limiter, key) in charged_leases {
            limiter.give_back_leased(key);
        }
        // What a round trip took goes back the same way: the lease it came with may be this
        // request's only use of it.
        join_all(charged_in_redis.into_iter().map(|(limiter, key)| limiter.refund_redis(key))).await;
    }
    decisions
}

fn leased(steps: &[Step]) -> impl Iterator<Item = &Decision> {
    steps.iter().filter_map(|step| match step {
        Step::Leased(decision) => Some(decision),
        Step::Ask => None,
    })
}

fn give_back_leased(checks: &[(RateLimiter, String)], steps: &[Step]) {
    for ((limiter, key), step) in checks.iter().zip(steps) {
        if matches!(step, Step::Leased(_)) {
            limiter.give_back_leased(key);
        }
    }
}
