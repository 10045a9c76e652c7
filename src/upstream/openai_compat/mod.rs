//! One client for every server of OpenAI's API: OpenAI itself, Azure OpenAI's v1 endpoint,
//! vLLM, Ollama, llama.cpp's server, LiteLLM, speaches, whisper.cpp's server (UPSTREAMS.md
//! part B, sections 6 and 7). It speaks two operations:
//!
//! - `POST {base}/chat/completions` with `response_format: {"type": "json_schema", ...}` (never
//!   vLLM's legacy `guided_json`, which vLLM 0.12+ ignores with a 200 and unconstrained output);
//! - `POST {base}/audio/transcriptions`, multipart, `response_format=verbose_json`.
//!
//! Like the Gemini client it neither retries nor times out a call (the layers above own that)
//! and turns every outcome into a reply or an [`UpstreamError`] of the existing kinds, so the
//! chain's hand-over rules and the breaker read it as they read Gemini's.

mod chat;
mod errors;
mod schema;
mod transcriber;
mod transcription;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;

pub use chat::{ChatReply, ChatRequest, ChatUsage};
pub use schema::json_schema;
pub use transcriber::Transcriber;
pub use transcription::{TranscriptionReply, TranscriptionRequest, iso_639_1};

use crate::upstream::connections::{ConnectionSettings, Connections};
use crate::upstream::{Upstream, UpstreamError};

const UPSTREAM: Upstream = Upstream::OpenAiCompatible;

/// Only the handshake is bounded here; the call's deadline belongs to the layers above.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A chat reply for one analysis is tens of KB; a verbose transcription of a 10-minute recording
/// with segments a few hundred. Past these a reply is broken or hostile (502, not retried).
pub const MAX_CHAT_REPLY_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_TRANSCRIPTION_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// Where and as whom the client talks.
#[derive(Clone)]
pub struct OpenAiCompatConfig {
    /// The API's base including its version segment, e.g. `https://api.openai.com/v1`,
    /// `https://{resource}.openai.azure.com/openai/v1`, `http://localhost:11434/v1`.
    pub base_url: url::Url,
    /// Sent as `Authorization: Bearer`; local servers often need none.
    pub api_key: Option<String>,
    pub connections: ConnectionSettings,
}

impl std::fmt::Debug for OpenAiCompatConfig {
    // The key stays out of every log line and panic message.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OpenAiCompatConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connections", &self.connections)
            .finish()
    }
}

/// One pointer wide, like the other clients: the stacks clone it per request.
#[derive(Clone)]
pub struct OpenAiCompatClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Connections,
    chat_url: url::Url,
    transcriptions_url: url::Url,
    /// `Bearer <key>`, marked sensitive; `Err` when the key cannot be a header value (every
    /// call then fails as an auth error, without a call).
    authorization: Result<Option<HeaderValue>, ()>,
}

impl std::fmt::Debug for OpenAiCompatClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OpenAiCompatClient")
            .field("chat_url", &self.inner.chat_url.as_str())
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatClient {
    pub fn new(config: OpenAiCompatConfig) -> Self {
        let http = Connections::new(config.connections, |builder| builder.connect_timeout(CONNECT_TIMEOUT))
            .expect("the TLS backend initialises (a build-time property, not an input)");
        let base = config.base_url.as_str().trim_end_matches('/').to_string();
        let endpoint = |path: &str| {
            url::Url::parse(&format!("{base}/{path}")).expect("a parsed base URL with a path appended parses")
        };
        let authorization = match config.api_key.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(key) => HeaderValue::from_str(&format!("Bearer {key}"))
                .map(|mut value| {
                    value.set_sensitive(true);
                    Some(value)
                })
                .map_err(|_| ()),
        };
        Self {
            inner: Arc::new(Inner {
                http,
                chat_url: endpoint("chat/completions"),
                transcriptions_url: endpoint("audio/transcriptions"),
                authorization,
            }),
        }
    }

    /// Its connections, for the in-flight gauge.
    pub fn connections(&self) -> &Connections {
        &self.inner.http
    }

    fn authorization(&self) -> Result<Option<HeaderValue>, UpstreamError> {
        self.inner.authorization.clone().map_err(|()| UpstreamError::Auth {
            upstream: UPSTREAM,
            message: "the API key is not a valid header value".to_string(),
        })
    }
}

/// For `map_err` and the capped reader.
fn transport_error(error: reqwest::Error) -> UpstreamError {
    UpstreamError::transport(UPSTREAM, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let config = OpenAiCompatConfig {
            base_url: url::Url::parse("http://127.0.0.1:9/v1").expect("url"),
            api_key: Some("sk-secret".into()),
            connections: ConnectionSettings::default(),
        };
        assert!(!format!("{config:?}").contains("sk-secret"));
        assert!(!format!("{:?}", OpenAiCompatClient::new(config)).contains("sk-secret"));
    }

    #[test]
    fn endpoints_append_to_the_base_with_or_without_a_trailing_slash() {
        for base in ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"] {
            let client = OpenAiCompatClient::new(OpenAiCompatConfig {
                base_url: url::Url::parse(base).expect("url"),
                api_key: None,
                connections: ConnectionSettings::default(),
            });
            assert_eq!(client.inner.chat_url.as_str(), "http://127.0.0.1:9/v1/chat/completions");
            assert_eq!(client.inner.transcriptions_url.as_str(), "http://127.0.0.1:9/v1/audio/transcriptions");
        }
    }
}
