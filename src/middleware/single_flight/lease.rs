//! The cross-instance lease: `SET {key}:lease <token> NX PX <ms>`, renewed and released only by
//! its holder (compare-and-set scripts), so a holder that outlived its lease can never extend
//! or delete a successor's.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use futures::future::{Either, select};

use crate::redis_link::{RedisLink, RedisLinkError};

static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
    )
});

static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
    )
});

pub(super) fn lease_key(key: &str) -> String {
    format!("{key}:lease")
}

pub(super) struct Lease {
    link: RedisLink,
    key: String,
    token: String,
    ttl: Duration,
}

impl Lease {
    /// `Ok(None)` when another holder has it.
    pub async fn try_acquire(link: &RedisLink, key: String, ttl: Duration) -> Result<Option<Self>, RedisLinkError> {
        let token = uuid::Uuid::new_v4().to_string();
        let millis = ttl_millis(ttl);
        let (key_ref, token_ref) = (&key, &token);
        let acquired: Option<String> = link
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(key_ref)
                    .arg(token_ref)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(acquired.map(|_ok| Self { link: link.clone(), key, token, ttl }))
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
        let renewed: i64 =
            self.link
                .run(|mut conn| async move {
                    RENEW.key(&self.key).arg(&self.token).arg(millis).invoke_async(&mut conn).await
                })
                .await?;
        Ok(renewed == 1)
    }

    /// Best effort: if this fails the lease expires on its own.
    pub async fn release(self) {
        let _ = self
            .link
            .run(|mut conn| async move { RELEASE.key(&self.key).arg(&self.token).invoke_async::<i64>(&mut conn).await })
            .await;
    }
}

pub(super) async fn lease_exists(link: &RedisLink, key: &str) -> Result<bool, RedisLinkError> {
    link.run(|mut conn| async move { redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut conn).await }).await
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
