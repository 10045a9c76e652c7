//! The connection behind a link, whichever topology: a reconnecting connection to one endpoint,
//! a cluster connection that routes each command to its slot's master, or a connection to the
//! master that Sentinel names, replaced when that master stops being one.
//!
//! One endpoint over plain TCP (the usual `REDIS_URL`) is connected by us, through
//! `reply_bound`, so that what answers there cannot make us buffer a huge reply; the driver's
//! own connectors (TLS, Unix sockets, a cluster's nodes) offer no way in and keep its unbounded
//! buffer. Sentinel's master over plain TCP is connected the same way (see `sentinel`).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};

use super::sentinel::Follower;
use super::topology::{RedisTarget, Topology};

/// What one operation runs on; cheap to clone (all share the multiplexed sockets).
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Master(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
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
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Master(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
            Self::Master(conn) => conn.get_db(),
        }
    }
}

/// Makes connections for a link. Never connects when built: the first operation does, so the
/// service starts (and serves from its other tiers) while Redis is away.
pub(super) enum Backend {
    /// One endpoint over plain TCP, replies bounded.
    Bounded(bounded::Lazy),
    Single(ConnectionManager),
    Cluster(cluster::Lazy),
    Sentinel(Follower),
}

impl Backend {
    pub fn open(target: &RedisTarget, timeout: Duration) -> RedisResult<Self> {
        let certificates = certificates(target)?;
        Ok(match &target.topology {
            Topology::Single { url } if certificates.is_none() && bounded::Lazy::fits(url)? => {
                Self::Bounded(bounded::Lazy::new(url, timeout)?)
            }
            Topology::Single { url } => {
                let client = match certificates {
                    Some(certificates) => redis::Client::build_with_tls(url.as_str(), certificates)?,
                    None => redis::Client::open(url.as_str())?,
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    // One quick reconnect attempt per failed operation; the next operation tries again.
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(100));
                Self::Single(ConnectionManager::new_lazy_with_config(client, config)?)
            }
            Topology::Cluster { seeds } => Self::Cluster(cluster::Lazy::new(seeds, certificates, timeout)?),
            Topology::Sentinel { .. } => Self::Sentinel(Follower::new(&target.topology, certificates, timeout)?),
        })
    }

    pub async fn connection(&self) -> RedisResult<Connection> {
        match self {
            Self::Bounded(lazy) => lazy.connection().await.map(Connection::Master),
            Self::Single(manager) => Ok(Connection::Single(manager.clone())),
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
        current: Mutex<Option<(ClusterConnection, Instant)>>,
        /// Held while connecting, so a burst of operations makes one connection, not one each.
        connecting: tokio::sync::Mutex<()>,
    }

    impl Lazy {
        pub fn new(seeds: &[String], certificates: Option<TlsCertificates>, timeout: Duration) -> RedisResult<Self> {
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

        pub async fn connection(&self) -> RedisResult<ClusterConnection> {
            if let Some((connection, _)) = self.current.lock().as_ref() {
                return Ok(connection.clone());
            }
            let _connecting = self.connecting.lock().await;
            if let Some((connection, _)) = self.current.lock().as_ref() {
                return Ok(connection.clone());
            }
            let connection = self.client.get_async_connection().await?;
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
    use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult};
    use tokio::net::TcpStream;

    use crate::redis::reply_bound::BoundedReplies;

    /// One multiplexed connection over a `BoundedReplies` stream, made on first use, dropped
    /// after a failure so the next operation connects afresh (as the Sentinel follower does),
    /// and replaced before use once its socket has closed (Redis restarted, or closed it idle),
    /// so that costs no failed operation.
    pub struct Lazy {
        info: ConnectionInfo,
        host: String,
        port: u16,
        timeout: Duration,
        config: AsyncConnectionConfig,
        current: Mutex<Option<Open>>,
        /// Held while connecting, so a burst of operations makes one connection, not one each.
        connecting: tokio::sync::Mutex<()>,
    }

    impl Lazy {
        /// Whether `url` is plain TCP (not `rediss://`, not a Unix socket).
        pub fn fits(url: &str) -> RedisResult<bool> {
            Ok(matches!(url.into_connection_info()?.addr(), ConnectionAddr::Tcp(..)))
        }

        pub fn new(url: &str, timeout: Duration) -> RedisResult<Self> {
            let info = url.into_connection_info()?;
            let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
                unreachable!("checked by `fits`");
            };
            let config = AsyncConnectionConfig::new().set_response_timeout(Some(timeout));
            Ok(Self {
                info,
                host,
                port,
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
                connect(&self.info, &self.host, self.port, self.timeout, &self.config, closed.clone()).await?;
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

    /// A multiplexed connection to `host:port` over plain TCP, its replies bounded; the
    /// handshake (`AUTH`, `SELECT`) as `info` says. `closed` is set once the socket is gone.
    pub async fn connect(
        info: &ConnectionInfo,
        host: &str,
        port: u16,
        timeout: Duration,
        config: &AsyncConnectionConfig,
        closed: Arc<AtomicBool>,
    ) -> RedisResult<MultiplexedConnection> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let _ = stream.set_nodelay(true);
        let (connection, driver) =
            MultiplexedConnection::new_with_config(info.redis_settings(), BoundedReplies::new(stream), config.clone())
                .await?;
        // The driver ends with the connection: when its last handle is dropped, or its socket
        // fails or closes (a reply over the bound among them).
        tokio::spawn(async move {
            driver.await;
            closed.store(true, Ordering::Release);
        });
        Ok(connection)
    }
}
