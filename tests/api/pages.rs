//! The pages a person opens: `/docs` and `/playground`. Served by the binary itself, with a
//! policy that lets them load nothing from anywhere else.

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

/// The modules an ES module imports (`import { x } from './x.js';` lines), as written. Classic
/// scripts (Swagger UI's bundle) have no such lines, though their text may quote one.
fn module_imports(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|line| line.starts_with("import ") || line.starts_with("} from "))
        .filter_map(|line| line.split(" from '").nth(1)?.split('\'').next())
        .collect()
}

/// A reference that stays on the service: a path on it, a fragment, or inline data.
fn is_local(reference: &str) -> bool {
    (reference.starts_with('/') && !reference.starts_with("//"))
        || reference.starts_with('#')
        || reference.starts_with("data:")
}

/// GET `page`, then every file it names and every module its scripts import, each with the
/// right type and the security headers; stylesheets' `url()`s must stay local too. Returns the
/// page's HTML.
async fn assert_page_is_self_contained(app: &TestApp, page: &str) -> String {
    let response = app.get(page).await;
    assert_eq!(response.status().as_u16(), 200, "{page}");
    assert_security_headers(&response, page);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let html = response.text().await.expect("html");
    let mut references: Vec<String> =
        attribute_values(&html, "src").into_iter().chain(attribute_values(&html, "href")).map(str::to_owned).collect();
    assert!(references.len() >= 3, "{page} loads its scripts and styles: {references:?}");
    let mut checked = std::collections::HashSet::new();
    while let Some(reference) = references.pop() {
        let reference = reference.as_str();
        assert!(is_local(reference), "{page} references {reference:?}, outside the service");
        if !reference.starts_with(page) || !checked.insert(reference.to_owned()) {
            continue; // another page of the service (e.g. /openapi.json), or seen already
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
        let text = response.text().await.unwrap_or_default();
        if expected.starts_with("text/css") {
            for url in css_urls(&text) {
                assert!(is_local(url), "{reference} loads {url:?}, outside the service");
            }
        }
        if expected.starts_with("text/javascript") {
            let directory = &reference[..reference.rfind('/').unwrap_or(0)];
            for import in module_imports(&text) {
                let module = import.strip_prefix("./").map(|name| format!("{directory}/{name}"));
                references.push(module.unwrap_or_else(|| import.to_owned()));
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
async fn the_playground_and_every_file_and_module_it_loads_come_from_the_service_under_a_strict_policy() {
    let app = spawn_app(&[]).await;
    let html = assert_page_is_self_contained(&app, "/playground").await;
    assert!(html.contains(r#"<script type="module" src="/playground/playground.js">"#), "{html}");
    assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style: {html}");
}

#[tokio::test]
async fn with_playground_enabled_false_the_playground_is_a_404_in_the_envelope_and_the_docs_stay() {
    let app = spawn_app(&[("PLAYGROUND_ENABLED", "false")]).await;
    for path in ["/playground", "/playground/playground.js"] {
        assert_error(app.get(path).await, 404, "not_found").await;
    }
    assert_eq!(app.get("/docs").await.status().as_u16(), 200);
}

#[tokio::test]
async fn an_address_typed_with_a_trailing_slash_leads_to_the_page() {
    let app = spawn_app(&[]).await;
    for page in ["/docs", "/playground"] {
        let response = app.get(&format!("{page}/")).await;
        assert_eq!(response.status().as_u16(), 200, "{page}/");
        assert_eq!(response.url().path(), page);
    }
}

#[tokio::test]
async fn a_file_the_docs_do_not_serve_is_a_404_in_the_envelope() {
    let app = spawn_app(&[]).await;
    for path in [
        "/docs/swagger-ui-bundle.js.map",
        "/docs/swagger-initializer.js",
        "/docs/..%2Fopenapi.json",
        "/playground/missing.js",
    ] {
        assert_error(app.get(path).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn the_pages_need_no_api_key_and_spend_no_rate_limit() {
    let app = spawn_app(&[("API_KEYS", "a-key"), ("RATE_LIMIT_PER_MINUTE", "1")]).await;
    for _ in 0..3 {
        for path in ["/docs", "/docs/swagger-ui.css", "/playground", "/playground/playground.js"] {
            assert_eq!(app.get(path).await.status().as_u16(), 200, "{path}");
        }
    }
    assert_error(app.post_json("/api/analyze", &serde_json::json!({"text": "Hi."})).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn page_files_are_counted_by_route_template() {
    let app = spawn_app(&[]).await;
    let _ = app.get("/docs/swagger-ui.css").await;
    let _ = app.get("/playground/api.js").await;
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(text.contains(r#"http_requests_total{method="GET",path="/docs/{file}",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"http_requests_total{method="GET",path="/playground/{file}",status="200"} 1"#), "{text}");
    assert!(!text.contains("swagger-ui.css") && !text.contains("api.js"), "{text}");
}
