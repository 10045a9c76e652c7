//! Upstream reply bodies, read through a cap as request bodies are.
//!
//! `reqwest::Response::bytes()` buffers whatever the far end sends: a misbehaving upstream, a
//! proxy's error page or anyone who can answer for the upstream's address could make one call
//! hold gigabytes. Each client names its own cap (a generous multiple of the largest reply its
//! API documents); a reply past it is the upstream's fault (`InvalidResponse`, a 502), not a
//! transport failure, so it is neither retried nor charged to the breaker.

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{Upstream, UpstreamError};

/// The whole body of `response`, failing as soon as it passes `limit` bytes (before reading
/// anything when `Content-Length` already says so). `transport` classifies the client's own
/// errors (a timeout while the body arrives is the call's deadline, a reset is unreachable).
pub async fn read_capped(
    response: reqwest::Response,
    limit: usize,
    upstream: Upstream,
    transport: fn(reqwest::Error) -> UpstreamError,
) -> Result<Bytes, UpstreamError> {
    let body = Limited::new(reqwest::Body::from(response), limit);
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(UpstreamError::InvalidResponse {
            upstream,
            message: format!("the reply is longer than the {limit} bytes accepted from it"),
        }),
        Err(error) => match error.downcast::<reqwest::Error>() {
            Ok(error) => Err(transport(*error)),
            // reqwest's body yields only its own errors; should that change, keep the cause.
            Err(other) => Err(UpstreamError::Unreachable { upstream, message: other.to_string() }),
        },
    }
}
