//! The part of a miss that must outlive its clients: look the key up, call, store. Run on the
//! detached task when the layer has one, so a slow answer whose clients all left is still stored
//! (and its lease ended) for their retry. The Redis half of the store runs after the answer, on
//! a task of its own, tracked like the detached calls so shutdown waits for it.

use tower::{Service, ServiceExt};

use super::flights::Flights;
use super::lease::Claim;
use super::service::upstream_of;
use crate::cache::{Answer, CacheKey, CacheKeyed, CacheKind, Cacheable, SharedStore, answer_key};
use crate::domain::served::{Origin, Served};
use crate::metrics::labels::Operation;
use crate::middleware::rate_limit::Admission;
use crate::upstream::error::UpstreamError;

fn operation_of<R: Cacheable>() -> Operation {
    match R::KIND {
        CacheKind::Transcription => Operation::Transcribe,
        CacheKind::Pronunciation => Operation::Pronunciation,
        CacheKind::Analysis => Operation::Analyze,
    }
}

/// A job's keys ([`CacheKeyed::chain_keys`]), at least one: the first is the job's own, the one
/// leased and the one every flight is registered under; a fallback chain's later links follow.
pub(super) struct ChainKeys(Vec<(Option<String>, CacheKey)>);

impl ChainKeys {
    /// `own`: the job's own key, already made.
    pub(super) fn of<J: CacheKeyed>(job: &J, own: CacheKey) -> Self {
        let keys = job.chain_keys_from(own);
        assert!(!keys.is_empty(), "a job has at least its own key");
        Self(keys)
    }

    pub(super) fn first(&self) -> &CacheKey {
        &self.0[0].1
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &(Option<String>, CacheKey)> {
        self.0.iter()
    }
}

/// Look up, call, store, with `claim` (this instance's lease on the first key, if it took one)
/// held by the call and ended by its store or released. Every key is looked up, in order; the
/// answer is stored under the key of the model that made it.
///
/// The answer waits only for the memory tier (and the disk tier's queue): what the Redis store
/// and the lease's end cost runs after it, on a tracked task ([`Flights::after_answer`]). Until
/// that store lands the lease stays, so waiters on other instances keep polling and find the
/// value as soon as it does.
pub(super) async fn look_call_store<S, J, R>(
    flights: &Flights,
    inner: S,
    job: J,
    keys: ChainKeys,
    claim: Option<Claim>,
    admission: &Admission,
) -> Result<Served<Answer<R>>, UpstreamError>
where
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Send + 'static,
    S::Future: Send,
    J: Send + 'static,
    R: Cacheable,
{
    let cache = &flights.cache;
    let key = keys.first();
    // A claim just found Redis without the value: its lookup skips Redis.
    let mut found = match &claim {
        Some(_) => cache.find_claimed::<R>(key).await,
        None => cache.find::<R>(key).await,
    };
    for (_, later) in keys.iter().skip(1) {
        if found.is_some() {
            break;
        }
        found = cache.find::<R>(later).await;
    }
    if let Some((answer, tier)) = found {
        flights.after_answer(Box::pin(settle(claim, None))).await;
        return Ok(Served { value: answer, origin: Origin::Cache { tier } });
    }
    // Every tier missed: this call would cost, so the user's budget decides now.
    if !admission.affords(operation_of::<R>()).await {
        flights.after_answer(Box::pin(settle(claim, None))).await;
        return Err(UpstreamError::NotAdmitted { upstream: upstream_of::<R>() });
    }
    let served = match &claim {
        Some(claim) => claim.hold_while(inner.oneshot(job)).await,
        None => inner.oneshot(job).await,
    };
    let served = match served {
        Ok(served) if served.origin == Origin::Upstream && served.value.is_cacheable() => served,
        other => {
            flights.after_answer(Box::pin(settle(claim, None))).await;
            return other.map(|served| served.map(Answer::Value));
        }
    };
    let Some(home) = answer_key(&keys.0, &served.value) else {
        flights.after_answer(Box::pin(settle(claim, None))).await;
        return Ok(served.map(Answer::Value));
    };
    // Another link's key has another slot than the lease's (a Cluster script may not touch
    // both): its store leaves the claim to be released after it.
    let ends_lease = home == key;
    let (answer, shared) = cache.store_local(home, served.value).await;
    flights.after_answer(Box::pin(settle(claim, shared.map(|shared| (shared, ends_lease))))).await;
    Ok(Served { value: answer, origin: Origin::Upstream })
}

/// What is left of a call once its answer can go: the Redis store (ending the lease with it
/// when `true` says it may), then the claim, used by that store or released.
async fn settle(claim: Option<Claim>, shared: Option<(SharedStore, bool)>) {
    let stored = match shared {
        Some((shared, ends_lease)) => {
            let lease = if ends_lease { claim.as_ref().and_then(Claim::lease_ref) } else { None };
            shared.finish(lease).await
        }
        None => false,
    };
    if let Some(claim) = claim {
        if stored { claim.used() } else { claim.release().await }
    }
}
