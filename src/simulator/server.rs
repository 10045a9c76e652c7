//! The simulator's listener: HTTP/1.1 and HTTP/2 without TLS (h2c, by prior knowledge) on one
//! port, like the cloud front ends it stands in for, which speak both.
//!
//! `axum::serve` would do, except that it keeps hyper's default of 200 concurrent streams per
//! HTTP/2 connection. The service multiplexes its calls over a few connections
//! (`UPSTREAM_CONNECTIONS`), so under load tests thousands of calls share each one; a cap of 200
//! would turn the simulator's fixed latency into a queue and measure that instead.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// Streams one HTTP/2 connection may carry at once.
pub const MAX_CONCURRENT_STREAMS: u32 = 100_000;

/// Serve `router` on `listener` until `shutdown` completes, then let open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, typically: a busy loop would only make it worse.
                        tracing::warn!(%error, "simulator: accept failed; pausing");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Small request/response exchanges: waiting to coalesce them only adds latency.
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that vanishes mid-request is the client's business, not an error here.
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    graceful.shutdown().await;
    Ok(())
}
