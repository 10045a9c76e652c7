//! Upstream calls whose client gave up keep running (so their answer is cached), and so keep
//! costing the instance: they stay inside `MAX_IN_FLIGHT`, counted in `upstream_calls_detached`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn wait_for(app: &TestApp, what: &str, done: impl Fn(&TestApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(app) {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_call_whose_client_left_holds_its_max_in_flight_slot_until_it_ends() {
    let app = spawn_app(&[("MAX_IN_FLIGHT", "1"), ("SIMULATOR_LATENCY_MS", "3000")]).await;
    let gave_up = app
        .client
        .post(app.url("/api/analyze"))
        .json(&json!({"text": "The client of this one gives up."}))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client left before the (slow) upstream answered");
    let metrics = &app.state.metrics;
    wait_for(&app, "the request ended when its client left", |_| metrics.http_requests_in_flight.get() == 0).await;
    assert_eq!(metrics.upstream_calls_detached.get(), 1, "its upstream call is still running");

    // No request is in flight, but the orphaned call holds the only slot.
    let refused = app.post_json("/api/analyze", &json!({"text": "Another learner's text."})).await;
    assert_error(refused, 503, "overloaded").await;

    wait_for(&app, "the orphaned call ended", |_| metrics.upstream_calls_detached.get() == 0).await;
    let served = app.post_json("/api/analyze", &json!({"text": "The client of this one gives up."})).await;
    assert_eq!(served.status().as_u16(), 200);
    let body: serde_json::Value = served.json().await.expect("json");
    assert_eq!(body["meta"]["cached"], true, "the orphaned call's answer was kept: {body}");
}
