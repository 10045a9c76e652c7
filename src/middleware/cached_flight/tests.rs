use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower::{Layer, ServiceExt, service_fn};

use super::{CachedFlightConfig, CachedFlightLayer};
use crate::cache::{Cache, CacheConfig, CacheMode, ModeSource};
use crate::domain::jobs::AnalyzeJob;
use crate::domain::served::Served;
use crate::domain::speech::Transcription;
use crate::metrics::Metrics;
use crate::middleware::rate_limit::{Admission, Admitted, Decision, Limiter};
use crate::upstream::error::UpstreamError;

fn refused() -> Admission {
    let second = Duration::from_secs(1);
    Admission::new(async move {
        vec![Decision {
            allowed: false,
            limit: 1,
            remaining: 0,
            retry_after: second,
            reset: second,
            limiter: Limiter::Local,
        }]
    })
}

/// An admission is the only way into a stack, and one the rate limit refused lets no call through.
#[tokio::test]
async fn a_job_whose_admission_was_refused_never_reaches_the_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(CacheConfig::new(CacheMode::DiskOnly, ModeSource::Env, dir.path()), None, Metrics::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let stack =
        CachedFlightLayer::new(cache, CachedFlightConfig::default()).layer(service_fn(move |_job: AnalyzeJob| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, UpstreamError>(Served::fresh(Transcription::default())) }
        }));
    let job = || AnalyzeJob::new("I go to the store yesterday.", "m");

    let refusal = stack.clone().oneshot(Admitted::new(refused(), job())).await;
    assert!(matches!(refusal, Err(UpstreamError::NotAdmitted { .. })), "{refusal:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no upstream call without admission");

    stack.oneshot(Admitted::new(Admission::unlimited(), job())).await.expect("admitted");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
