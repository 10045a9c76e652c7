//! Per-request accounting: `http_requests_total`, `http_request_duration_seconds`,
//! `http_requests_in_flight` and one access-log line. Labelled by the matched route template
//! (`/api/analyze`), never the raw URL, so a scanner probing random paths cannot explode the
//! series count: unmatched requests share the label `unmatched`. Likewise the method: the nine
//! standard ones by name, any other token `other`. Every label a client can influence is bounded.

mod future;
mod layer;
mod series;
mod service;

pub use layer::HttpMetricsLayer;
pub use service::HttpMetrics;
