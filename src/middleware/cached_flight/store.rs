//! The part of a miss that must outlive its clients: look the key up, call, store. Run on the
//! detached task when the layer has one, so a slow answer whose clients all left is still stored
//! (and its lease ended) for their retry.

use tower::{Service, ServiceExt};

use super::flights::Flights;
use super::lease::Claim;
use super::service::upstream_of;
use crate::cache::{CacheKey, CacheKind, Cacheable};
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

/// Look up, call, store, with `claim` (this instance's lease on `key`, if it took one) held by the
/// call and ended by its store or released.
pub(super) async fn look_call_store<S, J, R>(
    flights: &Flights,
    inner: S,
    job: J,
    key: CacheKey,
    claim: Option<Claim>,
    admission: &Admission,
) -> Result<Served<R>, UpstreamError>
where
    S: Service<J, Response = Served<R>, Error = UpstreamError> + Send + 'static,
    S::Future: Send,
    J: Send + 'static,
    R: Cacheable,
{
    let cache = &flights.cache;
    // A claim just found Redis without the value: its lookup skips Redis.
    let found = match &claim {
        Some(_) => cache.get_claimed::<R>(&key).await,
        None => cache.get::<R>(&key).await,
    };
    if let Some((value, tier)) = found {
        if let Some(claim) = claim {
            claim.release().await;
        }
        return Ok(Served { value, origin: Origin::Cache { tier } });
    }
    // Every tier missed: this call would cost, so the user's budget decides now.
    if !admission.affords(operation_of::<R>()).await {
        if let Some(claim) = claim {
            claim.release().await;
        }
        return Err(UpstreamError::NotAdmitted { upstream: upstream_of::<R>() });
    }
    let served = match &claim {
        Some(claim) => claim.hold_while(inner.oneshot(job)).await,
        None => inner.oneshot(job).await,
    };
    let stored = match &served {
        Ok(served) if served.origin == Origin::Upstream && served.value.is_cacheable() => {
            cache.set_releasing(&key, &served.value, claim.as_ref().and_then(Claim::lease_ref)).await
        }
        _ => false,
    };
    if let Some(claim) = claim {
        if stored { claim.used() } else { claim.release().await }
    }
    served
}
