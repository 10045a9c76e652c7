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
