//! `GET /health/cache`: the mode and why, each tier's state, and the operation counts.

use serde_json::{Value, json};

use super::tiered::{Cache, TIER_DISK, TIER_MEMORY, TIER_REDIS};

impl Cache {
    /// `{"mode", "mode_source", "redis": {connected, state: up|degraded|down, topology:
    /// single|cluster|sentinel, slot_coverage, failures}|null, "disk": {...}|null, "memory": {...},
    /// "ttl_seconds": {...}, "counts": {tier: {hits, misses, errors, sets, set_errors}}}`.
    /// `redis` is null in `disk_only` and `disk` null in `redis_only`. Pings Redis (bounded by
    /// the link's timeout) so `connected` is current rather than the last request's view.
    pub async fn health(&self) -> Value {
        let inner = &self.inner;
        let config = &inner.config;
        let redis = match &inner.redis {
            Some(redis) => redis.link().health().await,
            None if config.mode.uses_redis() => json!({ "connected": false, "state": "down", "failures": 0 }),
            None => Value::Null,
        };
        let disk = match &inner.disk {
            // Whether it is there, not where: the endpoint needs no key, and a path tells an
            // outsider about the machine.
            Some(disk) => {
                let mut stats = disk.stats();
                stats["exists"] = json!(disk.dir().is_dir());
                stats
            }
            None => Value::Null,
        };
        let mut counts = serde_json::Map::new();
        counts.insert(TIER_MEMORY.to_string(), self.tier_counts(TIER_MEMORY));
        if config.mode.uses_redis() {
            counts.insert(TIER_REDIS.to_string(), self.tier_counts(TIER_REDIS));
        }
        if config.mode.uses_disk() {
            counts.insert(TIER_DISK.to_string(), self.tier_counts(TIER_DISK));
        }
        json!({
            "mode": config.mode.as_str(),
            "mode_source": config.mode_source.as_str(),
            "redis": redis,
            "disk": disk,
            "memory": inner.memory.stats().await,
            "ttl_seconds": {
                "transcription": config.ttl.transcription.as_secs(),
                "pronunciation": config.ttl.pronunciation.as_secs(),
                "analysis": config.ttl.analysis.as_secs(),
            },
            "counts": Value::Object(counts),
        })
    }

    fn tier_counts(&self, tier: &str) -> Value {
        let counter = &self.inner.metrics.cache_operations_total;
        let read = |operation: &str, result: &str| counter.with_label_values(&[operation, result, tier]).get();
        json!({
            "hits": read("get", "hit"),
            "misses": read("get", "miss"),
            "errors": read("get", "error"),
            "sets": read("set", "ok"),
            "set_errors": read("set", "error"),
            "set_dropped": read("set", "dropped"),
        })
    }
}
