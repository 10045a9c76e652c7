//! The HTTP listener loop: HTTP/1.1 and HTTP/2 without TLS (h2c, by prior knowledge) on one
//! port, for the service and for the simulator.
//!
//! `axum::serve` would do, except that it exposes none of hyper's connection settings, and two
//! matter here. A client that opens a connection and sends its request head slowly, byte by byte
//! (slowloris), holds a task and a socket for as long as it likes: hyper bounds the head only
//! with a timer, which `axum::serve` never sets. And hyper allows 200 concurrent streams per
//! HTTP/2 connection, which the simulator must raise: the service multiplexes its calls over a
//! few connections (`UPSTREAM_CONNECTIONS`), so in load tests thousands share each one, and a cap
//! would turn the simulator's fixed latency into a queue and measure that instead.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// `HEADER_READ_TIMEOUT_SECONDS`'s default: above the 60 s upstream keep-alive of nginx (and so
/// ingress-nginx), so a proxy closes an idle connection before we do and never sends a request
/// on one we are closing.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Longest an HTTP/1.1 connection may go without completing a request head; then it is
    /// closed. hyper starts the clock when it starts waiting for a head, so an idle keep-alive
    /// connection counts too: keep it above the proxy's own upstream keep-alive timeout, or the
    /// proxy may send a request on a connection we are closing.
    pub header_read_timeout: Duration,
    /// Streams one HTTP/2 connection may carry at once.
    pub max_concurrent_streams: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT, max_concurrent_streams: 200 }
    }
}

/// Serve `router` on `listener` until `shutdown` completes; then stop accepting, close idle
/// connections, and wait for the requests in flight. Handlers can extract
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(options.max_concurrent_streams);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, typically: a busy loop would only make it worse.
                        tracing::warn!(%error, "accept failed; pausing");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Small request/response exchanges: waiting to coalesce them only adds latency.
                let _ = stream.set_nodelay(true);
                let service = tower::util::MapRequest::new(router.clone(), move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that vanishes mid-request is the client's business, not an error here.
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
