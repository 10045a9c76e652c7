//! Operations endpoints.

use crate::helpers::spawn_app;

#[tokio::test]
async fn liveness_says_ok() {
    let app = spawn_app(&[]).await;
    let response = app.get("/health").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_use_route_templates_not_raw_urls() {
    let app = spawn_app(&[]).await;
    let _ = app.get("/health").await;
    let _ = app.get("/random/scanner/path/123").await;
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(text.contains(r#"http_requests_total{method="GET",path="/health",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"path="unmatched""#), "{text}");
    assert!(!text.contains("/random/scanner"), "{text}");
}

#[tokio::test]
async fn readiness_turns_503_when_shutdown_begins() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.get("/health/ready").await.status().as_u16(), 200);
    app.state.readiness.shutting_down();
    assert_eq!(app.get("/health/ready").await.status().as_u16(), 503);
}

#[tokio::test]
async fn a_proxy_speaking_http2_without_tls_is_served_the_same_api() {
    // Meshes and some ingresses talk h2c to pods; calls then share a few connections.
    let app = spawn_app(&[]).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().expect("client");
    let response = client
        .post(app.url("/api/analyze"))
        .json(&serde_json::json!({"text": "I goes to school every days."}))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["success"], true, "{body}");
}

#[tokio::test]
async fn metrics_show_upstream_calls_in_flight_while_one_is_waiting_on_the_upstream() {
    let app = spawn_app(&[("SIMULATOR_LATENCY_MS", "1500")]).await;
    let gauge = r#"upstream_calls_in_flight{upstream="gemini"}"#;
    assert!(app.get("/metrics").await.text().await.expect("text").contains(&format!("{gauge} 0")));
    let client = app.client.clone();
    let url = app.url("/api/analyze");
    let call = tokio::spawn(async move {
        client.post(url).json(&serde_json::json!({"text": "A sentence that waits on Gemini."})).send().await
    });
    // The bound only guards against a hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = app.get("/metrics").await.text().await.expect("text");
        if text.contains(&format!("{gauge} 1")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the call never showed as in flight: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(call.await.expect("join").expect("answered").status().as_u16(), 200);
    let after = app.get("/metrics").await.text().await.expect("text");
    assert!(after.contains(&format!("{gauge} 0")), "{after}");
    assert!(after.contains(r#"upstream_calls_in_flight{upstream="azure_speech"} 0"#), "{after}");
    // The capacity the alert divides by: UPSTREAM_CONNECTIONS, 8 by default.
    assert!(after.contains(r#"upstream_connections{upstream="gemini"} 8"#), "{after}");
}
