//! The HTTP half: build the request, send it once, classify whatever comes back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::body::BodyBuilder;
use super::wire;
use super::{FinishReason, GeminiConfig, GeminiReply, GenerateRequest, Usage};
use crate::upstream::connections::Connections;
use crate::upstream::reply::read_capped;
use crate::upstream::{Upstream, UpstreamError, retry_after};

/// Only the TCP/TLS handshake is bounded here: a whole call's deadline (retries included)
/// belongs to the retry layer, and a second timer here would fight it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a non-JSON error body goes into an error message (proxies answer with HTML).
const BODY_EXCERPT_CHARS: usize = 200;

const GEMINI: Upstream = Upstream::Gemini;

/// The longest reply read. An analysis asks for at most a few thousand output tokens (tens of
/// KB of JSON with its candidate wrapper and usage); 4 MiB leaves room for any model or setting
/// we might ask for while keeping a broken or hostile answer from holding memory.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// One pointer wide: the tower stack clones its services several times per request, and the
/// fields below (URL, model, key) would each be a fresh allocation per clone.
#[derive(Clone)]
pub struct GeminiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Connections,
    bodies: BodyBuilder,
    /// `{base}/{api_version}/models/{model}:generateContent`, built and parsed once (given a
    /// string, reqwest would parse it on every call).
    endpoint: url::Url,
    model: String,
    /// Built once and marked sensitive, so no debug output of a request shows it; `None` when
    /// the configured key cannot be a header value (every call then fails as an auth error).
    api_key: Option<HeaderValue>,
}

impl std::fmt::Debug for GeminiClient {
    // The key stays out of every log line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("GeminiClient").field("endpoint", &self.inner.endpoint.as_str()).finish_non_exhaustive()
    }
}

impl GeminiClient {
    pub fn new(config: GeminiConfig) -> Self {
        let http = Connections::new(config.connections, |builder| builder.connect_timeout(CONNECT_TIMEOUT))
            .expect("the TLS backend initialises (a build-time property, not an input)");
        // The SDK accepts `models/x` as well as `x`; the path must carry the prefix exactly once.
        let model = config.model.strip_prefix("models/").unwrap_or(&config.model).to_string();
        let endpoint = format!(
            "{}/{}/models/{}:generateContent",
            config.base_url.as_str().trim_end_matches('/'),
            config.api_version.trim_matches('/'),
            model
        );
        // A path appended to a URL that parsed is a URL (the parser percent-encodes what needs it).
        let endpoint = url::Url::parse(&endpoint).expect("a parsed base URL with a path appended parses");
        let api_key = HeaderValue::from_str(&config.api_key).ok().map(|mut key| {
            key.set_sensitive(true);
            key
        });
        Self { inner: Arc::new(Inner { http, bodies: BodyBuilder::default(), endpoint, model, api_key }) }
    }

    /// Its connections, for the in-flight gauge.
    pub fn connections(&self) -> &Connections {
        &self.inner.http
    }

    pub fn model(&self) -> &str {
        &self.inner.model
    }

    pub async fn generate(&self, request: &GenerateRequest) -> Result<GeminiReply, UpstreamError> {
        let inner = &*self.inner;
        let api_key = inner.api_key.clone().ok_or_else(|| UpstreamError::Auth {
            upstream: GEMINI,
            message: "the Gemini API key is not a valid header value".to_string(),
        })?;
        let body = reqwest::Body::wrap(inner.bodies.body(request));
        let http = inner.http.lease();
        let response = http
            .post(inner.endpoint.clone())
            .header("x-goog-api-key", api_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| UpstreamError::transport(GEMINI, error))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes =
            read_capped(response, MAX_REPLY_BYTES, GEMINI, |error| UpstreamError::transport(GEMINI, error)).await?;
        drop(http);
        if (200..300).contains(&status) {
            read_reply(&bytes)
        } else {
            Err(classify_error(status, &headers, &bytes, SystemTime::now()))
        }
    }
}

/// A 2xx body: content outcomes (blocks) become errors, everything else a reply.
fn read_reply(bytes: &[u8]) -> Result<GeminiReply, UpstreamError> {
    let response: wire::GenerateContentResponse = serde_json::from_slice(bytes).map_err(|error| {
        UpstreamError::InvalidResponse { upstream: GEMINI, message: format!("generateContent body: {error}") }
    })?;
    let usage = response.usage_metadata.map(usage).unwrap_or_default();
    let Some(candidate) = response.candidates.and_then(|candidates| candidates.into_iter().next()) else {
        return Err(match response.prompt_feedback.and_then(|feedback| feedback.block_reason) {
            Some(reason) => UpstreamError::Blocked { upstream: GEMINI, reason },
            None => UpstreamError::InvalidResponse {
                upstream: GEMINI,
                message: "no candidates and no block reason".to_string(),
            },
        });
    };
    let finish_reason = candidate.finish_reason.as_deref().map_or(FinishReason::Unspecified, FinishReason::parse);
    if finish_reason.is_block() {
        return Err(UpstreamError::Blocked { upstream: GEMINI, reason: finish_reason.as_str().to_string() });
    }
    let text = candidate
        .content
        .and_then(|content| content.parts)
        .unwrap_or_default()
        .into_iter()
        .filter(|part| part.thought != Some(true))
        .filter_map(|part| part.text)
        .collect::<String>();
    Ok(GeminiReply {
        text,
        finish_reason,
        usage,
        model_version: response.model_version,
        response_id: response.response_id,
    })
}

fn usage(metadata: wire::UsageMetadata) -> Usage {
    Usage {
        prompt: metadata.prompt_token_count.unwrap_or(0),
        candidates: metadata.candidates_token_count.unwrap_or(0),
        thoughts: metadata.thoughts_token_count.unwrap_or(0),
        total: metadata.total_token_count.unwrap_or(0),
    }
}

