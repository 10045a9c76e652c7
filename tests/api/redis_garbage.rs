//! Something on the Redis port that answers with a never-ending bulk string: the service stops
//! reading it after its reply bound, stays up and bounded in memory, serves requests without
//! Redis, and reports Redis down; over plain TCP and TLS, as one endpoint and as a cluster's seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::helpers::spawn_app;

/// What the fake sends at most on one connection, of the 1 GB it claims.
const STREAM_UP_TO: u64 = 600 * 1024 * 1024;

/// The most the fake got out on one connection before the service hung up, and whether every
/// connection was hung up on.
#[derive(Default)]
struct Streamed {
    most: AtomicU64,
    reached_the_end: AtomicBool,
}

/// A "Redis" that answers any command with a bulk string of 1 GB, sent as fast as it is read;
/// over TLS when given an acceptor.
async fn garbage_redis(tls: Option<TlsAcceptor>) -> (u16, Arc<Streamed>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let streamed = Arc::new(Streamed::default());
    let stats = streamed.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (stats, tls) = (stats.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(socket).await {
                            stream_garbage(stream, &stats).await;
                        }
                    }
                    None => stream_garbage(socket, &stats).await,
                }
            });
        }
    });
    (port, streamed)
}

async fn stream_garbage<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S, stats: &Streamed) {
    let mut command = [0u8; 4096];
    if socket.read(&mut command).await.unwrap_or(0) == 0 {
        return;
    }
    let _ = socket.write_all(b"$1073741824\r\n").await;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    while sent < STREAM_UP_TO {
        if socket.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len() as u64;
        stats.most.fetch_max(sent, Ordering::Relaxed);
    }
    if sent >= STREAM_UP_TO {
        stats.reached_the_end.store(true, Ordering::Relaxed);
    }
}

/// A TLS acceptor with a certificate for 127.0.0.1, and the CA file that trusts it.
fn tls(dir: &std::path::Path) -> (TlsAcceptor, String) {
    let (ca, cert, key) = crate::redis_tls::certificates(dir);
    let chain = CertificateDer::pem_file_iter(&cert).expect("cert").collect::<Result<Vec<_>, _>>().expect("PEM");
    let key = PrivateKeyDer::from_pem_file(&key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    (TlsAcceptor::from(Arc::new(config)), ca)
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("a number of kB") * 1024
}

/// Requests are served without Redis, the fake got little out on any connection, memory did not
/// grow by the stream, and Redis is reported down.
async fn cut_off_and_treated_as_down(settings: &[(&str, &str)], streamed: &Streamed) {
    let mut settings = settings.to_vec();
    settings.extend([("CACHE_MODE", "redis_only"), ("REDIS_TIMEOUT_MS", "1000")]);
    let app = spawn_app(&settings).await;
    let before = resident_bytes();

    for n in 0..3 {
        let response = app
            .client
            .post(app.url("/api/analyze"))
            .json(&json!({"text": format!("Yesterday I go to the shop number {n}.")}))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200, "served without Redis");
    }
    // Long enough for a reader that kept going to have taken in hundreds of MB.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(app.get("/health").await.status(), 200);
    let most = streamed.most.load(Ordering::Relaxed);
    assert!(most > 0, "the fake was asked something");
    // Socket buffers hold a few MB past what the service read; unbounded, it reads 70-150 MB here.
    assert!(most < 32 * 1024 * 1024, "{} MB read on one connection", most >> 20);
    assert!(!streamed.reached_the_end.load(Ordering::Relaxed), "a connection read the whole stream");
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 256 * 1024 * 1024, "resident memory grew by {} MB", grown >> 20);
    assert_eq!(app.state.metrics.service_health_status.with_label_values(&["redis"]).get(), 0, "Redis is down");
}

#[tokio::test]
async fn a_redis_streaming_a_huge_reply_is_cut_off_and_treated_as_down() {
    let (port, streamed) = garbage_redis(None).await;
    let url = format!("redis://127.0.0.1:{port}/0");
    cut_off_and_treated_as_down(&[("REDIS_URL", url.as_str())], &streamed).await;
}

#[tokio::test]
async fn over_tls_too() {
    let dir = tempfile::tempdir().expect("certificates directory");
    let (acceptor, ca) = tls(dir.path());
    let (port, streamed) = garbage_redis(Some(acceptor)).await;
    let url = format!("rediss://127.0.0.1:{port}/0");
    cut_off_and_treated_as_down(&[("REDIS_URL", url.as_str()), ("REDIS_CA_FILE", ca.as_str())], &streamed).await;
}

#[tokio::test]
async fn as_a_cluster_seed_too_over_tcp_and_over_tls() {
    let (port, streamed) = garbage_redis(None).await;
    let seed = format!("redis://127.0.0.1:{port}");
    cut_off_and_treated_as_down(&[("REDIS_CLUSTER_NODES", seed.as_str())], &streamed).await;

    let dir = tempfile::tempdir().expect("certificates directory");
    let (acceptor, ca) = tls(dir.path());
    let (port, streamed) = garbage_redis(Some(acceptor)).await;
    let seed = format!("rediss://127.0.0.1:{port}");
    cut_off_and_treated_as_down(&[("REDIS_CLUSTER_NODES", seed.as_str()), ("REDIS_CA_FILE", ca.as_str())], &streamed)
        .await;
}

#[tokio::test]
async fn a_connection_redis_closed_is_replaced_before_use_so_no_operation_fails() {
    use backend_ai::metrics::Metrics;
    use backend_ai::redis::{RedisLink, RedisTarget};

    let server = crate::helpers::redis_support::RedisServer::start();
    let target = RedisTarget::single(server.url());
    // Generous: a loaded machine must not turn a slow reconnect into a failure.
    let link = RedisLink::new(&target, Duration::from_secs(5), Metrics::new()).expect("link");
    let other = RedisLink::new(&target, Duration::from_secs(5), Metrics::new()).expect("another link");
    let get = |link: RedisLink| async move {
        link.run("k", |mut connection| async move {
            redis::cmd("GET").arg("k").query_async::<Option<String>>(&mut connection).await
        })
        .await
    };
    get(link.clone()).await.expect("connected");
    // Redis closes the first link's connection, as its idle `timeout` or a restart would.
    let killed: i64 = other
        .run("k", |mut connection| async move {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query_async(&mut connection)
                .await
        })
        .await
        .expect("killed");
    assert!(killed >= 1, "{killed}");
    // Time for this process to read the end of the killed socket.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failures = link.failures();
    get(link.clone()).await.expect("the next operation connects afresh");
    assert_eq!(link.failures(), failures, "no operation failed on the closed connection");
}
