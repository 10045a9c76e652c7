//! The cross-instance lease: `SET <result key>:lease <token> NX PX <ms>` (in the result's slot), taken only when the value is
//! not stored (one script: `claim`), renewed and released only by its holder (compare-and-set
//! scripts), so a holder that outlived its lease can never extend or delete a successor's.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{Either, select};

use crate::cache::{CacheKey, LeaseRef};
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

/// The lease as the value its call owns: used by the call's store (which ends it in the same
/// round trip), released by its holder when nothing stored, and released on drop otherwise (a
/// call cancelled by a runtime shutting down), so no map of claims has to be kept in step.
pub(super) struct Claim {
    lease: Option<Lease>,
}

impl Claim {
    pub fn new(lease: Lease) -> Self {
        Self { lease: Some(lease) }
    }

    /// Where the lease is and the token that proves it ours, for a store that ends it.
    pub fn lease_ref(&self) -> Option<LeaseRef<'_>> {
        self.lease.as_ref().map(|lease| LeaseRef { key: &lease.key, token: &lease.token })
    }

    /// Run `work` with the lease renewed meanwhile.
    pub async fn hold_while<F: Future>(&self, work: F) -> F::Output {
        match &self.lease {
            Some(lease) => lease.hold_while(work).await,
            None => work.await,
        }
    }

    /// A store took the lease with it: nothing is left to release.
    pub fn used(mut self) {
        self.lease = None;
    }

    /// Nothing stored: end the lease now, so waiters elsewhere take over at once.
    pub async fn release(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(lease.release());
        }
    }
}

pub(super) async fn lease_exists(link: &RedisLink, key: &str) -> Result<bool, RedisLinkError> {
    link.run(key, |mut conn| async move { redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn).await }).await
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
