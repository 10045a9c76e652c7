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
//!
//! Which protocol a connection speaks is told by peeking at its first bytes (the HTTP/2
//! preface) rather than reading them: hyper-util's auto-detection reads them and hands them back
//! in front of the stream, and hyper's first read then finds its 8 KB buffer partly used, asks
//! for 8 KB more and the buffer doubles: 8 KB more per HTTP/1.1 connection for as long as it
//! lived (heaptrack showed 16 KB read buffers; with 10,000 connections held, peak RSS fell from
//! 422 to 383 MiB without them).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;

/// `HEADER_READ_TIMEOUT_SECONDS`'s default: above the 60 s upstream keep-alive of nginx (and so
/// ingress-nginx), so a proxy closes an idle connection before we do and never sends a request
/// on one we are closing.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Longest an HTTP/1.1 connection may go without completing a request head; then it is
    /// closed. hyper starts the clock when it starts waiting for a head, so an idle keep-alive
    /// connection counts too: keep it above the proxy's own upstream keep-alive timeout, or the
    /// proxy may send a request on a connection we are closing. A new connection that sends
    /// nothing at all, of either protocol, is closed after it too.
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
    let mut http1 = http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new()).max_concurrent_streams(options.max_concurrent_streams);
    let graceful = GracefulShutdown::new();
    // Connections still being sniffed are not hyper's yet: they learn of shutdown here.
    let (stopping, stop) = tokio::sync::watch::channel(false);
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
                let service = TowerToHyperService::new(service);
                // Taken now, so that shutdown waits for this connection from the start.
                let watcher = graceful.watcher();
                let (http1, http2, mut stop) = (http1.clone(), http2.clone(), stop.clone());
                let sniff_timeout = options.header_read_timeout;
                tokio::spawn(async move {
                    let protocol = tokio::select! {
                        sniffed = tokio::time::timeout(sniff_timeout, sniff(&stream)) => match sniffed {
                            Ok(Ok(protocol)) => protocol,
                            // Silent past the head timeout, or gone.
                            Ok(Err(_)) | Err(_) => return,
                        },
                        _ = stop.wait_for(|stop| *stop) => return,
                    };
                    let io = TokioIo::new(stream);
                    // A client that vanishes mid-request is the client's business, not an error here.
                    let _ = match protocol {
                        Protocol::Http1 => watcher.watch(http1.serve_connection(io, service)).await,
                        Protocol::Http2 => watcher.watch(http2.serve_connection(io, service)).await,
                    };
                });
            }
            () = &mut shutdown => break,
        }
    }
    let _ = stopping.send(true);
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// HTTP/2 without TLS, by prior knowledge (h2c).
    Http2,
}

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol of a new connection, from its first bytes, which stay unread for hyper. Decided
/// as soon as they differ from the HTTP/2 preface: an HTTP/1.1 method differs by its second byte.
async fn sniff(stream: &TcpStream) -> std::io::Result<Protocol> {
    let mut head = [0u8; HTTP2_PREFACE.len()];
    loop {
        let seen = stream.peek(&mut head).await?;
        // Nothing (the client closed): hyper reads the end and closes too.
        if seen == 0 || head[..seen] != HTTP2_PREFACE[..seen] {
            return Ok(Protocol::Http1);
        }
        if seen == HTTP2_PREFACE.len() {
            return Ok(Protocol::Http2);
        }
        // Part of the preface so far. A peek answers at once while those bytes wait unread, so
        // pause before looking again; the caller's head timeout bounds the wait.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A connection over loopback whose client has sent `chunks`, a pause after each.
    async fn sniffed(chunks: &[&[u8]]) -> Protocol {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|chunk| chunk.to_vec()).collect();
        // Then it closes: bytes sent before that can still be peeked at.
        tokio::spawn(async move {
            for chunk in chunks {
                client.write_all(&chunk).await.expect("write");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        tokio::time::timeout(Duration::from_secs(10), sniff(&server)).await.expect("decided").expect("sniff")
    }

    #[tokio::test]
    async fn the_protocol_is_told_by_the_preface() {
        assert_eq!(sniffed(&[b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"]).await, Protocol::Http1);
        // POST and PRI share their first byte.
        assert_eq!(sniffed(&[b"P", b"OST /api/analyze HTTP/1.1\r\n"]).await, Protocol::Http1);
        assert_eq!(sniffed(&[HTTP2_PREFACE]).await, Protocol::Http2);
        // A preface that arrives in pieces is waited for.
        assert_eq!(sniffed(&[b"PRI * HTTP/2", b".0\r\n\r\nSM\r\n\r\n"]).await, Protocol::Http2);
        // A client that closes at once is left to hyper.
        assert_eq!(sniffed(&[]).await, Protocol::Http1);
    }

    #[tokio::test]
    async fn the_bytes_sniffed_are_still_there_for_hyper() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        client.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        assert_eq!(sniff(&server).await.expect("sniff"), Protocol::Http1);
        let mut read = [0u8; 16];
        let mut server = server;
        tokio::io::AsyncReadExt::read_exact(&mut server, &mut read).await.expect("read");
        assert_eq!(&read, b"GET / HTTP/1.1\r\n");
    }
}
