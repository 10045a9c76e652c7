use tower::Layer;

use super::service::HttpMetrics;
use crate::metrics::Metrics;

/// Must sit inside the routing (`Router::layer`) so `MatchedPath` is known, and inside the
/// request-id layer so the log line carries the id.
#[derive(Clone)]
pub struct HttpMetricsLayer {
    metrics: Metrics,
}

impl HttpMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::new(inner, self.metrics.clone())
    }
}
