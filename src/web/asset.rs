//! One file of a page, compiled into the binary, and how it is answered.
//!
//! Every answer carries the pages' security headers, so a file opened on its own (a script, a
//! stylesheet) is held to the same rules as the page that loads it.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Scripts, styles, requests and frames from the service itself only: no inline script, no
/// inline style, never framed. `data:` images are Swagger UI's stylesheet icons; `blob:` media is
/// the playground playing back the recording it just made. Neither is another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub struct Asset {
    bytes: Bytes,
    content_type: &'static str,
    /// Strong validator from the bytes: the files change only with the binary, and a browser
    /// holding an old copy after an upgrade must not keep using it.
    etag: HeaderValue,
}

impl Asset {
    pub fn new(bytes: impl Into<Cow<'static, [u8]>>, content_type: &'static str) -> Self {
        let bytes = match bytes.into() {
            Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            Cow::Owned(bytes) => Bytes::from(bytes),
        };
        let digest = hex::encode(&Sha256::digest(&bytes)[..16]);
        let etag = HeaderValue::try_from(format!("\"{digest}\"")).expect("hex digits are a valid header value");
        Self { bytes, content_type, etag }
    }

    /// The file, or 304 when the browser already holds this version. `no-cache` makes the
    /// browser ask each time; the answer to a current copy is a bodiless 304.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim().trim_start_matches("W/") == self.etag));
        let headers = [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, [(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type))], self.bytes.clone())
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_holding_the_current_version_gets_a_304_without_a_body() {
        let asset = Asset::new(&b"body { color: black }"[..], "text/css; charset=utf-8");
        let first = asset.respond(&HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();

        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let second = asset.respond(&again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert!(second.headers().get(header::CONTENT_TYPE).is_none());

        let mut stale = HeaderMap::new();
        stale.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"an-old-version\""));
        assert_eq!(asset.respond(&stale).status(), StatusCode::OK);
    }
}
