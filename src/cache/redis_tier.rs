//! The shared tier: every instance reads and writes the same keys, so one instance's upstream
//! call serves all. Every operation goes through `RedisLink::run` (timeout + health), under the
//! link's key space (`REDIS_KEY_PREFIX`, the digest as hash tag).

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;

use super::key::CacheKey;
use crate::redis::{Lua, RedisLink, RedisLinkError};

/// Store the value, then end the single-flight lease if it is still the caller's (its token).
/// The result and the lease share a slot (`KeySpace`), as one script's keys must on a cluster.
static SET_AND_RELEASE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) \
         if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end \
         return 1",
    )
});

pub(crate) struct RedisTier {
    link: RedisLink,
}

impl RedisTier {
    pub fn new(link: RedisLink) -> Self {
        Self { link }
    }

    pub fn link(&self) -> &RedisLink {
        &self.link
    }

    pub async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, RedisLinkError> {
        let key = &self.link.keys().result(key.kind().as_str(), key.digest());
        let found: Option<Vec<u8>> = self
            .link
            .run(key, |mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        Ok(found.map(Bytes::from))
    }

    /// `SET key value EX ttl`: Redis drops the entry itself.
    pub async fn set(&self, key: &CacheKey, value: &[u8], ttl: Duration) -> Result<(), RedisLinkError> {
        let seconds = ttl_seconds(ttl);
        let key = &self.link.keys().result(key.kind().as_str(), key.digest());
        self.link
            .run(key, |mut conn| async move {
                redis::cmd("SET").arg(key).arg(value).arg("EX").arg(seconds).query_async::<()>(&mut conn).await
            })
            .await
    }

    /// `set`, and in the same round trip delete the lease at `lease_key` if it holds `token`.
    pub async fn set_and_release(
        &self,
        key: &CacheKey,
        value: &[u8],
        ttl: Duration,
        lease_key: &str,
        token: &str,
    ) -> Result<(), RedisLinkError> {
        let seconds = ttl_seconds(ttl);
        let key = self.link.keys().result(key.kind().as_str(), key.digest());
        let call = SET_AND_RELEASE.call().key(&key).key(lease_key).arg(value).arg(seconds).arg(token);
        self.link.run(&key, |mut conn| async move { call.invoke::<i64>(&mut conn).await.map(drop) }).await
    }

    pub async fn delete(&self, key: &CacheKey) -> Result<(), RedisLinkError> {
        let key = &self.link.keys().result(key.kind().as_str(), key.digest());
        self.link
            .run(key, |mut conn| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut conn).await })
            .await
    }
}

/// Whole seconds, rounded up so a sub-second remainder does not become `EX 0` (an error).
fn ttl_seconds(ttl: Duration) -> u64 {
    (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1)
}
