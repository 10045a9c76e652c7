//! Connection slots that sockets saying nothing cannot take, on raw loopback sockets: a new
//! connection must start its first request within seconds, the health probes are answered while
//! every slot is held by silent sockets, and a request body must keep a minimum pace.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

/// How the connection ended for the client: `Some(answer)` once the server closed it (the
/// answer may be empty), `None` if it was still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

async fn probe(app: &TestApp, path: &str) -> String {
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    closed_within(&mut stream, Duration::from_secs(10)).await.unwrap_or_default()
}

async fn silent_sockets(app: &TestApp, count: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(TcpStream::connect(app.address).await.expect("connect"));
    }
    // Accepted and holding their slots.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sockets
}

#[tokio::test]
async fn a_connection_must_start_its_first_request_within_seconds_not_the_keep_alive_timeout() {
    // The keep-alive timeout stays 75 s; the first request's is 10 s.
    let app = spawn_app(&[]).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(app.address).await.expect("connect");
    let mut partial = TcpStream::connect(app.address).await.expect("connect");
    partial.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.expect("half a head");
    let (silent, partial) = tokio::join!(
        closed_within(&mut silent, Duration::from_secs(40)),
        closed_within(&mut partial, Duration::from_secs(40))
    );
    assert!(silent.is_some(), "a socket that sent nothing was still open after 40 s");
    assert!(partial.is_some(), "a socket that sent half a head was still open after 40 s");
    assert!(started.elapsed() >= Duration::from_secs(9), "closed before its 10 s: {:?}", started.elapsed());

    // A connection that made a request is held to the keep-alive timeout instead.
    let mut kept = TcpStream::connect(app.address).await.expect("connect");
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
    let mut answer = [0u8; 1024];
    let read = kept.read(&mut answer).await.expect("answer");
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(12)).await.is_none(), "a kept-alive connection was closed");
}

#[tokio::test]
async fn the_health_probes_are_answered_while_every_slot_is_held_by_silent_sockets() {
    let app = spawn_app(&[("MAX_CONNECTIONS", "4")]).await;
    let mut held = silent_sockets(&app, 4).await;
    for path in ["/health", "/health/ready", "/health"] {
        let answer = probe(&app, path).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:.200}");
        // The slots fill up again.
        held.extend(silent_sockets(&app, 4).await);
    }
    let refused = app.state.metrics.http_connections_refused_total.get();
    assert_eq!(refused, 0, "nobody was turned away");
    // The sockets that made room were closed, not left hanging.
    let mut closed = 0;
    for socket in &mut held {
        if closed_within(socket, Duration::from_millis(200)).await.is_some() {
            closed += 1;
        }
    }
    assert!(closed >= 3, "{closed} of {} silent sockets closed", held.len());
}

#[tokio::test]
async fn when_every_connection_has_a_request_in_progress_a_new_one_is_refused_and_counted() {
    let app = spawn_app(&[("MAX_CONNECTIONS", "3"), ("REQUEST_BODY_MIN_BYTES_PER_SECOND", "0")]).await;
    // Three requests whose bodies are on their way: busy, never evicted.
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        stream
            .write_all(b"POST /api/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            .await
            .expect("head");
        busy.push(stream);
    }
    // All three heads read and their requests under way (bounded, not timed: a loaded machine
    // only makes this slower).
    let give_up = Instant::now() + Duration::from_secs(30);
    while app.state.metrics.http_requests_in_flight.get() < 3 {
        assert!(Instant::now() < give_up, "the three requests never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fourth = TcpStream::connect(app.address).await.expect("the kernel accepts it");
    let _ = fourth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = closed_within(&mut fourth, Duration::from_secs(5)).await.expect("closed, not left hanging");
    assert!(answer.is_empty(), "the fourth connection got an answer: {answer}");
    assert_eq!(app.state.metrics.http_connections_refused_total.get(), 1);
    assert_eq!(app.state.metrics.http_connections_open.get(), 3);
}

#[tokio::test]
async fn a_body_below_the_minimum_pace_is_408_within_seconds_not_at_its_deadline() {
    let app =
        spawn_app(&[("REQUEST_BODY_MIN_BYTES_PER_SECOND", "1000"), ("REQUEST_BODY_DEADLINE_SECONDS", "60")]).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    stream
        .write_all(b"POST /api/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{")
        .await
        .expect("head");
    // A byte every 300 ms: no long pause, and the 60 s deadline far away.
    let mut answer = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        tokio::select! {
            read = stream.read(&mut chunk) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
                if answer.windows(4).any(|w| w == b"\r\n\r\n") { break; }
            }
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                if stream.write_all(b" ").await.is_err() { break; }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(40), "still dripping after 40 s");
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}
