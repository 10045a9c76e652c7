//! The in-process tier in front of the others. It earns its place on hot entries: a popular
//! analysis or a retried upload is answered without a Redis round trip or a disk read, and
//! bursts of identical requests do not hammer Redis. It is bounded by entry count and by bytes,
//! and its TTL is short, so instances do not drift far from the shared tiers.

use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::future::Cache as MokaCache;

use super::envelope::Sealed;

pub(crate) struct MemoryTier {
    entries: MokaCache<String, Sealed>,
    max_entries: u64,
    max_bytes: u64,
    ttl: Duration,
}

/// Lives for the tier's TTL, or until the envelope's own expiry when that comes first: a value
/// filled up from disk near its end must not outlive it here.
struct ShortLived {
    ttl: Duration,
}

impl ShortLived {
    fn lifetime(&self, value: &Sealed) -> Duration {
        value.remaining(SystemTime::now()).map_or(Duration::ZERO, |left| left.min(self.ttl))
    }
}

impl Expiry<String, Sealed> for ShortLived {
    fn expire_after_create(&self, _key: &String, value: &Sealed, _created_at: Instant) -> Option<Duration> {
        Some(self.lifetime(value))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Sealed,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.lifetime(value))
    }
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
            .weigher(move |key: &String, value: &Sealed| {
                let bytes = u32::try_from(key.len() + value.bytes.len()).unwrap_or(u32::MAX);
                bytes.max(slot)
            })
            .expire_after(ShortLived { ttl })
            .build();
        Self { entries, max_entries, max_bytes, ttl }
    }

    pub async fn get(&self, key: &str) -> Option<Sealed> {
        self.entries.get(key).await
    }

    pub async fn insert(&self, key: &str, value: Sealed) {
        if value.remaining(SystemTime::now()).is_some() {
            self.entries.insert(key.to_string(), value).await;
        }
    }

    pub async fn remove(&self, key: &str) {
        self.entries.invalidate(key).await;
    }

    /// What the tier holds as its bound counts it (`bytes`: each entry's key and value, at least
    /// `max_bytes / max_entries`), from moka's running totals: `/health/cache` needs no key, so
    /// it must not walk every entry. The totals may lag the last few writes.
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
    use bytes::Bytes;

    use super::*;

    fn sealed(len: usize) -> Sealed {
        Sealed { bytes: Bytes::from(vec![b'x'; len]), expires_at: SystemTime::now() + Duration::from_secs(60) }
    }

    #[tokio::test]
    async fn the_entry_bound_holds_even_for_tiny_values() {
        let tier = MemoryTier::new(10, 1 << 20, Duration::from_secs(60));
        for index in 0..100 {
            tier.insert(&format!("k{index}"), sealed(1)).await;
        }
        tier.entries.run_pending_tasks().await;
        assert!(tier.entries.entry_count() <= 10, "{} entries", tier.entries.entry_count());
    }

    #[tokio::test]
    async fn the_byte_bound_holds_for_large_values() {
        let tier = MemoryTier::new(1000, 10_000, Duration::from_secs(60));
        for index in 0..50 {
            tier.insert(&format!("k{index}"), sealed(1000)).await;
        }
        tier.entries.run_pending_tasks().await;
        let stats = tier.stats().await;
        assert!(stats["bytes"].as_u64().unwrap_or(u64::MAX) <= 10_000, "{stats}");
    }

    #[tokio::test]
    async fn an_already_expired_value_is_not_kept() {
        let tier = MemoryTier::new(10, 1 << 20, Duration::from_secs(60));
        let expired =
            Sealed { bytes: Bytes::from_static(b"x"), expires_at: SystemTime::now() - Duration::from_secs(1) };
        tier.insert("k", expired).await;
        assert!(tier.get("k").await.is_none());
    }
}
