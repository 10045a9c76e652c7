//! `Cache`: the tiers of the configured mode behind one get/set, with fill-up and metrics.
//!
//! Lookup order is memory, then Redis, then disk; a hit below fills the tiers above it. Writes
//! go to every tier of the mode: memory and the disk queue at once, Redis in a second step
//! ([`SharedStore`]) that the caller may run after its answer has gone. The memory tier holds
//! values ready to serve ([`Kept`]), so a memory hit decodes nothing. No method returns an
//! error: Redis or disk trouble is logged (Redis once per state change, by `RedisLink`), counted
//! as `result="error"`, and is a miss.
//!
//! The public methods box their work. A lookup or a store lasts milliseconds, but the futures
//! that await one (the cache and single-flight layers) live for the whole upstream call, seconds,
//! thousands at once; an async state machine reserves room for the largest future it awaits for
//! all of its life, so an unboxed Redis and moka future would be carried through the wait.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::answer::{Answer, Kept};
use super::disk::{DEFAULT_DISK_MAX_BYTES, DiskConfig, DiskCounters, DiskRead, DiskTier};
use super::envelope::{self, Opened, Sealed};
use super::key::{CacheKey, CacheKind, Cacheable};
use super::memory::MemoryTier;
use super::mode::{CacheMode, ModeSource};
use super::redis_tier::RedisTier;
use crate::metrics::Metrics;
use crate::metrics::labels::Tier;
use crate::redis::RedisLink;

/// `CACHE_TTL_SECONDS` default: one week.
pub const DEFAULT_TTL: Duration = Duration::from_secs(604_800);

/// Time to live per kind of result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    pub transcription: Duration,
    pub pronunciation: Duration,
    pub analysis: Duration,
}

impl Ttls {
    pub fn uniform(ttl: Duration) -> Self {
        Self { transcription: ttl, pronunciation: ttl, analysis: ttl }
    }

    pub fn for_kind(&self, kind: CacheKind) -> Duration {
        match kind {
            CacheKind::Transcription => self.transcription,
            CacheKind::Pronunciation => self.pronunciation,
            CacheKind::Analysis => self.analysis,
        }
    }
}

impl Default for Ttls {
    fn default() -> Self {
        Self::uniform(DEFAULT_TTL)
    }
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub mode: CacheMode,
    pub mode_source: ModeSource,
    /// `DISK_CACHE_DIR`; unused in `redis_only`.
    pub disk_dir: PathBuf,
    /// `DISK_CACHE_MAX_BYTES`: the disk tier's bound (values and their index lines).
    pub disk_max_bytes: u64,
    pub ttl: Ttls,
    pub memory_max_entries: u64,
    pub memory_max_bytes: u64,
    /// Upper bound on a memory entry's life, whatever its own TTL.
    pub memory_ttl: Duration,
}

impl CacheConfig {
    /// Defaults for everything but the mode and the disk directory.
    pub fn new(mode: CacheMode, mode_source: ModeSource, disk_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode,
            mode_source,
            disk_dir: disk_dir.into(),
            disk_max_bytes: DEFAULT_DISK_MAX_BYTES,
            ttl: Ttls::default(),
            memory_max_entries: 10_000,
            memory_max_bytes: 64 * 1024 * 1024,
            memory_ttl: Duration::from_secs(300),
        }
    }
}

