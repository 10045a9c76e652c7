use tower::Layer;

use super::series::Series;
use super::service::HttpMetrics;
use crate::metrics::Metrics;

/// Must sit inside the routing (`Router::layer`) so `MatchedPath` is known, and inside the
/// request-id layer so the log line carries the id.
#[derive(Clone)]
pub struct HttpMetricsLayer {
    series: Series,
    quote: bool,
}

impl HttpMetricsLayer {
    /// `quote`: the access log is `key=value` text (`LOG_FORMAT=pretty`), where client-supplied
    /// values must be quoted; JSON logs escape them already.
    pub fn new(metrics: Metrics, quote: bool) -> Self {
        Self { series: Series::new(metrics), quote }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::new(inner, self.series.clone(), self.quote)
    }
}
