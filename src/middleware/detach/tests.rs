use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{ServiceExt, service_fn};

use super::*;

fn layer(slots: Option<Arc<Semaphore>>) -> (DetachLayer, Detached, Metrics) {
    let metrics = Metrics::new();
    let detached = Detached::new(metrics.upstream_calls_detached.clone(), slots);
    (DetachLayer::new(Upstream::Gemini, "analyze", detached.clone(), metrics.clone()), detached, metrics)
}

#[tokio::test(start_paused = true)]
async fn the_call_finishes_after_its_caller_gave_up() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let (layer, detached, metrics) = layer(None);
    let service = layer.layer(service_fn(move |_: ()| {
        let flag = flag.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            flag.store(true, Ordering::SeqCst);
            Ok::<_, UpstreamError>(())
        }
    }));
    let caller = tokio::time::timeout(Duration::from_secs(1), service.oneshot(())).await;
    assert!(caller.is_err(), "the caller gave up first");
    assert!(!finished.load(Ordering::SeqCst));
    assert_eq!(metrics.upstream_calls_detached.get(), 1, "the orphaned call is counted");
    detached.drain().await;
    assert!(finished.load(Ordering::SeqCst), "the drain waited for the upstream call to end");
    assert_eq!(metrics.upstream_calls_detached.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_caller_left_holds_a_max_in_flight_slot_until_it_ends() {
    let slots = Arc::new(Semaphore::new(2));
    let (layer, detached, _) = layer(Some(slots.clone()));
    let service = layer.layer(service_fn(|_: ()| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, UpstreamError>(())
    }));
    // The request's own slot, as the load shedder would hold it.
    let request_slot = slots.clone().acquire_owned().await.expect("slot");
    let caller = tokio::time::timeout(Duration::from_secs(1), service.clone().oneshot(())).await;
    assert!(caller.is_err(), "the caller gave up first");
    drop(request_slot);
    tokio::task::yield_now().await;
    assert_eq!(slots.available_permits(), 1, "the orphaned call took the slot its request gave back");
    detached.drain().await;
    assert_eq!(slots.available_permits(), 2, "and gave it back when it ended");
}

#[tokio::test]
async fn a_call_whose_caller_waits_takes_no_second_slot() {
    let slots = Arc::new(Semaphore::new(1));
    let (layer, _, _) = layer(Some(slots.clone()));
    let _request_slot = slots.clone().acquire_owned().await.expect("slot");
    let answer = layer.layer(service_fn(|_: ()| async { Ok::<_, UpstreamError>(7) })).oneshot(()).await;
    assert_eq!(answer, Ok(7));
}

/// Log lines written while the test's (current-thread) runtime runs, as the service's JSON.
#[derive(Clone, Default)]
struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_panic_below_is_an_internal_error_counted_as_ours() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let (layer, _, metrics) = layer(None);
    let service = layer.layer(service_fn(|_: ()| async {
        if true {
            panic!("the parser tripped");
        }
        Ok::<(), UpstreamError>(())
    }));
    let error = service.oneshot(()).await.expect_err("a panic is an error");
    assert!(
        matches!(&error, UpstreamError::Internal { upstream: Upstream::Gemini, message } if message == "the parser tripped"),
        "{error:?}"
    );
    assert!(!error.is_upstream_failure(), "never charged to the upstream's breaker");
    assert_eq!(metrics.ai_operation_errors_total.with_label_values(&["analyze", "internal"]).get(), 1);
    assert_eq!(metrics.ai_operation_errors_total.with_label_values(&["analyze", "invalid_response"]).get(), 0);
    let logs = String::from_utf8(logs.0.lock().clone()).expect("utf-8");
    let line: serde_json::Value = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .find(|line: &serde_json::Value| line["fields"]["message"] == "upstream call panicked")
        .unwrap_or_else(|| panic!("an ERROR line for the panic: {logs}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["fields"]["panic"], "the parser tripped", "{line}");
}

/// Over HTTP on the real router: a panic in our parser inside the detached task.
#[tokio::test]
async fn a_panic_in_our_parser_is_a_500_internal_error_and_not_the_upstreams_fault() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let gemini = MockServer::start().await;
    let text = crate::analysis::analyzer::PANIC_IN_PARSER;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}]
        })))
        .expect(2)
        .mount(&gemini)
        .await;
    let disk = tempfile::tempdir().expect("tempdir");
    let gemini_url = gemini.uri();
    let vars = std::collections::HashMap::from([
        ("CACHE_MODE", "disk_only".to_string()),
        ("DISK_CACHE_DIR", disk.path().to_string_lossy().into_owned()),
        ("RATE_LIMIT_PER_MINUTE", "0".to_string()),
        ("GEMINI_API_KEY", "gemini-test-key".to_string()),
        ("GEMINI_BASE_URL", gemini_url),
        ("BREAKER_FAILURE_THRESHOLD", "1".to_string()),
    ]);
    let settings = crate::config::Settings::from_lookup(
        |name| vars.get(name).cloned(),
        std::path::Path::new("/nonexistent/serviceaccount"),
    )
    .expect("settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let app = crate::app::App::build_with_listener(settings, listener).await.expect("app");
    let address = app.local_addr().expect("address");
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let url = |path: &str| format!("http://{address}{path}");

    // Twice: a breaker that counted the first (threshold 1) would answer the second without a call.
    for _ in 0..2 {
        let response = client
            .post(url("/api/analyze"))
            .json(&serde_json::json!({"text": "I go to the store yesterday."}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 500);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["code"], "internal_error", "{body}");
        assert_eq!(body["error"], "internal error", "{body}");
    }
    let health: serde_json::Value =
        client.get(url("/health/upstreams")).send().await.expect("sent").json().await.expect("json");
    assert_eq!(health["gemini"]["state"], "closed", "{health}");
    let metrics = client.get(url("/metrics")).send().await.expect("sent").text().await.expect("text");
    assert!(metrics.contains(r#"ai_operation_errors_total{error_type="internal",operation="analyze"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"ai_operation_errors_total{error_type="invalid_response",operation="analyze"} 0"#));
    server.abort();
}
