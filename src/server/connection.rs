//! One accepted connection, served by hyper until it ends, the client idles too long, or the
//! server stops.
//!
//! hyper closes an idle HTTP/1.1 connection itself (its head timer runs between requests), but an
//! HTTP/2 connection that opened no stream, or finished them all, stays open for as long as the
//! client likes: one that only sent its preface cost 15.6 KB and no API key, without bound. So
//! the requests in progress on each connection are counted, and one with none for the head
//! timeout is shut down. At shutdown a connection is told to stop at once; hyper's graceful
//! shutdown of HTTP/2 then waits for the peer to acknowledge a PING, which a hostile or dead
//! peer never does, so a connection with no request left is dropped after a short wait for
//! that, instead of holding the process for the whole grace period.
//!
//! A connection must start its first request within the first-request timeout (a few seconds;
//! the head timeout, 75 s, is for idle keep-alive connections of a proxy), and one with no
//! request in progress may be told to make room for a new connection when every slot is taken
//! (see `slots`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// After asking a connection with no request left to close, how long it may take to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub(super) struct Connection<S> {
    stream: TcpStream,
    service: Counted<S>,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    /// The first request must have started by then.
    first_request_by: Instant,
}

/// Requests in progress on one connection, and whether it was asked to make room.
pub(super) struct Activity {
    active: AtomicUsize,
    changed: Notify,
    /// Whether a request ever started on the connection.
    started: AtomicBool,
    /// When the connection last went idle (it opened, or its last request ended), in
    /// nanoseconds since `epoch()`; read to pick the connection idle the longest.
    idle_since: AtomicU64,
    evicted: AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            active: AtomicUsize::new(0),
            changed: Notify::new(),
            started: AtomicBool::new(false),
            idle_since: AtomicU64::new(now_nanos()),
            evicted: AtomicBool::new(false),
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.active.load(Ordering::Acquire) == 0
    }

    /// Nanoseconds since `epoch()` at which it went idle; meaningful while `is_idle`.
    pub(super) fn idle_since(&self) -> u64 {
        self.idle_since.load(Ordering::Acquire)
    }

    /// Ask the connection to close, to give its slot to a new one.
    pub(super) fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Completes once the connection was asked to make room.
    pub(super) async fn evicted(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.evicted.load(Ordering::Acquire) {
                return;
            }
            changed.await;
        }
    }

    /// Completes at `by` if no request has started by then; never otherwise.
    async fn no_request_by(&self, by: Instant) {
        tokio::time::sleep_until(by).await;
        if self.started.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
    }

    /// Completes once no request has been in progress for `timeout` without a break.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a change in between is not missed.
            changed.as_mut().enable();
            if self.is_idle() {
                tokio::select! {
                    () = tokio::time::sleep(timeout) => return,
                    () = &mut changed => continue,
                }
            }
            changed.await;
        }
    }

    /// Completes once no request is in progress.
    async fn drained(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_idle() {
                return;
            }
            changed.await;
        }
    }
}

impl<S> Connection<S> {
    pub(super) fn new(
        stream: TcpStream,
        service: S,
        activity: Arc<Activity>,
        idle_timeout: Duration,
        first_request_by: Instant,
    ) -> Self {
        Self {
            stream,
            service: Counted { inner: service, activity: activity.clone() },
            activity,
            idle_timeout,
            first_request_by,
        }
    }
}

impl<S> Connection<S>
where
    S: tower::Service<axum::extract::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub(super) async fn serve_http1(self, builder: &http1::Builder, stop: watch::Receiver<bool>) {
        let Self { stream, service, activity, first_request_by, .. } = self;
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        // hyper's own head timer ends an idle HTTP/1.1 connection; only shutdown is ours.
        let limits = Limits { idle: None, first_request_by };
        drive(connection, activity, limits, stop, |connection| connection.graceful_shutdown()).await;
    }

    pub(super) async fn serve_http2(self, builder: &http2::Builder<TokioExecutor>, stop: watch::Receiver<bool>) {
        let Self { stream, service, activity, idle_timeout, first_request_by } = self;
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let limits = Limits { idle: Some(idle_timeout), first_request_by };
        drive(connection, activity, limits, stop, |connection| connection.graceful_shutdown()).await;
    }
}

/// When `drive` closes a connection of its own accord.
struct Limits {
    /// With no request in progress for this long.
    idle: Option<Duration>,
    /// With no request started by then.
    first_request_by: Instant,
}

/// Poll `connection` to its end; on shutdown, past its `limits`, or when evicted, ask it to
/// close, and drop it once its requests are done and it had `CLOSE_WAIT` to say goodbye.
async fn drive<C, E>(
    connection: C,
    activity: Arc<Activity>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    close: impl FnOnce(Pin<&mut C>),
) where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(connection);
    let idle_for = async {
        match limits.idle {
            Some(timeout) => activity.idle_for(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        // A client that vanishes mid-request is the client's business, not an error here.
        _ = &mut connection => return,
        _ = stop.wait_for(|stop| *stop) => {}
        () = idle_for => {}
        () = activity.no_request_by(limits.first_request_by) => {}
        () = activity.evicted() => {}
    }
    close(connection.as_mut());
    tokio::select! {
        _ = &mut connection => return,
        () = activity.drained() => {}
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, &mut connection).await;
}

/// The service, counting its calls in progress on the connection's `Activity`.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> tower::Service<R> for Counted<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.activity.started.store(true, Ordering::Release);
        self.activity.active.fetch_add(1, Ordering::AcqRel);
        self.activity.changed.notify_waiters();
        CountedFuture { inner: self.inner.call(request), _guard: InProgress(self.activity.clone()) }
    }
}

pin_project_lite::pin_project! {
    struct CountedFuture<F> {
        #[pin]
        inner: F,
        _guard: InProgress,
    }
}

impl<F: Future> Future for CountedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// One request in progress; counted out when its response is ready or it is abandoned.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        // Before the count: a connection seen idle has a current `idle_since`.
        self.0.idle_since.store(now_nanos(), Ordering::Release);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}
