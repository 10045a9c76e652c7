//! What every handler can reach. Cheap to clone: one `Arc`.

use std::ops::Deref;
use std::sync::Arc;

use crate::audio::Preparer;
use crate::audio::fetch::AudioFetcher;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::redis::RedisLink;
use crate::stacks::Upstreams;
use crate::usage::Usage;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// Parsed once at start-up; handlers read limits and defaults from it.
    pub settings: Settings,
    pub metrics: Metrics,
    pub readiness: Readiness,
    /// The three upstream stacks and the handles that report their health.
    pub upstreams: Upstreams,
    /// Downloads `audio_url`s under the SSRF policy.
    pub fetcher: AudioFetcher,
    /// Makes recordings into what Azure takes, on the bounded blocking pool.
    pub audio: Preparer,
    /// `RATE_LIMIT_REDIS_*`: the limits' own store, when they have one (else the cache's Redis).
    pub limits_redis: Option<RedisLink>,
    /// Per-user usage and budgets (`GET /api/usage`, the usage layer).
    pub usage: Usage,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
