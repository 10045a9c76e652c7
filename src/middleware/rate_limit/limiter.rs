use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::key::Scope;
use super::lease::{Charge, Grant, Grantor, Leases, Take};
use crate::metrics::Metrics;
use crate::redis::{Lua, RedisLink, RedisLinkError};

/// Under the link's key space (`REDIS_KEY_PREFIX` and a version); the ceiling's buckets apart
/// from the users', whose keys can be the same string (an API key when no user id is sent).
const REDIS_BUCKET: &str = "ratelimit";
const REDIS_CEILING_BUCKET: &str = "ratelimit-key";
/// The local map is swept this often: governor's keyed state grows by one entry per key ever
/// seen, and `retain_recent` drops the keys whose bucket has refilled (that is, idle for up to a
/// minute at the default burst), so memory follows the keys active in the last minute or so.
const PRUNE_EVERY: Duration = Duration::from_secs(10);
const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `L`: long enough that a busy key asks Redis about once a second per instance, short enough
/// that the overshoot `r·L` is a second's worth of the limit.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained requests per minute per key (`RATE_LIMIT_PER_MINUTE`); 0 is read as 1.
    pub per_minute: u32,
    /// Requests allowed back to back from a rested key; `None` means `per_minute`, so a client
    /// may spend its whole minute at once but never more than that in any minute.
    pub burst: Option<u32>,
    /// Whether `X-API-Key` is checked (`API_KEYS` set), and so usable as an identity.
    pub api_keys_enabled: bool,
    /// Who is counted: each user, or each API key (address) whatever the user.
    pub scope: Scope,
    /// How long a lease of the shared limit is spent from memory (`L`, see `lease.rs`); zero
    /// asks Redis for every request.
    pub lease: Duration,
}

impl RateLimitConfig {
    /// The contract's per-user limit.
    pub fn new(per_minute: u32, api_keys_enabled: bool) -> Self {
        Self { per_minute, burst: None, api_keys_enabled, scope: Scope::User, lease: DEFAULT_LEASE }
    }

    /// The ceiling per API key (per client address without one).
    pub fn ceiling(per_minute: u32, api_keys_enabled: bool) -> Self {
        Self { scope: Scope::Ceiling, ..Self::new(per_minute, api_keys_enabled) }
    }
}

/// Which limiter decided: the shared one in Redis, or this instance's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limiter {
    Redis,
    Local,
}

impl Limiter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests a rested key may make at once (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now after this one (`RateLimit-Remaining`).
    pub remaining: u32,
    /// For a refusal, the wait until one more request is allowed (`Retry-After`).
    pub retry_after: Duration,
    /// Wait until the key is fully rested again (`RateLimit-Reset`).
    pub reset: Duration,
    pub limiter: Limiter,
}

impl Decision {
    /// The IETF draft `RateLimit-*` headers, in integer seconds.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(self.reset.as_secs_f64().ceil() as u64));
    }
}

type LocalLimiter = DefaultKeyedRateLimiter<String, StateInformationMiddleware>;

