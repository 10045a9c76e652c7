//! The in-process tier in front of the others. It earns its place on hot entries: a popular
//! analysis or a retried upload is answered without a Redis round trip or a disk read, and
//! bursts of identical requests do not hammer Redis. It is bounded by entry count and by bytes,
//! and its TTL is short, so instances do not drift far from the shared tiers.
//!
//! It holds values ready to serve ([`Kept`]: decoded, with their `data` encoded), not their
//! stored bytes: a hit neither decodes nor encodes.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::future::Cache as MokaCache;

use super::answer::Kept;
use super::key::Cacheable;

pub(crate) struct MemoryTier {
    entries: MokaCache<String, Entry>,
    max_entries: u64,
    max_bytes: u64,
    ttl: Duration,
}

/// One kept value, its type erased so one tier (one bound) serves every kind: an `Arc<Kept<R>>`
/// for the `R` of the kind its key names. A key embeds its kind and a kind has one result type,
/// so a read never finds another type; if it did, that would be a miss.
#[derive(Clone)]
struct Entry {
    kept: Arc<dyn Any + Send + Sync>,
    expires_at: SystemTime,
    weight: usize,
}

/// Lives for the tier's TTL, or until the value's own expiry when that comes first: a value
/// filled up from disk near its end must not outlive it here.
struct ShortLived {
    ttl: Duration,
}

impl ShortLived {
    fn lifetime(&self, entry: &Entry) -> Duration {
        remaining(entry.expires_at, SystemTime::now()).map_or(Duration::ZERO, |left| left.min(self.ttl))
    }
}

impl Expiry<String, Entry> for ShortLived {
    fn expire_after_create(&self, _key: &String, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(self.lifetime(value))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.lifetime(value))
    }
}

fn remaining(expires_at: SystemTime, now: SystemTime) -> Option<Duration> {
    expires_at.duration_since(now).ok().filter(|left| !left.is_zero())
}

impl MemoryTier {
    pub fn new(max_entries: u64, max_bytes: u64, ttl: Duration) -> Self {
        let max_entries = max_entries.max(1);
        // moka bounds one weighted size. Charging every entry at least one "slot"
        // (max_bytes / max_entries) makes that single bound hold both limits: at most
        // max_entries entries, and at most max_bytes bytes.
        let slot = u32::try_from(max_bytes / max_entries).unwrap_or(u32::MAX).max(1);
        let entries = MokaCache::builder()
            .max_capacity(max_bytes)
            .weigher(move |key: &String, entry: &Entry| {
                let bytes = u32::try_from(key.len().saturating_add(entry.weight)).unwrap_or(u32::MAX);
                bytes.max(slot)
            })
            .expire_after(ShortLived { ttl })
            .build();
        Self { entries, max_entries, max_bytes, ttl }
    }

    /// moka does not return an entry past the lifetime `ShortLived` gave it, which never
    /// outlasts the value's own expiry: what this returns is fresh.
    pub async fn get<R: Cacheable>(&self, key: &str) -> Option<Arc<Kept<R>>> {
        let entry = self.entries.get(key).await?;
        entry.kept.downcast::<Kept<R>>().ok()
    }

    pub async fn insert<R: Cacheable>(&self, key: &str, kept: Arc<Kept<R>>) {
        let expires_at = kept.expires_at();
        if remaining(expires_at, SystemTime::now()).is_some() {
            let weight = kept.weight();
            self.entries.insert(key.to_string(), Entry { kept, expires_at, weight }).await;
        }
    }

    /// What the tier holds as its bound counts it (`bytes`: each entry's key and weight, at
    /// least `max_bytes / max_entries`), from moka's running totals: `/health/cache` needs no
    /// key, so it must not walk every entry. The totals may lag the last few writes.
    pub async fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "entries": self.entries.entry_count(),
            "bytes": self.entries.weighted_size(),
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
            "ttl_seconds": self.ttl.as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::speech::Transcription;

    fn kept(len: usize, expires_at: SystemTime) -> Arc<Kept<Transcription>> {
        let value = Transcription { text: "x".repeat(len), ..Default::default() };
        Arc::new(Kept::new(value, expires_at, len).map_err(|(_, error)| error).expect("encodes"))
    }

    fn fresh(len: usize) -> Arc<Kept<Transcription>> {
        kept(len, SystemTime::now() + Duration::from_secs(60))
    }

    #[tokio::test]
    async fn the_entry_bound_holds_even_for_tiny_values() {
        let tier = MemoryTier::new(10, 1 << 20, Duration::from_secs(60));
        for index in 0..100 {
            tier.insert(&format!("k{index}"), fresh(1)).await;
        }
        tier.entries.run_pending_tasks().await;
        assert!(tier.entries.entry_count() <= 10, "{} entries", tier.entries.entry_count());
    }

    #[tokio::test]
    async fn the_byte_bound_holds_for_large_values() {
        let tier = MemoryTier::new(1000, 10_000, Duration::from_secs(60));
        for index in 0..50 {
            tier.insert(&format!("k{index}"), fresh(1000)).await;
        }
        tier.entries.run_pending_tasks().await;
        let stats = tier.stats().await;
        assert!(stats["bytes"].as_u64().unwrap_or(u64::MAX) <= 10_000, "{stats}");
    }

    #[tokio::test]
    async fn an_already_expired_value_is_not_kept() {
        let tier = MemoryTier::new(10, 1 << 20, Duration::from_secs(60));
        tier.insert("k", kept(1, SystemTime::now() - Duration::from_secs(1))).await;
        assert!(tier.get::<Transcription>("k").await.is_none());
    }

    #[tokio::test]
    async fn a_value_read_as_another_type_is_a_miss() {
        let tier = MemoryTier::new(10, 1 << 20, Duration::from_secs(60));
        tier.insert("k", fresh(1)).await;
        assert!(tier.get::<crate::domain::speech::Pronunciation>("k").await.is_none());
        assert!(tier.get::<Transcription>("k").await.is_some());
    }
}
