//! `GET /docs`: Swagger UI over `/openapi.json`.
//!
//! Swagger UI's own files come from utoipa-swagger-ui, whose build script unpacks them from the
//! crate utoipa-swagger-ui-vendored (its `vendored` feature): the build downloads nothing beyond
//! the crate registry. Only the files the page loads are served, not the rest of Swagger UI's
//! distribution (source maps, other bundles). The page and its initializer are ours: the page
//! loads only those files, and the initializer is a file (the policy runs no inline script) that
//! turns off the one thing that would reach outside the service, the validator badge.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;

use super::asset::Asset;
use crate::error::AppError;

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// What the page loads from Swagger UI's distribution, by the names it has there.
const SWAGGER_UI_FILES: [(&str, &str); 5] = [
    ("swagger-ui-bundle.js", JAVASCRIPT),
    ("swagger-ui.css", CSS),
    ("index.css", CSS),
    ("favicon-32x32.png", "image/png"),
    ("favicon-16x16.png", "image/png"),
];

fn page() -> &'static Asset {
    static PAGE: OnceLock<Asset> = OnceLock::new();
    PAGE.get_or_init(|| Asset::new(&include_bytes!("static/docs/index.html")[..], "text/html; charset=utf-8"))
}

fn files() -> &'static HashMap<&'static str, Asset> {
    static FILES: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    FILES.get_or_init(|| {
        // `serve` reads the configuration only for the stock initializer, which is not served.
        let config = Arc::new(utoipa_swagger_ui::Config::from("/openapi.json"));
        let mut files: HashMap<&'static str, Asset> = SWAGGER_UI_FILES
            .iter()
            .filter_map(|&(name, content_type)| match utoipa_swagger_ui::serve(name, config.clone()) {
                Ok(Some(file)) => Some((name, Asset::new(file.bytes, content_type))),
                // Only after an upgrade of Swagger UI that renamed a file; the page tests see it.
                _ => {
                    tracing::error!(file = name, "Swagger UI's distribution has no such file; /docs lacks it");
                    None
                }
            })
            .collect();
        files.insert("docs.js", Asset::new(&include_bytes!("static/docs/docs.js")[..], JAVASCRIPT));
        files
    })
}

pub async fn index(headers: HeaderMap) -> Response {
    page().respond(&headers)
}

pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    files().get(name.as_str()).map(|asset| asset.respond(&headers)).ok_or(AppError::NotFound)
}