/// Cheap to clone; all clones share the local buckets and the Redis link.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    /// Decides when there is no Redis or Redis failed; also fed while Redis decides, so that a
    /// Redis outage does not hand every user a fresh burst on this instance.
    local: LocalLimiter,
    /// What this instance holds of the shared buckets; none with a lease length of zero, where
    /// every request asks Redis on its path (the exact limit).
    leases: Option<Leases>,
    redis: Option<RedisLink>,
    script: Lua,
    burst: u32,
    /// One request's cost: 60 s / per_minute.
    interval: Duration,
    api_keys_enabled: bool,
    scope: Scope,
    /// Time of the last sweep of `local`, in ms since `epoch`.
    last_prune_ms: AtomicU64,
    epoch: Instant,
    metrics: Metrics,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig, redis: Option<RedisLink>, metrics: Metrics) -> Self {
        let per_minute = NonZeroU32::new(config.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = config.burst.and_then(NonZeroU32::new).unwrap_or(per_minute);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            inner: Arc::new(Inner {
                local: governor::RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>(),
                leases: (!config.lease.is_zero())
                    .then(|| Leases::new(config.lease, quota.replenish_interval(), burst.get())),
                redis,
                script: Lua::new(include_str!("gcra.lua")),
                burst: burst.get(),
                interval: quota.replenish_interval(),
                api_keys_enabled: config.api_keys_enabled,
                scope: config.scope,
                last_prune_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                metrics,
            }),
        }
    }

    pub fn api_keys_enabled(&self) -> bool {
        self.inner.api_keys_enabled
    }

    pub fn scope(&self) -> Scope {
        self.inner.scope
    }

    /// One request against `key`: by the shared limit when there is a Redis, from what this
    /// instance holds of it (`lease.rs`), else, or while Redis cannot be asked, by the
    /// instance's own limiter. Waits only when one key sends this instance more than a lease's
    /// worth within one Redis round trip.
    pub(super) async fn charge(&self, key: &str) -> (Decision, Pending) {
        let Some(redis) = &self.inner.redis else {
            return (self.check_local(key), Pending(None));
        };
        let shared = SharedBucket { limiter: self.clone(), redis: redis.clone() };
        let (taken, pending) = self.take(key, &shared).await;
        (self.decision(key, taken), Pending(pending))
    }

    async fn take(&self, key: &str, shared: &SharedBucket) -> (Take, Option<Charge<SharedBucket>>) {
        match &self.inner.leases {
            Some(leases) => leases.take(key, shared).await,
            None => match shared.grant(key, 1, 0).await {
                Ok(grant) if grant.granted == 1 => (Take::Admitted { remaining: grant.remaining }, None),
                Ok(grant) => (Take::Refused { retry_after: grant.wait }, None),
                Err(error) => {
                    tracing::debug!(%error, "rate limit decided locally: redis unavailable");
                    (Take::Unreachable, None)
                }
            },
        }
    }

    fn decision(&self, key: &str, taken: Take) -> Decision {
        let inner = &self.inner;
        match taken {
            Take::Unreachable => self.check_local(key),
            Take::Admitted { remaining } => {
                // The shadow that takes over if Redis goes away is charged as Redis is.
                self.check_local(key);
                let remaining = u32::try_from(remaining).unwrap_or(u32::MAX).min(inner.burst);
                Decision {
                    allowed: true,
                    limit: inner.burst,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset: inner.interval.saturating_mul(inner.burst - remaining),
                    limiter: Limiter::Redis,
                }
            }
            Take::Refused { retry_after } => Decision {
                allowed: false,
                limit: inner.burst,
                remaining: 0,
                retry_after,
                reset: retry_after.saturating_add(inner.interval.saturating_mul(inner.burst - 1)),
                limiter: Limiter::Redis,
            },
        }
    }

    /// Return one request `charge` took from the shared limit, for a request another limit
    /// refused. The instance's own limiter keeps its charge (it cannot give back).
    pub(super) fn give_back(&self, key: &str, decision: &Decision) {
        if decision.allowed
            && decision.limiter == Limiter::Redis
            && let Some(leases) = &self.inner.leases
        {
            leases.give_back(key);
        }
    }

    /// Count a refusal in `rate_limit_rejections_total`.
    pub(super) fn count_refusal(&self, decision: &Decision) {
        let labels = [decision.limiter.as_str(), self.inner.scope.as_str()];
        self.inner.metrics.rate_limit_rejections_total.with_label_values(&labels).inc();
    }

    fn bucket(&self, redis: &RedisLink, key: &str) -> String {
        let kind = match self.inner.scope {
            Scope::User => REDIS_BUCKET,
            Scope::Ceiling => REDIS_CEILING_BUCKET,
        };
        redis.keys().limit(kind, key)
    }

    fn interval_us(&self) -> u64 {
        u64::try_from(self.inner.interval.as_micros()).unwrap_or(u64::MAX).max(1)
    }

    /// Count one request against `key` in this instance's own buckets: the decision without
    /// Redis, and the shadow kept while Redis decides.
    pub(super) fn check_local(&self, key: &str) -> Decision {
        self.prune_if_due();
        let inner = &self.inner;
        match inner.local.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(inner.burst);
                Decision {
                    allowed: true,
                    limit: inner.burst,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset: inner.interval.saturating_mul(inner.burst - remaining),
                    limiter: Limiter::Local,
                }
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(inner.local.clock().now());
                Decision {
                    allowed: false,
                    limit: inner.burst,
                    remaining: 0,
                    retry_after,
                    reset: retry_after.saturating_add(inner.interval.saturating_mul(inner.burst - 1)),
                    limiter: Limiter::Local,
                }
            }
        }
    }

    /// Sweep rested keys out of the local map and the leases, at most once per `PRUNE_EVERY`,
    /// by whichever request finds it due (no background task to supervise).
    fn prune_if_due(&self) {
        let now_ms = self.now_ms();
        let last_ms = self.inner.last_prune_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last_ms) < PRUNE_EVERY.as_millis() as u64 {
            return;
        }
        if self.inner.last_prune_ms.compare_exchange(last_ms, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.inner.local.retain_recent();
            self.inner.local.shrink_to_fit();
            if let Some(leases) = &self.inner.leases {
                leases.prune();
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The lease request a decision started, if any: sent when dropped (`lease::Charge`), so the
/// caller holds it until every limit has decided.
pub(super) struct Pending(#[allow(dead_code)] Option<Charge<SharedBucket>>);

/// The shared GCRA in Redis (`gcra.lua`), asked by the lease requests.
#[derive(Clone)]
pub(super) struct SharedBucket {
    limiter: RateLimiter,
    redis: RedisLink,
}

impl Grantor for SharedBucket {
    type Error = RedisLinkError;

    fn grant(&self, key: &str, want: u64, owed: u64) -> impl Future<Output = Result<Grant, RedisLinkError>> + Send {
        // After a failure the link backs off the part of Redis that holds this key (not all of
        // it: one dead shard must not make every user's limit local).
        let bucket = self.limiter.bucket(&self.redis, key);
        let call = self
            .limiter
            .inner
            .script
            .call()
            .key(&bucket)
            .arg(self.limiter.interval_us())
            .arg(self.limiter.inner.burst)
            .arg(want)
            .arg(owed);
        let redis = self.redis.clone();
        async move {
            let (granted, remaining, wait_ms): (u64, u64, u64) =
                redis.run(&bucket, |mut connection| async move { call.invoke(&mut connection).await }).await?;
            Ok(Grant { granted, remaining, wait: Duration::from_millis(wait_ms) })
        }
    }
}
