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

/// The `http_requests_*` series in a scrape: one line per label set (histograms: their count line).
fn http_series(scrape: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|line| {
            line.starts_with("http_requests_total{") || line.starts_with("http_request_duration_seconds_count{")
        })
        .map(|line| line.rsplit_once(' ').map_or(line, |(series, _)| series).to_string())
        .collect()
}

#[tokio::test]
async fn invented_methods_and_paths_cannot_grow_the_metrics() {
    // Anyone can send any method token on any path, before auth: each must not become a series.
    let app = spawn_app(&[("API_KEYS", "k")]).await;
    let client = reqwest::Client::new();
    let invent = |round: usize, index: usize| {
        let method = format!("X{round}{}", "M".repeat(200 + index));
        reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method token")
    };
    let send_round = |round: usize| {
        let client = client.clone();
        let app_url = app.url("");
        async move {
            for index in 0..25 {
                for path in ["/api/analyze", "/health", &format!("/scan/{round}/{index}")] {
                    let response =
                        client.request(invent(round, index), format!("{app_url}{path}")).send().await.expect("sent");
                    // Refused in the envelope, never a 500.
                    assert!([404, 405].contains(&response.status().as_u16()), "{path}: {}", response.status());
                }
            }
        }
    };
    send_round(0).await;
    // A scrape is counted once it is answered: the first one's own series shows from the second.
    let _ = app.get("/metrics").await;
    let first = app.get("/metrics").await.text().await.expect("text");
    send_round(1).await;
    let second = app.get("/metrics").await.text().await.expect("text");

    let (before, after) = (http_series(&first), http_series(&second));
    let new: Vec<&String> = after.iter().filter(|series| !before.contains(series)).collect();
    assert!(new.is_empty(), "{} new series, such as {:.300}", new.len(), new.first().map_or("", |s| s.as_str()));
    assert_eq!(before.len(), after.len());
    assert!(second.contains(r#"http_requests_total{method="other",path="unmatched",status="404"} 50"#), "{second}");
    assert!(second.contains(r#"method="other",path="/api/analyze",status="405"} 50"#), "{second}");
    assert!(!second.contains("MMMM"), "an invented method reached the metrics");
    assert!(second.len() < first.len() + 4096, "the scrape grew by {} bytes", second.len() - first.len());
}

#[tokio::test]
async fn standard_methods_keep_their_names_in_the_metrics() {
    let app = spawn_app(&[]).await;
    for method in [reqwest::Method::GET, reqwest::Method::HEAD, reqwest::Method::DELETE, reqwest::Method::OPTIONS] {
        let _ = app.client.request(method, app.url("/health")).send().await.expect("sent");
    }
    let text = app.get("/metrics").await.text().await.expect("text");
    for method in ["GET", "HEAD", "DELETE", "OPTIONS"] {
        assert!(
            text.contains(&format!(r#"http_requests_total{{method="{method}",path="/health""#)),
            "{method}: {text}"
        );
    }
}

#[tokio::test]
async fn health_endpoints_say_nothing_of_paths_or_ports_inside_the_machine() {
    // No key is needed for these: what they show, anyone sees.
    let disk = tempfile::tempdir().expect("tempdir");
    let disk_path = disk.path().display().to_string();
    let app = spawn_app(&[("CACHE_MODE", "tiered"), ("DISK_CACHE_DIR", &disk_path)]).await;
    let cache = app.get("/health/cache").await.text().await.expect("text");
    assert!(!cache.contains(&disk_path), "{cache}");
    let parsed: serde_json::Value = serde_json::from_str(&cache).expect("JSON");
    assert_eq!(parsed["disk"]["exists"], true, "{cache}");
    let upstreams = app.get("/health/upstreams").await.text().await.expect("text");
    assert!(upstreams.contains(r#""target":"simulator""#), "{upstreams}");
    assert!(!upstreams.contains("127.0.0.1"), "the simulator's port: {upstreams}");
}
