//! The connection behind a link, whichever topology: a reconnecting connection to one endpoint,
//! a cluster connection that routes each command to its slot's master, or a connection to the
//! master that Sentinel names, replaced when that master stops being one.
//!
//! Every socket to a data node, whatever the topology and whether TCP, TLS or a Unix socket, is
//! opened by us (`dial`) so its replies pass through `reply_bound`: what answers there cannot
//! make us buffer a huge reply. Only the queries to the sentinels themselves (where the master
//! is) go over the driver's own sockets, with its response timeout as their bound.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};

use super::dial::{Node, Trust};
use super::sentinel::Follower;
use super::topology::{RedisTarget, Topology};

/// What one operation runs on; cheap to clone (all share the multiplexed sockets).
#[derive(Clone)]
pub enum Connection {
    Cluster(ClusterConnection<Node>),
    Master(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Master(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Master(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Cluster(conn) => conn.get_db(),
            Self::Master(conn) => conn.get_db(),
        }
    }
}

/// Makes connections for a link. Never connects when built: the first operation does, so the
/// service starts (and serves from its other tiers) while Redis is away.
pub(super) enum Backend {
    /// One endpoint, replies bounded.
    Bounded(bounded::Lazy),
    Cluster(cluster::Lazy),
    Sentinel(Follower),
}

impl Backend {
    pub fn open(target: &RedisTarget, timeout: Duration) -> RedisResult<Self> {
        let certificates = certificates(target)?;
        let trust = match &certificates {
            Some(TlsCertificates { root_cert: Some(pem), .. }) => Trust::bundle(pem.clone()),
            _ => Trust::system(),
        };
        Ok(match &target.topology {
            Topology::Single { url } => Self::Bounded(bounded::Lazy::new(url, trust, timeout)?),
            Topology::Cluster { seeds } => Self::Cluster(cluster::Lazy::new(seeds, certificates, &trust, timeout)?),
            Topology::Sentinel { .. } => Self::Sentinel(Follower::new(&target.topology, certificates, trust, timeout)?),
        })
    }

    pub async fn connection(&self) -> RedisResult<Connection> {
        match self {
            Self::Bounded(lazy) => lazy.connection().await.map(Connection::Master),
            Self::Cluster(lazy) => lazy.connection().await.map(Connection::Cluster),
            Self::Sentinel(follower) => follower.connection().await.map(Connection::Master),
        }
    }

    /// After an operation failed to reach its node: Sentinel's master is asked for again; a
    /// cluster connection whose operations time out is replaced (see `cluster::Lazy::reset`).
    pub fn failed(&self, timed_out: bool) {
        match self {
            Self::Sentinel(follower) => follower.forget(),
            // Unlike the driver's manager, it does not reconnect by itself.
            Self::Bounded(lazy) => lazy.forget(),
            Self::Cluster(lazy) if timed_out => lazy.reset(),
            _ => {}
        }
    }

    /// A health probe's extra work: Sentinel is asked whether the master moved, so even an idle
    /// instance follows a failover (and a demoted master's `READONLY` is never waited for).
    pub async fn refresh(&self) {
        if let Self::Sentinel(follower) = self {
            follower.refresh().await;
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

fn certificates(target: &RedisTarget) -> RedisResult<Option<TlsCertificates>> {
    let Some(path) = &target.ca_file else { return Ok(None) };
    let pem = std::fs::read(path).map_err(|error| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "REDIS_CA_FILE could not be read",
            format!("{}: {error}", path.display()),
        ))
    })?;
    Ok(Some(TlsCertificates { client_tls: None, root_cert: Some(pem) }))
}

mod cluster {
    use std::time::Duration;

    use parking_lot::Mutex;
    use redis::cluster::{ClusterClient, ClusterClientBuilder};
    use redis::cluster_async::ClusterConnection;
    use redis::{RedisResult, TlsCertificates, TlsMode};
    use tokio::time::Instant;

    use crate::redis::dial::{self, Node, Trust};

    /// A replaced connection is kept at least this long, so a hung node costs one reconnect
    /// every few seconds rather than one per timed-out operation.
    const KEEP_AT_LEAST: Duration = Duration::from_secs(2);

