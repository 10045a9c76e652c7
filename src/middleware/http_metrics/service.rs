use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use http::{Method, Response};
use tower::Service;

use super::future::{InFlight, ResponseFuture};
use super::series::Series;
use crate::middleware::request_id::RequestId;

#[derive(Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    series: Series,
    quote: bool,
}

impl<S> HttpMetrics<S> {
    pub(super) fn new(inner: S, series: Series, quote: bool) -> Self {
        Self { inner, series, quote }
    }
}

impl<S, B> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |matched| matched.as_str());
        let series = self.series.of(method_label(request.method()), route);
        let request_id = request.extensions().get::<RequestId>().cloned().unwrap_or_default();
        // The header value itself (a reference count), read for the log only if one is written.
        let user_id = request.headers().get("x-user-id").cloned();
        let in_flight = InFlight::enter(series, request_id, user_id, self.quote, Instant::now());
        ResponseFuture::new(self.inner.call(request), in_flight)
    }
}

/// The `method` label: the standard methods by name, anything else `other`. The method is the
/// client's to choose, on any path and before auth, and hyper takes any token as one: taken as
/// it came, each invented method would be a new series in every scrape, for good.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
