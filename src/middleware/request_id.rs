//! `X-Request-ID`: taken from the request when the client sent a sane one, generated otherwise,
//! echoed on every response and available to error bodies and logs for the request's duration.

use std::fmt;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Serialize, Serializer};

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The current request's id, inside a request.
pub fn current() -> Option<RequestId> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The id of one request, also stored as a request extension for handlers and the access log.
///
/// Held once, as the header value it is echoed as (the client's own, when it sent a sane one):
/// the extension, the task-local, the response header, the body's `request_id` and the logs
/// all share it, so each copy is a reference count, not a string.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Printable ASCII by construction (`is_acceptable`, or a UUID).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// Outside a request (no id to give): empty, as the body's `request_id` has always been then.
impl Default for RequestId {
    fn default() -> Self {
        Self(HeaderValue::from_static(""))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Outermost layer: everything inside it, including error rendering, sees the id.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(HEADER) {
        Some(sent) if is_acceptable(sent.as_bytes()) => sent.clone(),
        _ => generated(),
    };
    let id = RequestId(id);
    request.extensions_mut().insert(id.clone());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    response.headers_mut().insert(HEADER, id.0);
    response
}

fn generated() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    // A UUID's text is always a valid header value.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Client ids end up in logs and headers: keep them short and printable.
fn is_acceptable(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value.iter().all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte))
}
