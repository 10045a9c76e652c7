//! What bounds a client that is not playing fair, on a real socket: the size and pace of bodies
//! and heads, the memory recordings may hold, connections per instance, idle HTTP/2 connections.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{assert_error, spawn_app};

/// The status code of a raw HTTP/1.1 exchange: `head` (and `body`) written, the answer read.
async fn raw_status(address: std::net::SocketAddr, head: &[u8], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(head).await.expect("head");
    stream.write_all(body).await.expect("body");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn a_json_body_on_an_audio_route_gets_the_json_limit_not_the_uploads() {
    let app = spawn_app(&[]).await;
    let body = json!({"audio_url": "https://example.com/a.wav", "padding": "x".repeat(100_000)});
    let response = app.post_json("/api/transcribe", &body).await;
    assert_error(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_the_body_is_sent() {
    let app = spawn_app(&[]).await;
    // Nothing of the 20 MB body follows: the answer must not wait for it.
    let head = b"POST /api/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 20000000\r\nConnection: close\r\n\r\n";
    let (status, answer) = raw_status(app.address, head, b"").await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    let head = b"POST /api/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900000\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_status(app.address, head, b"").await.0, 413);
}

#[tokio::test]
async fn a_body_dripped_in_never_long_pauses_still_ends_at_its_deadline() {
    let app = spawn_app(&[("REQUEST_BODY_DEADLINE_SECONDS", "2"), ("REQUEST_BODY_TIMEOUT_SECONDS", "15")]).await;
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream
        .write_all(
            b"POST /api/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .expect("head");
    // A byte every 300 ms: no pause near the 15 s pause timeout, and 1000 bytes would take 5 min.
    let drip = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(6), drip).await;
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer[..read.ok().and_then(Result::ok).unwrap_or(0)]).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_with_431() {
    let app = spawn_app(&[]).await;
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "a".repeat(100_000));
    let (status, answer) = raw_status(app.address, head.as_bytes(), b"").await;
    assert_eq!(status, 431, "{answer:.200}");
    // A head of ordinary size is served.
    assert_eq!(
        raw_status(app.address, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"").await.0,
        200
    );
}

#[tokio::test]
async fn an_http2_connection_that_opens_no_stream_is_closed_after_the_head_timeout() {
    let app = spawn_app(&[("HEADER_READ_TIMEOUT_SECONDS", "1")]).await;
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("preface");
    // A SETTINGS frame, then nothing: hyper answers with its own SETTINGS and later a GOAWAY.
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.expect("settings");
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection was still open after 10 s");
}