/// What a non-2xx answer means, from its status and its `google.rpc.Status` body (if the body is
/// one: proxies and load balancers answer with HTML or nothing). The wait before a retry is the
/// body's `RetryInfo`, else a `Retry-After` header (a proxy's, or Google's front end's).
pub(super) fn classify_error(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> UpstreamError {
    let parsed = serde_json::from_slice::<wire::ErrorEnvelope>(body).ok().map(|envelope| envelope.error);
    let details = ErrorDetails::from(parsed.as_ref());
    let message = match &parsed {
        Some(error) => {
            let text = error.message.as_deref().unwrap_or("");
            match error.status.as_deref() {
                Some(code) => format!("{code}: {text}"),
                None => text.to_string(),
            }
        }
        None => excerpt(body),
    };
    if details.api_key_invalid {
        // Gemini says "bad key" with a 400, which would otherwise read as a bad request.
        return UpstreamError::Auth { upstream: GEMINI, message };
    }
    let retry_after = details.retry_delay.or_else(|| retry_after::from_headers(headers, now));
    match status {
        401 | 403 => UpstreamError::Auth { upstream: GEMINI, message },
        429 => UpstreamError::RateLimited { upstream: GEMINI, retry_after, per_day: details.per_day },
        408 | 500..=599 => UpstreamError::Server { upstream: GEMINI, status, message, retry_after },
        400..=499 => UpstreamError::Rejected { upstream: GEMINI, status, message },
        // 1xx/3xx: reqwest follows redirects, so one arriving here is a misconfigured endpoint.
        0..=399 | 600.. => UpstreamError::InvalidResponse {
            upstream: GEMINI,
            message: format!("unexpected HTTP status {status}: {message}"),
        },
    }
}

/// What the typed `details` of an error say, read by `@type`.
#[derive(Debug, Default)]
struct ErrorDetails {
    retry_delay: Option<Duration>,
    per_day: bool,
    api_key_invalid: bool,
}

impl From<Option<&wire::Status>> for ErrorDetails {
    fn from(status: Option<&wire::Status>) -> Self {
        let mut found = Self::default();
        let details = status.and_then(|status| status.details.as_deref()).unwrap_or_default();
        for detail in details {
            let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
            match kind.rsplit('/').next().unwrap_or("") {
                "google.rpc.RetryInfo" => {
                    found.retry_delay = detail.get("retryDelay").and_then(Value::as_str).and_then(parse_duration);
                }
                "google.rpc.QuotaFailure" => {
                    let violations = detail.get("violations").and_then(Value::as_array).map(Vec::as_slice);
                    found.per_day |= violations.unwrap_or_default().iter().any(|violation| {
                        violation.get("quotaId").and_then(Value::as_str).is_some_and(|id| id.contains("PerDay"))
                    });
                }
                "google.rpc.ErrorInfo" => {
                    found.api_key_invalid |= detail.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID");
                }
                _ => {}
            }
        }
        found
    }
}

/// A protobuf `Duration` in JSON: `"58s"`, `"29.723877525s"` (up to nanoseconds).
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let number = text.trim().strip_suffix('s')?;
    let (seconds, fraction) = number.split_once('.').unwrap_or((number, ""));
    if seconds.is_empty() || !seconds.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 9 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    let nanos: u32 = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().ok()? };
    Some(Duration::new(seconds, nanos))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_durations_parse_with_and_without_a_fraction() {
        assert_eq!(parse_duration("58s"), Some(Duration::from_secs(58)));
        assert_eq!(parse_duration("29.723877525s"), Some(Duration::new(29, 723_877_525)));
        assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
    }

    #[test]
    fn malformed_durations_are_ignored_rather_than_guessed() {
        for text in ["", "s", "58", "-1s", "1.s2", "1.0000000001s", "abcs", "99999999999999999999999s", "1e3s"] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[tokio::test]
    async fn a_key_that_cannot_be_a_header_is_an_auth_error_without_a_call() {
        // Nothing listens on the discard port; the call must fail before connecting anyway.
        let mut config = GeminiConfig::new("key\nwith a line break");
        config.base_url = url::Url::parse("http://127.0.0.1:9").expect("url");
        let request = GenerateRequest {
            system_instruction: std::borrow::Cow::Borrowed("Assess."),
            user_text: "I go home yesterday.".to_string(),
            response_schema: None,
            temperature: 0.2,
            max_output_tokens: 64,
            thinking_budget: None,
        };
        let error = GeminiClient::new(config).generate(&request).await.expect_err("no usable key");
        assert!(matches!(error, UpstreamError::Auth { .. }), "{error:?}");
    }

    fn classify(status: u16, body: &[u8]) -> UpstreamError {
        classify_error(status, &HeaderMap::new(), body, SystemTime::now())
    }

    #[test]
    fn an_unexpected_redirect_status_is_an_unreadable_answer() {
        assert!(matches!(classify(302, b""), UpstreamError::InvalidResponse { .. }));
    }

    #[test]
    fn a_huge_html_error_page_is_cut_to_a_short_message() {
        let page = "<html>".repeat(1000);
        let UpstreamError::Server { message, .. } = classify(502, page.as_bytes()) else {
            panic!("a 502 is a server error");
        };
        assert!(message.chars().count() <= BODY_EXCERPT_CHARS + 1);
    }

    #[test]
    fn a_401_counts_as_an_auth_failure_though_gemini_documents_none() {
        assert!(matches!(classify(401, b"{}"), UpstreamError::Auth { .. }));
    }
}
