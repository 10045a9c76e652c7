//! Sockets to Redis opened by us rather than by the driver, so that every reply passes through
//! `reply_bound`: plain TCP, TLS and Unix sockets, for one endpoint, Sentinel's master and every
//! node of a cluster. The driver (redis 1.8) buffers each reply whole and has no hook into the
//! sockets it opens itself, but it takes a stream we opened
//! (`MultiplexedConnection::new_with_config`) and, for a cluster, a connection type of ours
//! (`cluster_async::Connect`, through `get_async_generic_connection`).
//!
//! TLS is what the driver does: rustls, trusting `REDIS_CA_FILE`'s certificates instead of the
//! system's roots when it is set, the certificate checked against the URL's host; `#insecure`
//! URLs are refused, as the driver built without its insecure feature refuses them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::Connect;
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, RedisResult, Value,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::reply_bound::BoundedReplies;

/// Which certificates a TLS connection trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// The system's roots (when no `REDIS_CA_FILE` is given).
    system: bool,
    /// PEM bundles (`REDIS_CA_FILE`).
    bundles: Vec<Arc<[u8]>>,
}

impl Trust {
    pub fn system() -> Self {
        Self { system: true, bundles: Vec::new() }
    }

    pub fn bundle(pem: Vec<u8>) -> Self {
        Self { system: false, bundles: vec![pem.into()] }
    }

    fn add(&mut self, other: &Trust) {
        self.system |= other.system;
        for bundle in &other.bundles {
            if !self.bundles.contains(bundle) {
                self.bundles.push(bundle.clone());
            }
        }
    }

    fn client_config(&self) -> RedisResult<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        if self.system {
            let found = rustls_native_certs::load_native_certs();
            if let Some(error) = found.errors.into_iter().next() {
                return Err(config_error("the system's TLS roots could not be read", error.to_string()));
            }
            roots.add_parsable_certificates(found.certs);
        }
        for bundle in &self.bundles {
            for certificate in CertificateDer::pem_slice_iter(bundle) {
                let certificate =
                    certificate.map_err(|error| config_error("REDIS_CA_FILE is not PEM", error.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|error| config_error("REDIS_CA_FILE holds an unusable certificate", error.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| config_error("TLS to Redis could not be set up", error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

fn config_error(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, what, detail))
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin> Stream for S {}

/// The socket `info` names, connected (and TLS set up) within `timeout`.
async fn open(info: &ConnectionInfo, trust: &Trust, timeout: Duration) -> RedisResult<Box<dyn Stream>> {
    let opening = async {
        let stream: Box<dyn Stream> = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Box::new(tcp(host, *port).await?),
            ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(config_error("rediss:// with #insecure is not supported", String::new()));
            }
            ConnectionAddr::TcpTls { host, port, .. } => {
                let name = ServerName::try_from(host.as_str())
                    .map_err(|error| config_error("not a TLS server name", error.to_string()))?
                    .to_owned();
                let connector = tokio_rustls::TlsConnector::from(trust.client_config()?);
                Box::new(connector.connect(name, tcp(host, *port).await?).await?)
            }
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            other => return Err(config_error("a Redis address of an unknown kind", other.to_string())),
        };
        Ok(stream)
    };
    tokio::time::timeout(timeout, opening).await.map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

async fn tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A multiplexed connection to what `info` names, its replies bounded; the handshake (`AUTH`,
/// `SELECT`) as `info` says. `closed` is set once the socket is gone.
pub async fn connect(
    info: &ConnectionInfo,
    trust: &Trust,
    timeout: Duration,
    config: AsyncConnectionConfig,
    closed: Arc<AtomicBool>,
) -> RedisResult<MultiplexedConnection> {
    let stream = open(info, trust, timeout).await?;
    let (connection, driver) =
        MultiplexedConnection::new_with_config(info.redis_settings(), BoundedReplies::new(stream), config).await?;
    // The driver ends with the connection: when its last handle is dropped, or its socket
    // fails or closes (a reply over the bound among them).
    tokio::spawn(async move {
        driver.await;
        closed.store(true, Ordering::Release);
    });
    Ok(connection)
}

/// How the nodes of a cluster are dialled. The driver makes a node's connection through a type's
/// associated function, with no value of ours to carry the trust and the timeout, so they are
/// the process's: what every cluster link made so far asked for, together (the roots of all, the
/// longest timeout). The service makes one cluster link; tests in one process may make several,
/// each trusting its own test CA.
static CLUSTER: Mutex<Option<(Trust, Duration)>> = Mutex::new(None);

/// Make the nodes of a cluster link about to be made dialled with `trust` and `timeout`.
pub fn for_cluster(trust: &Trust, timeout: Duration) {
    let mut cluster = CLUSTER.lock();
    let (all, longest) = cluster.get_or_insert_with(|| (Trust::default(), timeout));
    all.add(trust);
    *longest = (*longest).max(timeout);
}

/// One node of a cluster, connected by `connect`: what the driver's cluster connection is made
/// of instead of its own `MultiplexedConnection`s.
#[derive(Clone)]
pub struct Node(MultiplexedConnection);

impl Connect for Node {
    fn connect_with_config<'a, T>(info: T, config: AsyncConnectionConfig) -> RedisFuture<'a, Self>
    where
        T: IntoConnectionInfo + Send + 'a,
    {
        Box::pin(async move {
            let info = info.into_connection_info()?;
            let (trust, timeout) = CLUSTER.lock().clone().unwrap_or_else(|| (Trust::system(), Duration::from_secs(5)));
            // A failed node is dropped by the cluster connection, which connects afresh itself.
            connect(&info, &trust, timeout, config, Arc::default()).await.map(Node)
        })
    }
}

impl ConnectionLike for Node {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.0.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_link_adds_its_roots_to_those_of_the_links_before_it() {
        let mut all = Trust::default();
        all.add(&Trust::bundle(b"a".to_vec()));
        all.add(&Trust::bundle(b"b".to_vec()));
        all.add(&Trust::bundle(b"a".to_vec()));
        assert_eq!((all.system, all.bundles.len()), (false, 2));
        all.add(&Trust::system());
        assert!(all.system);
    }

    #[tokio::test]
    async fn an_insecure_url_is_refused_rather_than_trusted_blindly() {
        let info = "rediss://127.0.0.1:1/#insecure".into_connection_info().expect("a URL");
        let error = open(&info, &Trust::system(), Duration::from_secs(1)).await.err().expect("refused");
        assert_eq!(error.kind(), ErrorKind::InvalidClientConfig);
    }
}
