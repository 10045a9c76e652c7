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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers 200 with a chunked body (no `Content-Length` to refuse up front)
    /// that never ends, and counts the bytes it got out.
    async fn endless_chunked() -> (String, tokio::task::JoinHandle<u64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let mut sent = 0u64;
            if socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .is_err()
            {
                return sent;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {
                sent += 16 * 1024;
            }
            sent
        });
        (format!("http://{address}/"), server)
    }

    #[tokio::test]
    async fn a_reply_without_a_length_is_cut_off_at_the_cap() {
        let (url, server) = endless_chunked().await;
        let response =
            reqwest::Client::builder().no_proxy().build().expect("client").get(url).send().await.expect("head");
        let limit = 256 * 1024;
        let error = read_capped(response, limit, Upstream::Gemini, |error| UpstreamError::Unreachable {
            upstream: Upstream::Gemini,
            message: error.to_string(),
        })
        .await
        .expect_err("past the cap");
        assert!(
            matches!(&error, UpstreamError::InvalidResponse { message, .. } if message.contains("262144")),
            "{error:?}"
        );
        // The connection was dropped: the server stopped, having sent little past the cap
        // (what the socket buffers held).
        let sent = server.await.expect("server");
        assert!(sent < 64 * 1024 * 1024, "{sent} bytes sent");
    }
}
