//! One request's decision by every limit, in order (the per-user limit, then the key's ceiling),
//! such that a refused request spends none of them. Without that, the requests one user's limit
//! refused still spent the ceiling of the key, and one user in a retry loop that ignores
//! `Retry-After` (~50 requests a second of 429s) held every other learner on the key at 429, on
//! every instance.
//!
//! Each limiter decides from what this instance holds of its shared limit (`lease.rs`), so
//! asking them one after the other costs no round trip. A limiter after a refusal is not asked,
//! and a refused request gives back to the earlier ones what they took for it.

use super::limiter::{Decision, RateLimiter};

/// The decisions, in the limiters' order, up to the first refusal.
pub async fn decide(checks: &[(RateLimiter, String)]) -> Vec<Decision> {
    let mut decisions: Vec<Decision> = Vec::with_capacity(checks.len());
    // Lease requests the decision starts go when this is dropped, after any give-back.
    let mut pending = Vec::with_capacity(checks.len());
    for (limiter, key) in checks {
        let (decision, charge) = limiter.charge(key).await;
        pending.push(charge);
        if !decision.allowed {
            for ((earlier, key), taken) in checks.iter().zip(&decisions) {
                earlier.give_back(key, taken);
            }
            limiter.count_refusal(&decision);
            decisions.push(decision);
            break;
        }
        decisions.push(decision);
    }
    decisions
}
