//! The shared tier: every instance reads and writes the same keys, so one instance's upstream
//! call serves all. Every operation goes through `RedisLink::run` (timeout + health).

use std::time::Duration;

use bytes::Bytes;

use crate::redis_link::{RedisLink, RedisLinkError};

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

    /// `SET key value EX ttl`: Redis drops the entry itself. `ttl` is rounded up to a second so a
    /// sub-second remainder does not become `EX 0` (an error).
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisLinkError> {
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        self.link
            .run(|mut conn| async move {
                redis::cmd("SET").arg(key).arg(value).arg("EX").arg(seconds.max(1)).query_async::<()>(&mut conn).await
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
