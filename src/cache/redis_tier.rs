//! The shared tier: every instance reads and writes the same keys, so one instance's upstream
//! call serves all. Every operation goes through `RedisLink::run` (timeout + health).

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;

use crate::redis::{RedisLink, RedisLinkError};

/// Store the value, then end the single-flight lease if it is still the caller's (its token).
static SET_AND_RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
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

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, RedisLinkError> {
        let found: Option<Vec<u8>> =
            self.link.run(|mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }).await?;
        Ok(found.map(Bytes::from))
    }

    /// `SET key value EX ttl`: Redis drops the entry itself.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisLinkError> {
        let seconds = ttl_seconds(ttl);
        self.link
            .run(|mut conn| async move {
                redis::cmd("SET").arg(key).arg(value).arg("EX").arg(seconds).query_async::<()>(&mut conn).await
            })
            .await
    }

    /// `set`, and in the same round trip delete the lease at `lease_key` if it holds `token`.
    pub async fn set_and_release(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        lease_key: &str,
        token: &str,
    ) -> Result<(), RedisLinkError> {
        let seconds = ttl_seconds(ttl);
        self.link
            .run(|mut conn| async move {
                SET_AND_RELEASE
                    .key(key)
                    .key(lease_key)
                    .arg(value)
                    .arg(seconds)
                    .arg(token)
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map(drop)
            })
            .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), RedisLinkError> {
        self.link.run(|mut conn| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut conn).await }).await
    }

    /// Whether Redis answers right now; refreshes the link's health as a side effect.
    pub async fn ping(&self) -> bool {
        self.link.run(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await.is_ok()
    }
}

/// Whole seconds, rounded up so a sub-second remainder does not become `EX 0` (an error).
fn ttl_seconds(ttl: Duration) -> u64 {
    (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1)
}