/// Cheap to clone; clones share the tiers.
#[derive(Clone)]
pub struct Cache {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: CacheConfig,
    pub(super) memory: MemoryTier,
    /// `None` in `disk_only`, or when no Redis was configured.
    pub(super) redis: Option<RedisTier>,
    /// `None` in `redis_only`.
    pub(super) disk: Option<DiskTier>,
    pub(super) metrics: Metrics,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CountMisses {
    Yes,
    No,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AskRedis {
    Yes,
    No,
}

/// A single-flight lease this instance holds on a key: where it is in Redis and the token that
/// proves it ours, so a store can end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRef<'a> {
    pub key: &'a str,
    pub token: &'a str,
}

pub(super) const TIER_MEMORY: &str = Tier::Memory.as_str();
pub(super) const TIER_REDIS: &str = Tier::Redis.as_str();
pub(super) const TIER_DISK: &str = Tier::Disk.as_str();

impl Cache {
    /// `redis` is ignored in `disk_only`: that mode promises no Redis traffic from the cache.
    pub fn new(config: CacheConfig, redis: Option<RedisLink>, metrics: Metrics) -> Self {
        let memory = MemoryTier::new(config.memory_max_entries, config.memory_max_bytes, config.memory_ttl);
        let redis = redis.filter(|_| config.mode.uses_redis()).map(RedisTier::new);
        let disk = config.mode.uses_disk().then(|| {
            let set = |result| metrics.cache_operations_total.with_label_values(&["set", result, TIER_DISK]);
            let counters = DiskCounters { set_ok: set("ok"), set_error: set("error"), set_dropped: set("dropped") };
            DiskTier::open(DiskConfig::new(config.disk_dir.clone(), config.disk_max_bytes), counters)
        });
        Self { inner: Arc::new(Inner { config, memory, redis, disk, metrics }) }
    }

    pub fn mode(&self) -> CacheMode {
        self.inner.config.mode
    }

