//! The HTTP listener loop: HTTP/1.1 and HTTP/2 without TLS (h2c, by prior knowledge) on one
//! port, for the service and for the simulator.
//!
//! `axum::serve` would do, except that it exposes none of hyper's connection settings, and they
//! are what bounds a client that is not sending requests:
//! - a request head has a time limit (`HEADER_READ_TIMEOUT_SECONDS`; slowloris) and a size limit
//!   ([`ServerOptions::max_head_bytes`]: hyper's buffer, 400 KB by default, held per connection);
//!   a new connection must start its first request sooner ([`DEFAULT_FIRST_REQUEST_TIMEOUT`]);
//! - connections per instance are capped (`MAX_CONNECTIONS`), so memory is bounded by
//!   configuration, not by how many sockets a client opens; at the cap a new connection takes
//!   the slot of the one idle the longest, and is refused only when all are busy (`slots`);
//! - an HTTP/2 connection with no stream open is closed after the head timeout too, and dead
//!   peers are found by PING ([`connection`]);
//! - at shutdown, idle connections are closed at once and busy ones when their requests end.
//!
//! And hyper allows 200 concurrent streams per HTTP/2 connection, which the simulator must
//! raise: the service multiplexes its calls over a few connections (`UPSTREAM_CONNECTIONS`), so
//! in load tests thousands share each one, and a cap would turn the simulator's fixed latency
//! into a queue and measure that instead.

mod connection;
mod slots;
mod sniff;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::{IntCounter, IntGauge};

use self::connection::{Activity, Connection};
use self::slots::{Admission, Slots};
use self::sniff::{Protocol, sniff};

/// `HEADER_READ_TIMEOUT_SECONDS`'s default: above the 60 s upstream keep-alive of nginx (and so
/// ingress-nginx), so a proxy closes an idle connection before we do and never sends a request
/// on one we are closing.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);
/// How soon a new connection must have sent its first request head (HTTP/2: opened its first
/// stream), whatever `HEADER_READ_TIMEOUT_SECONDS` allows an idle keep-alive connection: a client
/// that means to talk does so at once, and silent sockets held 75 s each filled
/// `MAX_CONNECTIONS`. Generous for a phone on a poor network; a proxy sends at once.
pub const DEFAULT_FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `MAX_CONNECTIONS`'s default: an idle HTTP/1.1 connection costs about 16 KB (hyper's read and
/// write buffers), one with a full head up to [`DEFAULT_MAX_HEAD_BYTES`] more.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Largest HTTP/1.1 request head, as HTTP/2's default header list (16 KB) with room for a
/// browser's cookies behind an ingress; larger is a 431 from hyper.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Longest an HTTP/1.1 connection may go without completing a request head, and an HTTP/2
    /// connection without an open stream; then it is closed. hyper starts the HTTP/1.1 clock when
    /// it starts waiting for a head, so an idle keep-alive connection counts too: keep it above
    /// the proxy's own upstream keep-alive timeout, or the proxy may send a request on a
    /// connection we are closing. A new connection that sends nothing at all, of either
    /// protocol, is closed after it too.
    pub header_read_timeout: Duration,
    /// Longest a new connection may take to start its first request; never more than
    /// `header_read_timeout`.
    pub first_request_timeout: Duration,
    /// Streams one HTTP/2 connection may carry at once.
    pub max_concurrent_streams: u32,
    /// Largest HTTP/1.1 request head (hyper's read buffer); at least 8192.
    pub max_head_bytes: usize,
    /// Connections served at once; past it new ones are closed as they arrive.
    pub max_connections: usize,
    /// HTTP/2 PING interval; a peer that does not answer within the same time is dropped.
    pub http2_keep_alive: Duration,
    /// `http_connections_open` and `http_connections_refused_total`, for the service.
    pub metrics: Option<ConnectionMetrics>,
}

#[derive(Debug, Clone)]
pub struct ConnectionMetrics {
    pub open: IntGauge,
    pub refused: IntCounter,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            first_request_timeout: DEFAULT_FIRST_REQUEST_TIMEOUT,
            max_concurrent_streams: 200,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2_keep_alive: Duration::from_secs(20),
            metrics: None,
        }
    }
}

/// Serve `router` on `listener` until `shutdown` completes; then stop accepting, close idle
/// connections at once, and wait for the requests in flight. Handlers can extract
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        // The buffer alone let heads of ~48 KB through: hyper checks it only between reads, and a
        // read may fill more than the buffer's limit. The head limit is checked on the head.
        .max_header_size(options.max_head_bytes)
        .max_buf_size(options.max_head_bytes.max(8192));
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.max_concurrent_streams)
        .keep_alive_interval(options.http2_keep_alive)
        .keep_alive_timeout(options.http2_keep_alive);
    let slots = Slots::new(options.max_connections);
    let first_request_timeout = options.first_request_timeout.min(options.header_read_timeout);
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
                let admission = slots.admit();
                if let Admission::Refused = admission {
                    // Closed at once, unread: the client sees a reset and can go elsewhere.
                    if let Some(metrics) = &options.metrics {
                        metrics.refused.inc();
                    }
                    tracing::debug!(%peer, "connection refused: MAX_CONNECTIONS reached, all busy");
                    continue;
                }
                let first_request_by = tokio::time::Instant::now() + first_request_timeout;
                // Small request/response exchanges: waiting to coalesce them only adds latency.
                let _ = stream.set_nodelay(true);
                let service = tower::util::MapRequest::new(router.clone(), move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
                let (http1, http2, mut stop) = (http1.clone(), http2.clone(), stop.clone());
                let (head_timeout, metrics, slots) = (options.header_read_timeout, options.metrics.clone(), slots.clone());
                tokio::spawn(async move {
                    let slot = match admission {
                        Admission::Now(slot) => slot,
                        Admission::Soon => match slots.take_evicted().await {
                            Some(slot) => slot,
                            // The evicted connection's request kept it: refused after all.
                            None => {
                                if let Some(metrics) = &metrics {
                                    metrics.refused.inc();
                                }
                                return;
                            }
                        },
                        Admission::Refused => return,
                    };
                    let _open = metrics.as_ref().map(|metrics| OpenGuard::new(&metrics.open));
                    let activity = Arc::new(Activity::new());
                    let _held = slots.hold(activity.clone());
                    let protocol = tokio::select! {
                        sniffed = tokio::time::timeout_at(first_request_by, sniff(&stream)) => match sniffed {
                            Ok(Ok(protocol)) => protocol,
                            // Silent past the first-request timeout, or gone.
                            Ok(Err(_)) | Err(_) => return,
                        },
                        _ = stop.wait_for(|stop| *stop) => return,
                        () = activity.evicted() => return,
                    };
                    let connection = Connection::new(stream, service, activity, head_timeout, first_request_by);
                    match protocol {
                        Protocol::Http1 => connection.serve_http1(&http1, stop).await,
                        Protocol::Http2 => connection.serve_http2(&http2, stop).await,
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    let _ = stopping.send(true);
    drop(listener);
    // Every connection gives its slot back when it ends: all of them back, all of them ended.
    slots.all_free().await;
    Ok(())
}

/// Counts a connection in `http_connections_open` for as long as it lives.
struct OpenGuard<'a>(&'a IntGauge);

impl<'a> OpenGuard<'a> {
    fn new(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
