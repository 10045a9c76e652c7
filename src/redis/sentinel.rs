//! Following the master that Sentinel names. The connection is to one address; when an operation
//! on it fails (the master died, or answers `READONLY` because it was demoted) it is dropped and
//! the sentinels are asked again, and the health probe asks every few seconds regardless. The
//! crate's lookup also checks that the node it names calls itself master (`ROLE`), so a stale
//! sentinel cannot send us to a replica.

use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisResult, TlsCertificates, TlsMode};

use super::dial::{self, Trust};
use super::topology::Topology;

pub struct Follower {
    /// Held while asking the sentinels, so a burst of operations after a failure makes one
    /// lookup, not one each.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<Master>>,
    config: AsyncConnectionConfig,
    /// What a TLS connection to the master trusts.
    trust: Trust,
    /// Bound on connecting to the master.
    timeout: Duration,
}

struct Master {
    address: String,
    connection: MultiplexedConnection,
}

impl Follower {
    pub fn new(
        topology: &Topology,
        certificates: Option<TlsCertificates>,
        trust: Trust,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let Topology::Sentinel { sentinels, master, sentinel_password, tls, password, db } = topology else {
            unreachable!("a follower is made for the sentinel topology only");
        };
        let addresses = sentinels
            .iter()
            .map(|url| url.as_str().into_connection_info().map(|info| info.addr().clone()))
            .collect::<RedisResult<Vec<ConnectionAddr>>>()?;
        let mut builder =
            SentinelClientBuilder::new(addresses, master, SentinelServerType::Master)?.set_client_to_redis_db(*db);
        if let Some(password) = sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(password) = password {
            builder = builder.set_client_to_redis_password(password);
        }
        if *tls {
            builder =
                builder.set_client_to_redis_tls_mode(TlsMode::Secure).set_client_to_sentinel_tls_mode(TlsMode::Secure);
        }
        if let Some(certificates) = certificates {
            builder = builder
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates);
        }
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
        Ok(Self {
            sentinels: tokio::sync::Mutex::new(builder.build()?),
            current: Mutex::new(None),
            config,
            trust,
            timeout,
        })
    }

    pub async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(connection) = self.current_connection() {
            return Ok(connection);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Another operation may have found the master while this one waited.
        if let Some(connection) = self.current_connection() {
            return Ok(connection);
        }
        let master = self.look_up(&mut sentinels).await?;
        let connection = master.connection.clone();
        *self.current.lock() = Some(master);
        Ok(connection)
    }

    fn current_connection(&self) -> Option<MultiplexedConnection> {
        self.current.lock().as_ref().map(|master| master.connection.clone())
    }

    pub fn forget(&self) {
        self.current.lock().take();
    }

    /// Ask the sentinels where the master is; move there if it moved.
    pub async fn refresh(&self) {
        let mut sentinels = self.sentinels.lock().await;
        let Ok(found) = self.look_up(&mut sentinels).await else { return };
        let mut current = self.current.lock();
        let moved = current.as_ref().is_none_or(|master| master.address != found.address);
        if moved {
            if let Some(old) = current.as_ref() {
                tracing::warn!(from = %old.address, to = %found.address, "redis master moved (sentinel failover); following it");
            }
            *current = Some(found);
        }
    }

    async fn look_up(&self, sentinels: &mut SentinelClient) -> RedisResult<Master> {
        let client = sentinels.async_get_client().await?;
        let info = client.get_connection_info();
        let address = info.addr().to_string();
        // Replies bounded, as on one endpoint (see `dial`). A failed operation makes the
        // follower ask again, which connects afresh.
        let connection =
            dial::connect(info, &self.trust, self.timeout, self.config.clone(), Default::default()).await?;
        Ok(Master { address, connection })
    }
}