    /// The cluster connection, made on first use and kept: it follows slot moves and failovers
    /// itself (it refreshes the slot map on `MOVED` and on a node's failure). Measured here
    /// (redis 1.8.1, 3 masters, a master killed): now and then a connection comes out of the
    /// failover with every operation timing out for good while a new connection to the same
    /// seeds works at once, so a connection whose operations time out is replaced.
    pub struct Lazy {
        client: ClusterClient,
        current: Mutex<Option<(ClusterConnection<Node>, Instant)>>,
        /// Held while connecting, so a burst of operations makes one connection, not one each.
        connecting: tokio::sync::Mutex<()>,
    }

    impl Lazy {
        pub fn new(
            seeds: &[String],
            certificates: Option<TlsCertificates>,
            trust: &Trust,
            timeout: Duration,
        ) -> RedisResult<Self> {
            // The nodes' sockets are ours (replies bounded); the builder's TLS settings still
            // make the addresses it hands us `rediss://` ones.
            dial::for_cluster(trust, timeout);
            let mut builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                .connection_timeout(timeout)
                .response_timeout(timeout)
                // The link's own timeout bounds an operation; inside it, a redirect or a
                // refreshed slot map is worth one more try.
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(100);
            if seeds.iter().any(|seed| seed.starts_with("rediss://")) {
                builder = builder.tls(TlsMode::Secure);
            }
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            Ok(Self { client: builder.build()?, current: Mutex::new(None), connecting: tokio::sync::Mutex::new(()) })
        }

        pub async fn connection(&self) -> RedisResult<ClusterConnection<Node>> {
            if let Some((connection, _)) = self.current.lock().as_ref() {
                return Ok(connection.clone());
            }
            let _connecting = self.connecting.lock().await;
            if let Some((connection, _)) = self.current.lock().as_ref() {
                return Ok(connection.clone());
            }
            let connection = self.client.get_async_generic_connection::<Node>().await?;
            *self.current.lock() = Some((connection.clone(), Instant::now()));
            Ok(connection)
        }

        /// Drop the connection (operations still using it finish on it) so the next operation
        /// connects afresh from the seeds.
        pub fn reset(&self) {
            let mut current = self.current.lock();
            if current.as_ref().is_some_and(|(_, made)| made.elapsed() >= KEEP_AT_LEAST) {
                tracing::info!("redis cluster operations timing out; reconnecting from the seeds");
                current.take();
            }
        }
    }
}

pub(super) mod bounded {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use parking_lot::Mutex;
    use redis::aio::MultiplexedConnection;
    use redis::{AsyncConnectionConfig, ConnectionInfo, IntoConnectionInfo, RedisResult};

    use crate::redis::dial::{self, Trust};

    /// One multiplexed connection over a `BoundedReplies` stream, made on first use, dropped
    /// after a failure so the next operation connects afresh (as the Sentinel follower does),
    /// and replaced before use once its socket has closed (Redis restarted, or closed it idle),
    /// so that costs no failed operation.
    pub struct Lazy {
        info: ConnectionInfo,
        trust: Trust,
        timeout: Duration,
        config: AsyncConnectionConfig,
        current: Mutex<Option<Open>>,
        /// Held while connecting, so a burst of operations makes one connection, not one each.
        connecting: tokio::sync::Mutex<()>,
    }

    impl Lazy {
        pub fn new(url: &str, trust: Trust, timeout: Duration) -> RedisResult<Self> {
            let info = url.into_connection_info()?;
            let config = AsyncConnectionConfig::new().set_response_timeout(Some(timeout));
            Ok(Self {
                info,
                trust,
                timeout,
                config,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            })
        }

        pub async fn connection(&self) -> RedisResult<MultiplexedConnection> {
            if let Some(connection) = self.open() {
                return Ok(connection);
            }
            let _connecting = self.connecting.lock().await;
            if let Some(connection) = self.open() {
                return Ok(connection);
            }
            let closed = Arc::new(AtomicBool::new(false));
            let connection =
                dial::connect(&self.info, &self.trust, self.timeout, self.config.clone(), closed.clone()).await?;
            *self.current.lock() = Some(Open { connection: connection.clone(), closed });
            Ok(connection)
        }

        fn open(&self) -> Option<MultiplexedConnection> {
            let current = self.current.lock();
            current.as_ref().filter(|open| !open.closed.load(Ordering::Acquire)).map(|open| open.connection.clone())
        }

        pub fn forget(&self) {
            self.current.lock().take();
        }
    }

    struct Open {
        connection: MultiplexedConnection,
        /// Set when its driver ended: the socket is gone.
        closed: Arc<AtomicBool>,
    }
}
