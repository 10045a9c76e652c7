//! Calls to an HTTP/2 upstream are not capped by one connection's stream limit.
//!
//! The fake Gemini here speaks h2c and allows 2 concurrent streams per connection, the way
//! Google's front ends allow 100. Each of its answers waits until every call of the test has
//! arrived, so the calls complete only if all of them are in flight at once; if any is queued
//! behind a connection's stream limit, the fake gives up after a while and answers 503.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::post;
use backend_ai::server::{self, ServerOptions};
use backend_ai::upstream::connections::ConnectionSettings;
use backend_ai::upstream::gemini::{GeminiClient, GeminiConfig, GenerateRequest};
use parking_lot::Mutex;
use tokio::sync::Notify;

const STREAMS_PER_CONNECTION: u32 = 2;
/// How long the fake waits for all calls before it answers 503: long enough for any machine to
/// open a few loopback connections, short enough for the control case to end quickly.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

const REPLY: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"{}"}]},"finishReason":"STOP"}]}"#;

#[derive(Clone)]
struct Gather {
    /// Answer at once: the calls that open the connections.
    warming_up: Arc<AtomicBool>,
    expected: usize,
    /// Calls that arrived and have not given up.
    in_flight: Arc<AtomicUsize>,
    /// The client ends of the connections calls arrived on.
    connections: Arc<Mutex<HashSet<SocketAddr>>>,
    all_here: Arc<Notify>,
}

async fn generate_content(
    State(gather): State<Gather>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> (StatusCode, &'static str) {
    gather.connections.lock().insert(peer);
    if gather.warming_up.load(Ordering::SeqCst) {
        return (StatusCode::OK, REPLY);
    }
    let all_here = gather.all_here.notified();
    if gather.in_flight.fetch_add(1, Ordering::SeqCst) + 1 >= gather.expected {
        gather.all_here.notify_waiters();
    } else if tokio::time::timeout(GATHER_TIMEOUT, all_here).await.is_err() {
        gather.in_flight.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, r#"{"error":{"code":503,"status":"UNAVAILABLE"}}"#);
    }
    (StatusCode::OK, REPLY)
}

/// A fake Gemini on the project's own listener, with a small per-connection HTTP/2 stream limit.
async fn fake_gemini(expected: usize) -> (SocketAddr, Gather) {
    let gather = Gather {
        warming_up: Arc::new(AtomicBool::new(true)),
        expected,
        in_flight: Arc::default(),
        connections: Arc::default(),
        all_here: Arc::new(Notify::new()),
    };
    let router = Router::new().route("/{version}/models/{action}", post(generate_content)).with_state(gather.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let address = listener.local_addr().expect("bound address");
    let options = ServerOptions { max_concurrent_streams: STREAMS_PER_CONNECTION, ..ServerOptions::default() };
    tokio::spawn(server::serve(listener, router, options, std::future::pending()));
    (address, gather)
}

fn client(address: SocketAddr, lanes: usize) -> GeminiClient {
    GeminiClient::new(GeminiConfig {
        base_url: format!("http://{address}").parse().expect("loopback URL"),
        connections: ConnectionSettings { lanes, http2_prior_knowledge: true },
        ..GeminiConfig::new("test-key")
    })
}

fn request(n: usize) -> GenerateRequest {
    GenerateRequest {
        system_instruction: "You are a tutor.".into(),
        user_text: format!("sentence {n}"),
        response_schema: None,
        temperature: 0.0,
        max_output_tokens: 64,
        thinking_budget: None,
    }
}

/// One call per lane first, so every connection is open and has learnt the server's stream
/// limit (before its SETTINGS frame arrives, a client may open more streams and see some
/// refused, which is a different case); then `calls` at once, counting the ones that succeeded.
async fn concurrent_successes(client: &GeminiClient, gather: &Gather, lanes: usize, calls: usize) -> usize {
    let warm_ups: Vec<_> = (0..lanes).map(request).collect();
    let warmed = futures::future::join_all(warm_ups.iter().map(|request| client.generate(request))).await;
    assert!(warmed.iter().all(Result::is_ok), "warm-up calls: {warmed:?}");
    gather.warming_up.store(false, Ordering::SeqCst);

    let requests: Vec<_> = (0..calls).map(request).collect();
    let results = futures::future::join_all(requests.iter().map(|request| client.generate(request))).await;
    results.iter().filter(|result| result.is_ok()).count()
}

#[tokio::test]
async fn calls_beyond_one_connections_stream_limit_run_at_once_over_several_connections() {
    let calls = 6;
    let (address, gather) = fake_gemini(calls).await;
    let client = client(address, 3);

    assert_eq!(
        concurrent_successes(&client, &gather, 3, calls).await,
        calls,
        "every call was in flight at the same time"
    );
    assert_eq!(gather.connections.lock().len(), 3, "one HTTP/2 connection per lane");
}

#[tokio::test]
async fn with_a_single_connection_calls_queue_behind_its_stream_limit() {
    // The control: the reason for lanes. One connection carries 2 calls at once, so the other
    // 4 wait in hyper's queue: never are all 6 in flight, so every call gives up.
    let calls = 6;
    let (address, gather) = fake_gemini(calls).await;
    let client = client(address, 1);

    assert_eq!(concurrent_successes(&client, &gather, 1, calls).await, 0, "no call saw all the others in flight");
    assert_eq!(gather.connections.lock().len(), 1, "hyper opened no second connection");
}
