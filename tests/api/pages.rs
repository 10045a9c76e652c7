//! The pages a person opens: `/docs`. Served by the binary itself, with a policy that lets them
//! load nothing from anywhere else.

use crate::helpers::{TestApp, assert_error, spawn_app};

/// What every file of a page must carry.
fn assert_security_headers(response: &reqwest::Response, path: &str) {
    let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or("");
    let policy = header("content-security-policy");
    for directive in ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'"] {
        assert!(policy.split(';').any(|part| part.trim() == directive), "{path}: {directive} in {policy:?}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{path}: {policy:?}");
    assert!(!policy.contains("http:") && !policy.contains("https:") && !policy.contains('*'), "{path}: {policy:?}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    assert!(header("cache-control").contains("no-cache") && !header("etag").is_empty(), "{path}");
}

/// The values of `attribute="..."` in an HTML text.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The targets of `url(...)` in a stylesheet.
fn css_urls(css: &str) -> Vec<&str> {
    css.match_indices("url(")
        .filter_map(|(at, _)| {
            let rest = &css[at + 4..];
            rest.find(')').map(|end| rest[..end].trim().trim_matches(|c| c == '"' || c == '\''))
        })
        .collect()
}

/// A reference that stays on the service: a path on it, a fragment, or inline data.
fn is_local(reference: &str) -> bool {
    (reference.starts_with('/') && !reference.starts_with("//"))
        || reference.starts_with('#')
        || reference.starts_with("data:")
}

/// GET `page`, then every file it names, each with the right type and the security headers;
/// stylesheets' `url()`s must stay local too. Returns the page's HTML.
async fn assert_page_is_self_contained(app: &TestApp, page: &str) -> String {
    let response = app.get(page).await;
    assert_eq!(response.status().as_u16(), 200, "{page}");
    assert_security_headers(&response, page);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let html = response.text().await.expect("html");
    let references: Vec<&str> =
        attribute_values(&html, "src").into_iter().chain(attribute_values(&html, "href")).collect();
    assert!(references.len() >= 3, "{page} loads its scripts and styles: {references:?}");
    for reference in references {
        assert!(is_local(reference), "{page} references {reference:?}, outside the service");
        if !reference.starts_with(page) {
            continue; // a link to another page of the service, e.g. /openapi.json
        }
        let response = app.get(reference).await;
        assert_eq!(response.status().as_u16(), 200, "{reference}");
        assert_security_headers(&response, reference);
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        let expected = match reference.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("png") => "image/png",
            Some("svg") => "image/svg+xml",
            other => panic!("{reference}: unexpected kind of file {other:?}"),
        };
        assert_eq!(content_type, expected, "{reference}");
        if expected.starts_with("text/css") {
            let css = response.text().await.expect("css");
            for url in css_urls(&css) {
                assert!(is_local(url), "{reference} loads {url:?}, outside the service");
            }
        }
    }
    html
}

#[tokio::test]
async fn the_docs_and_every_file_they_load_come_from_the_service_under_a_strict_policy() {
    let app = spawn_app(&[]).await;
    let html = assert_page_is_self_contained(&app, "/docs").await;
    assert!(html.contains("/docs/swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style: {html}");
}

#[tokio::test]
async fn a_file_the_docs_do_not_serve_is_a_404_in_the_envelope() {
    let app = spawn_app(&[]).await;
    for path in ["/docs/swagger-ui-bundle.js.map", "/docs/swagger-initializer.js", "/docs/..%2Fopenapi.json"] {
        assert_error(app.get(path).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn the_docs_need_no_api_key_and_spend_no_rate_limit() {
    let app = spawn_app(&[("API_KEYS", "a-key"), ("RATE_LIMIT_PER_MINUTE", "1")]).await;
    for _ in 0..3 {
        assert_eq!(app.get("/docs").await.status().as_u16(), 200);
        assert_eq!(app.get("/docs/swagger-ui.css").await.status().as_u16(), 200);
    }
    assert_error(app.post_json("/api/analyze", &serde_json::json!({"text": "Hi."})).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn page_files_are_counted_by_route_template() {
    let app = spawn_app(&[]).await;
    let _ = app.get("/docs/swagger-ui.css").await;
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(text.contains(r#"http_requests_total{method="GET",path="/docs/{file}",status="200"} 1"#), "{text}");
    assert!(!text.contains("swagger-ui.css"), "{text}");
}
