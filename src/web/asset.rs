//! One file of a page, compiled into the binary, and how it is answered.
//!
//! Every answer carries the pages' security headers, so a file opened on its own (a script, a
//! stylesheet) is held to the same rules as the page that loads it.
//!
//! Files worth it are gzipped once, when first served, and the gzip sent to every browser that
//! accepts it (Swagger UI's 1.45 MB bundle becomes ~0.4 MB). Not a compression layer: that would
//! compress the same bytes again on every request, and the API's answers too, for nothing. Not
//! brotli: it would save a little more on a file each browser fetches once per version (the ETag),
//! for another crate and a slower start; every browser accepts gzip.

use std::borrow::Cow;
use std::io::Write;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Scripts, styles, requests and frames from the service itself only: no inline script, no
/// inline style, never framed. `data:` images are Swagger UI's stylesheet icons; `blob:` media is
/// the playground playing back the recording it just made. Neither is another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Smaller files are sent as they are: gzip would save less than a packet.
const COMPRESS_FROM: usize = 1024;

pub struct Asset {
    bytes: Bytes,
    /// The same file gzipped, when that is smaller, with its own validator (a strong ETag names
    /// one representation, RFC 9110 section 8.8.3).
    gzip: Option<(Bytes, HeaderValue)>,
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
        let gzip = gzipped(&bytes).map(|gzip| {
            let etag = HeaderValue::try_from(format!("\"{digest}-gzip\"")).expect("a valid header value");
            (gzip, etag)
        });
        Self { bytes, gzip, content_type, etag }
    }

    /// The file, or 304 when the browser already holds this version. `no-cache` makes the
    /// browser ask each time; the answer to a current copy is a bodiless 304.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let (bytes, etag, encoding) = match &self.gzip {
            Some((gzip, etag)) if accepts_gzip(request) => (gzip, etag, Some(HeaderValue::from_static("gzip"))),
            _ => (&self.bytes, &self.etag, None),
        };
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag));
        let headers = [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag.clone()),
            // Caches between must keep the two representations apart.
            (header::VARY, HeaderValue::from_static("accept-encoding")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let mut response =
            (headers, [(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type))], bytes.clone())
                .into_response();
        if let Some(encoding) = encoding {
            response.headers_mut().insert(header::CONTENT_ENCODING, encoding);
        }
        response
    }
}

/// `bytes` gzipped, if that is worth sending instead.
fn gzipped(bytes: &[u8]) -> Option<Bytes> {
    if bytes.len() < COMPRESS_FROM {
        return None;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    let gzip = encoder.finish().ok()?;
    (gzip.len() < bytes.len()).then(|| Bytes::from(gzip))
}

/// Whether `Accept-Encoding` allows gzip: listed (or `*`) with a weight above zero.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|parameter| {
                let parameter = parameter.trim();
                parameter
                    .strip_prefix("q=")
                    .or_else(|| parameter.strip_prefix("Q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
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

    #[test]
    fn gzip_is_sent_only_to_browsers_that_accept_it() {
        let accepting = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(accepting("gzip, deflate, br, zstd"));
        assert!(accepting("br;q=1.0, GZIP;q=0.5"));
        assert!(accepting("*"));
        assert!(!accepting("br"));
        assert!(!accepting("gzip;q=0, br"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
