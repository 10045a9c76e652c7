//! The cross-instance lease: `SET <result key>:lease <token> NX PX <ms>` (in the result's slot), taken only when the value is
//! not stored (one script: `claim`), renewed and released only by its holder (compare-and-set
//! scripts), so a holder that outlived its lease can never extend or delete a successor's.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{Either, select};

use crate::cache::CacheKey;
use crate::redis::{Lua, RedisLink, RedisLinkError};

static RELEASE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
});

/// Look for the value; only when there is none, take the lease. One round trip where a read
/// and then a `SET NX` took two. `{1, value}`: stored; `{2, ''}`: the lease is ours; `{0, ''}`:
/// another holder has it.
static CLAIM: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        "local value = redis.call('GET', KEYS[1]) \
         if value then return {1, value} end \
         if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ''} end \
         return {0, ''}",
    )
});

static RENEW: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
    )
});

pub(super) struct Lease {
    link: RedisLink,
    key: String,
    token: String,
    ttl: Duration,
}

/// What a claim found.
pub(super) enum Claimed {
    /// The value was already stored (its raw bytes).
    Stored(Bytes),
    /// No value, and now the lease is ours.
    Acquired(Lease),
    /// No value, and another holder has the lease.
    Held,
}

impl Lease {
    /// The value at `key` if stored, else the lease at `lease_key` if free, in one round trip.
    pub async fn claim(
        link: &RedisLink,
        key: &CacheKey,
        lease_key: String,
        ttl: Duration,
    ) -> Result<Claimed, RedisLinkError> {
        let token = uuid::Uuid::new_v4().to_string();
        let millis = ttl_millis(ttl);
        let key = link.keys().result(key.kind().as_str(), key.digest());
        let call = CLAIM.call().key(&key).key(&lease_key).arg(&token).arg(millis);
        let (outcome, value): (i64, Vec<u8>) =
            link.run(&key, |mut conn| async move { call.invoke(&mut conn).await }).await?;
        Ok(match outcome {
            1 => Claimed::Stored(Bytes::from(value)),
            2 => Claimed::Acquired(Self { link: link.clone(), key: lease_key, token, ttl }),
            _ => Claimed::Held,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Run `work`, renewing the lease every third of its lifetime until `work` completes.
    /// A renewal that fails or finds the lease gone is not fatal: the work goes on, and at worst
    /// another instance makes the same call.
    pub async fn hold_while<F: Future>(&self, work: F) -> F::Output {
        let period = (self.ttl / 3).max(Duration::from_millis(1));
        let renew = async {
            loop {
                tokio::time::sleep(period).await;
                match self.renew().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(lease = %self.key, "single-flight lease lost while the call ran");
                        break;
                    }
                    Err(_) => {}
                }
            }
            std::future::pending::<()>().await;
        };
        match select(Box::pin(work), Box::pin(renew)).await {
            Either::Left((output, _)) => output,
            Either::Right(((), work)) => work.await,
        }
    }

    async fn renew(&self) -> Result<bool, RedisLinkError> {
        let millis = ttl_millis(self.ttl);
        let call = RENEW.call().key(&self.key).arg(&self.token).arg(millis);
        let renewed: i64 = self.link.run(&self.key, |mut conn| async move { call.invoke(&mut conn).await }).await?;
        Ok(renewed == 1)
    }

    /// Best effort: if this fails the lease expires on its own.
    pub async fn release(self) {
        let call = RELEASE.call().key(&self.key).arg(&self.token);
        let _ = self.link.run(&self.key, |mut conn| async move { call.invoke::<i64>(&mut conn).await }).await;
    }
}

pub(super) async fn lease_exists(link: &RedisLink, key: &str) -> Result<bool, RedisLinkError> {
    link.run(key, |mut conn| async move { redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn).await }).await
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
