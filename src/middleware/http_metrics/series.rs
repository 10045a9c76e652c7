//! Each route's metric children, resolved once: finding a child of a labelled metric hashes its
//! label values and takes the vector's read lock, and the status label was a fresh string, on
//! every request. Here a route (method and template) is looked up once per request, by its
//! template only, and its status counters are found by index.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use prometheus::{Histogram, IntCounter, IntGauge};

use crate::metrics::Metrics;

/// Statuses 100 to 599, by `status - 100`.
const STATUSES: usize = 500;

/// One route's series: its duration histogram and its counters by status.
pub struct RouteSeries {
    pub method: &'static str,
    pub route: String,
    /// Probes and scrapes: frequent and uninteresting when healthy, logged at debug.
    pub quiet: bool,
    pub in_flight: IntGauge,
    duration: Histogram,
    totals: Box<[OnceLock<IntCounter>]>,
    metrics: Metrics,
}

impl RouteSeries {
    fn new(metrics: &Metrics, method: &'static str, route: &str) -> Self {
        Self {
            method,
            route: route.to_owned(),
            quiet: route.starts_with("/health") || route == "/metrics",
            in_flight: metrics.http_requests_in_flight.clone(),
            duration: metrics.http_request_duration_seconds.with_label_values(&[method, route]),
            totals: (0..STATUSES).map(|_| OnceLock::new()).collect(),
            metrics: metrics.clone(),
        }
    }

    /// Count one answer of `status` that took `seconds`.
    pub fn record(&self, status: u16, seconds: f64) {
        let resolve =
            || self.metrics.http_requests_total.with_label_values(&[self.method, &self.route, &status.to_string()]);
        match usize::from(status).checked_sub(100).and_then(|index| self.totals.get(index)) {
            Some(cell) => cell.get_or_init(resolve).inc(),
            None => resolve().inc(),
        }
        self.duration.observe(seconds);
    }
}

/// Every route's series seen so far, shared by the layer's clones.
#[derive(Clone)]
pub struct Series {
    metrics: Metrics,
    /// By template, then method: a route has few methods, compared by pointer-cheap `&'static str`.
    routes: Arc<RwLock<HashMap<String, Vec<Arc<RouteSeries>>>>>,
}

impl Series {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics, routes: Arc::default() }
    }

    pub fn of(&self, method: &'static str, route: &str) -> Arc<RouteSeries> {
        let found = self.routes.read().get(route).and_then(|methods| find(methods, method));
        if let Some(series) = found {
            return series;
        }
        let mut routes = self.routes.write();
        let methods = routes.entry(route.to_owned()).or_default();
        if let Some(series) = find(methods, method) {
            return series;
        }
        let series = Arc::new(RouteSeries::new(&self.metrics, method, route));
        methods.push(series.clone());
        series
    }
}

fn find(methods: &[Arc<RouteSeries>], method: &str) -> Option<Arc<RouteSeries>> {
    methods.iter().find(|series| series.method == method).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routes_children_are_the_metrics_own_series() {
        let metrics = Metrics::new();
        let series = Series::new(metrics.clone());
        let analyze = series.of("POST", "/api/analyze");
        assert!(Arc::ptr_eq(&analyze, &series.of("POST", "/api/analyze")), "resolved once");
        analyze.record(200, 0.01);
        analyze.record(200, 0.01);
        analyze.record(429, 0.001);
        analyze.record(999, 0.001);
        let total =
            |status: &str| metrics.http_requests_total.with_label_values(&["POST", "/api/analyze", status]).get();
        assert_eq!((total("200"), total("429"), total("999")), (2, 1, 1));
        let duration = metrics.http_request_duration_seconds.with_label_values(&["POST", "/api/analyze"]);
        assert_eq!(duration.get_sample_count(), 4);
        assert!(!Arc::ptr_eq(&analyze, &series.of("GET", "/api/analyze")), "by method too");
    }
}
