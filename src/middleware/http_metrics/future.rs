use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use super::series::RouteSeries;
use crate::error::{ErrorCause, ErrorCode};
use crate::middleware::request_id::RequestId;

/// One request being served. Recording happens when the response is ready, or in `Drop` if the
/// client went away first (counted as 499, nginx's "client closed request"), so the in-flight
/// gauge can never leak.
pub struct InFlight {
    series: Arc<RouteSeries>,
    request_id: RequestId,
    /// `X-User-ID` as sent; logged as its first 64 characters when it is printable ASCII.
    user_id: Option<HeaderValue>,
    /// Pretty logs quote client-supplied values; JSON escapes them itself.
    quote: bool,
    started: Instant,
    recorded: bool,
}

/// A value the client chose, as a log field: quoted and escaped in `key=value` logs, so an
/// `X-User-ID` of `bob status=200` cannot pass for two fields.
struct ClientValue<'a> {
    value: &'a str,
    quote: bool,
}

impl std::fmt::Display for ClientValue<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.quote { write!(formatter, "{:?}", self.value) } else { formatter.write_str(self.value) }
    }
}

impl InFlight {
    pub(super) fn enter(
        series: Arc<RouteSeries>,
        request_id: RequestId,
        user_id: Option<HeaderValue>,
        quote: bool,
        started: Instant,
    ) -> Self {
        series.in_flight.inc();
        Self { series, request_id, user_id, quote, started, recorded: false }
    }

    fn record(&mut self, status: u16, code: Option<&str>, cause: Option<&str>) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let series = &*self.series;
        series.in_flight.dec();
        let elapsed = self.started.elapsed();
        series.record(status, elapsed.as_secs_f64());
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let (method, route, quiet) = (series.method, series.route.as_str(), series.quiet);
        let user_id = self.user_id.as_ref().and_then(|value| value.to_str().ok()).unwrap_or_default();
        // Printable ASCII (`to_str`): 64 bytes are 64 characters.
        let user_id = ClientValue { value: &user_id[..user_id.len().min(64)], quote: self.quote };
        if status >= 500 {
            tracing::warn!(request_id = %self.request_id, method = %method, route = %route, status, latency_ms, user_id = %user_id, code, cause, "request failed");
        } else if quiet {
            tracing::debug!(request_id = %self.request_id, method = %method, route = %route, status, latency_ms, "request");
        } else {
            tracing::info!(request_id = %self.request_id, method = %method, route = %route, status, latency_ms, user_id = %user_id, code, "request");
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.record(499, Some("client_closed_request"), None);
    }
}

pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        in_flight: InFlight,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, in_flight: InFlight) -> Self {
        Self { inner, in_flight }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        match &result {
            Ok(response) => {
                let code = response.extensions().get::<ErrorCode>().map(|code| code.0);
                let cause = response.extensions().get::<ErrorCause>().map(|cause| cause.0.as_str());
                this.in_flight.record(response.status().as_u16(), code, cause);
            }
            Err(_) => this.in_flight.record(500, Some("internal_error"), None),
        }
        Poll::Ready(result)
    }
}
