//! Small things a client notices: the request-head limit is the documented 32 KB, every answer
//! says `nosniff`, and the pages' large files come gzipped to a browser that accepts it.

use std::io::Read;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app;

/// The status of one HTTP/1.1 exchange on a fresh connection.
async fn raw_status(address: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("request");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// A `GET /health` head of exactly `size` bytes.
fn head_of(size: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Padding: ";
    let end = "\r\n\r\n";
    let padding = size - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(padding)).into_bytes()
}

#[tokio::test]
async fn a_request_head_over_32_kb_is_431_and_one_under_it_is_served() {
    let app = spawn_app(&[]).await;
    assert_eq!(raw_status(app.address, &head_of(31 * 1024)).await, 200, "31 KB");
    assert_eq!(raw_status(app.address, &head_of(33 * 1024)).await, 431, "33 KB");
    // What hyper's buffer alone let through before: heads up to ~48 KB.
    assert_eq!(raw_status(app.address, &head_of(40 * 1024)).await, 431, "40 KB");
}

#[tokio::test]
async fn every_answer_says_nosniff_errors_and_pages_included() {
    let app = spawn_app(&[("API_KEYS", "a-key")]).await;
    let answers = [
        app.get("/health").await,
        app.get("/metrics").await,
        app.get("/no/such/page").await,
        app.get("/docs").await,
        app.client.post(app.url("/api/analyze")).json(&serde_json::json!({})).send().await.expect("sent"),
        app.client
            .post(app.url("/api/analyze"))
            .header("X-API-Key", "a-key")
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("sent"),
    ];
    for answer in answers {
        let header = answer.headers().get("x-content-type-options").map(|value| value.to_str().unwrap_or("?"));
        assert_eq!(header, Some("nosniff"), "{} {}", answer.url(), answer.status());
    }
}

#[tokio::test]
async fn the_swagger_ui_bundle_comes_gzipped_to_a_browser_that_accepts_it() {
    let app = spawn_app(&[]).await;
    let plain = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.expect("body");

    let gzipped = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .header("Accept-Encoding", "gzip, deflate, br")
        .send()
        .await
        .expect("answered");
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    let etag = gzipped.headers()["etag"].clone();
    let body = gzipped.bytes().await.expect("body");
    assert!(body.len() * 2 < plain.len(), "{} bytes gzipped of {}", body.len(), plain.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut unzipped).expect("valid gzip");
    assert_eq!(unzipped, plain, "the same file");

    let again = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .header("Accept-Encoding", "gzip")
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("answered");
    assert_eq!(again.status(), 304, "the gzip's own validator is honoured");
}
