//! `GET /playground`: a page to record or pick a recording, send it and a text to the API, and
//! see the answers. Plain HTML, CSS and JavaScript modules in `static/playground/`, compiled in:
//! no build step, no framework.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;

use super::asset::Asset;
use crate::error::AppError;

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

macro_rules! file {
    ($name:literal, $content_type:expr) => {
        ($name, Asset::new(&include_bytes!(concat!("static/playground/", $name))[..], $content_type))
    };
}

fn page() -> &'static Asset {
    static PAGE: OnceLock<Asset> = OnceLock::new();
    PAGE.get_or_init(|| Asset::new(&include_bytes!("static/playground/index.html")[..], "text/html; charset=utf-8"))
}

fn files() -> &'static HashMap<&'static str, Asset> {
    static FILES: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    FILES.get_or_init(|| {
        HashMap::from([
            file!("playground.css", "text/css; charset=utf-8"),
            file!("icon.svg", "image/svg+xml"),
            file!("playground.js", JAVASCRIPT),
            file!("api.js", JAVASCRIPT),
            file!("dom.js", JAVASCRIPT),
            file!("recorder.js", JAVASCRIPT),
            file!("render-speech.js", JAVASCRIPT),
            file!("render-analysis.js", JAVASCRIPT),
        ])
    })
}

pub async fn index(headers: HeaderMap) -> Response {
    page().respond(&headers)
}

pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    files().get(name.as_str()).map(|asset| asset.respond(&headers)).ok_or(AppError::NotFound)
}