    /// The Redis link the cache uses; `None` in `disk_only` or without Redis.
    pub fn redis(&self) -> Option<&RedisLink> {
        self.inner.redis.as_ref().map(RedisTier::link)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// At shutdown: the disk tier finishes the writes it queued, then its thread ends.
    pub async fn close(&self) {
        if let Some(disk) = &self.inner.disk {
            disk.close().await;
        }
    }

    /// Waits until the disk tier has done every write queued so far (tests; benchmarks).
    pub async fn flush_disk(&self) {
        if let Some(disk) = &self.inner.disk {
            disk.flush().await;
        }
    }

    /// A value read from Redis by someone else's round trip (the single-flight claim script):
    /// counted and kept like a Redis hit of `get`; an unreadable entry is dropped and is `None`.
    pub async fn accept_from_redis<T: Cacheable>(
        &self,
        key: &CacheKey,
        bytes: Bytes,
    ) -> Option<(Answer<T>, &'static str)> {
        Box::pin(async {
            match envelope::open::<T>(bytes, SystemTime::now()) {
                Opened::Fresh(value, sealed) => {
                    self.count("get", "hit", TIER_REDIS);
                    self.touch_disk(key);
                    Some((self.keep(key, value, &sealed).await, TIER_REDIS))
                }
                Opened::Expired | Opened::Invalid => {
                    if let Some(redis) = &self.inner.redis {
                        let _ = redis.delete(key).await;
                    }
                    None
                }
            }
        })
        .await
    }

    /// The value and the tier it came from (`memory`, `redis`, `disk`), or `None` on a miss.
    pub async fn get<T: Cacheable>(&self, key: &CacheKey) -> Option<(T, &'static str)> {
        self.find::<T>(key).await.map(|(answer, tier)| (answer.into_value(), tier))
    }

    /// `get`, as an answer ready to serve: the memory tier's copy when there is one.
    pub async fn find<T: Cacheable>(&self, key: &CacheKey) -> Option<(Answer<T>, &'static str)> {
        Box::pin(self.lookup(key, CountMisses::Yes, AskRedis::Yes)).await
    }

    /// A `find` for the holder of the single-flight lease on `key`, whose claim just found Redis
    /// without the value: Redis is not asked again (its miss is counted as one).
    pub async fn find_claimed<T: Cacheable>(&self, key: &CacheKey) -> Option<(Answer<T>, &'static str)> {
        Box::pin(self.lookup(key, CountMisses::Yes, AskRedis::No)).await
    }

    /// A `find` whose misses are not counted: for re-checks and polls on behalf of a request
    /// whose own lookup is counted elsewhere, so the hit ratio stays one lookup per request.
    pub async fn probe<T: Cacheable>(&self, key: &CacheKey) -> Option<(Answer<T>, &'static str)> {
        Box::pin(self.lookup(key, CountMisses::No, AskRedis::Yes)).await
    }

    /// The memory tier alone, for a fast path in front of costlier coordination: a hit is
    /// counted like any hit; a miss counts nothing and is left for the caller's full lookup to
    /// count, so each request still counts one lookup.
    pub async fn get_from_memory<T: Cacheable>(&self, key: &CacheKey) -> Option<Answer<T>> {
        let kept = Box::pin(self.inner.memory.get::<T>(key.as_str())).await?;
        self.count("get", "hit", TIER_MEMORY);
        self.touch_disk(key);
        Some(Answer::Kept(kept))
    }

    /// Store in every tier of the mode. Values that are not cacheable are ignored.
    pub async fn set<T: Cacheable>(&self, key: &CacheKey, value: &T) {
        let (_, shared) = self.store_local(key, value.clone()).await;
        if let Some(shared) = shared {
            shared.finish(None).await;
        }
    }

    /// The part of a store an answer waits for: the memory tier, so this instance's next hits
    /// and the joiners of its flight find it at once, and the disk tier's queue. The Redis
    /// store that remains ([`SharedStore`]; `None` without Redis) may run once the answer has
    /// been sent. A value that is not cacheable is only handed back.
    pub async fn store_local<T: Cacheable>(&self, key: &CacheKey, value: T) -> (Answer<T>, Option<SharedStore>) {
        Box::pin(async move {
            if !value.is_cacheable() {
                return (Answer::Value(value), None);
            }
            let ttl = self.inner.config.ttl.for_kind(T::KIND);
            let sealed = match envelope::seal(&value, ttl, SystemTime::now()) {
                Ok(sealed) => sealed,
                Err(error) => {
                    tracing::warn!(key = %key, %error, "cache value not serialisable; not stored");
                    return (Answer::Value(value), None);
                }
            };
            let answer = self.keep(key, value, &sealed).await;
            self.count("set", "ok", TIER_MEMORY);
            // Queued, never awaited: the disk's worker thread writes it (see `cache::disk`).
            if let Some(disk) = &self.inner.disk {
                disk.put(key.as_str(), sealed.bytes.clone(), sealed.expires_at);
            }
            let shared =
                self.inner.redis.is_some().then(|| SharedStore { cache: self.clone(), key: key.clone(), sealed, ttl });
            (answer, shared)
        })
        .await
    }

    /// Into the memory tier, ready to serve: its `data` encoded once, here.
    async fn keep<T: Cacheable>(&self, key: &CacheKey, value: T, sealed: &Sealed) -> Answer<T> {
        match Kept::new(value, sealed.expires_at, sealed.bytes.len()) {
            Ok(kept) => {
                let kept = Arc::new(kept);
                self.inner.memory.insert(key.as_str(), kept.clone()).await;
                Answer::Kept(kept)
            }
            Err((value, error)) => {
                tracing::warn!(key = %key, %error, "cache value not serialisable; not kept in memory");
                Answer::Value(value)
            }
        }
    }

    async fn lookup<T: Cacheable>(
        &self,
        key: &CacheKey,
        count_misses: CountMisses,
        ask_redis: AskRedis,
    ) -> Option<(Answer<T>, &'static str)> {
        let now = SystemTime::now();
        let miss = |tier| {
            if count_misses == CountMisses::Yes {
                self.count("get", "miss", tier);
            }
        };

        if let Some(kept) = self.inner.memory.get::<T>(key.as_str()).await {
            self.count("get", "hit", TIER_MEMORY);
            self.touch_disk(key);
            return Some((Answer::Kept(kept), TIER_MEMORY));
        }
        miss(TIER_MEMORY);

        if let Some(redis) = &self.inner.redis {
            // This instance's single-flight claim just found Redis without the value.
            let lookup = if ask_redis == AskRedis::No { Ok(None) } else { redis.get(key).await };
            match lookup {
                Ok(Some(bytes)) => match envelope::open::<T>(bytes, now) {
                    Opened::Fresh(value, sealed) => {
                        self.count("get", "hit", TIER_REDIS);
                        self.touch_disk(key);
                        return Some((self.keep(key, value, &sealed).await, TIER_REDIS));
                    }
                    Opened::Expired | Opened::Invalid => {
                        tracing::debug!(key = %key, "unreadable redis cache entry; dropping it");
                        let _ = redis.delete(key).await;
                        miss(TIER_REDIS);
                    }
                },
                Ok(None) => miss(TIER_REDIS),
                Err(error) => {
                    // Not logged here: RedisLink logs the up/down transition once.
                    tracing::trace!(key = %key, %error, "redis cache get failed");
                    self.count("get", "error", TIER_REDIS);
                }
            }
        }

        if let Some(disk) = &self.inner.disk {
            match disk.get(key.as_str()).await {
                DiskRead::Found(bytes) => match envelope::open::<T>(bytes, now) {
                    Opened::Fresh(value, sealed) => {
                        self.count("get", "hit", TIER_DISK);
                        return Some((self.fill_from_disk(key, value, &sealed, now).await, TIER_DISK));
                    }
                    Opened::Expired | Opened::Invalid => {
                        disk.remove(key.as_str());
                        miss(TIER_DISK);
                    }
                },
                DiskRead::Missing => miss(TIER_DISK),
                DiskRead::Corrupt(reason) => {
                    tracing::warn!(key = %key, dir = %disk.dir().display(), %reason, "corrupt disk cache entry removed");
                    miss(TIER_DISK);
                }
                DiskRead::Error(reason) => {
                    tracing::warn!(key = %key, dir = %disk.dir().display(), %reason, "disk cache read failed");
                    self.count("get", "error", TIER_DISK);
                }
            }
        }
        None
    }

    /// A hit in a tier above (memory, Redis) keeps the key's disk entry among the last to go:
    /// otherwise a key served from memory for hours looks unused to the disk tier, which
    /// evicts it first.
    fn touch_disk(&self, key: &CacheKey) {
        if let Some(disk) = &self.inner.disk {
            disk.touch(key.as_str());
        }
    }

    async fn fill_from_disk<T: Cacheable>(
        &self,
        key: &CacheKey,
        value: T,
        sealed: &Sealed,
        now: SystemTime,
    ) -> Answer<T> {
        let answer = self.keep(key, value, sealed).await;
        if let (Some(redis), Some(left)) = (&self.inner.redis, sealed.remaining(now)) {
            self.store_redis(redis, key, sealed, left, None).await;
        }
        answer
    }

    /// With this instance's `lease` on the key, the same round trip also ends it; if the
    /// store fails, the lease expires on its own (its holder no longer releases it).
    async fn store_redis(
        &self,
        redis: &RedisTier,
        key: &CacheKey,
        sealed: &Sealed,
        ttl: Duration,
        lease: Option<LeaseRef<'_>>,
    ) {
        let stored = match lease {
            Some(lease) => redis.set_and_release(key, &sealed.bytes, ttl, lease.key, lease.token).await,
            None => redis.set(key, &sealed.bytes, ttl).await,
        };
        match stored {
            Ok(()) => self.count("set", "ok", TIER_REDIS),
            Err(error) => {
                tracing::trace!(key = %key, %error, "redis cache set failed");
                self.count("set", "error", TIER_REDIS);
            }
        }
    }

    fn count(&self, operation: &str, result: &str, tier: &str) {
        self.inner.metrics.cache_operations_total.with_label_values(&[operation, result, tier]).inc();
    }
}

/// The Redis half of a store ([`Cache::store_local`]): owns what it needs, so it can run after
/// the answer has been sent, on a task of its own.
pub struct SharedStore {
    cache: Cache,
    key: CacheKey,
    sealed: Sealed,
    ttl: Duration,
}

impl SharedStore {
    /// Store in Redis; with this instance's `lease` on the key, the same round trip ends it.
    /// True when the lease went with the store (if the store failed, the lease expires on its
    /// own); false without a lease.
    pub async fn finish(self, lease: Option<LeaseRef<'_>>) -> bool {
        let Self { cache, key, sealed, ttl } = self;
        let Some(redis) = &cache.inner.redis else {
            return false;
        };
        Box::pin(cache.store_redis(redis, &key, &sealed, ttl, lease)).await;
        lease.is_some()
    }
}
