//! The Azure Speech short-audio REST client (UPSTREAMS.md section 1).
//!
//! Flow of one call:
//! 1. build `POST {base}/speech/recognition/{mode}/cognitiveservices/v1` with `language`,
//!    `format=detailed`, `profanity` and a fresh `X-ConnectionId`;
//! 2. send the buffered audio as is (the retry layer above may call again with the same job);
//! 3. classify a non-2xx status into an `UpstreamError`, never failing on the error body;
//! 4. read a 2xx body leniently (statuses, number-or-string fields, flat or nested scores) and
//!    turn it into the contract's `Transcription` / `Pronunciation`.
//!
//! There is no per-call timeout here: the retry layer owns the whole deadline and drops the
//! future when it runs out.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use url::Url;

use super::UPSTREAM;
use super::results::{pronunciation, transcription};
use super::status::{status_error, transport_error};
use super::wire::{AssessmentParams, RecognitionResponse};
use crate::audio::{Audio, Destination};
use crate::domain::jobs::{PronunciationJob, TranscribeJob};
use crate::domain::speech::{Pronunciation, Transcription};
use crate::upstream::UpstreamError;
use crate::upstream::connections::{ConnectionSettings, Connections};
use crate::upstream::reply::read_capped;

pub(super) const SUBSCRIPTION_KEY: &str = "Ocp-Apim-Subscription-Key";
const PRONUNCIATION_ASSESSMENT: &str = "Pronunciation-Assessment";

/// The longest short-audio reply read. 60 s of audio with pronunciation assessment at phoneme
/// granularity is a few hundred KB of JSON at most; 2 MiB is generous for that and still keeps
/// a broken or hostile answer from holding memory.
pub const MAX_REPLY_BYTES: usize = 2 * 1024 * 1024;

/// Where and how to call Azure Speech. `Debug` leaves the key out.
#[derive(Clone)]
pub struct AzureSpeechConfig {
    /// `https://{region}.stt.speech.microsoft.com`, or `AZURE_SPEECH_ENDPOINT`. A path on it is
    /// kept as a prefix (private endpoints, proxies).
    pub base_url: Url,
    /// Fast transcription's base: `https://{region}.api.cognitive.microsoft.com`, or
    /// `AZURE_SPEECH_TRANSCRIPTION_ENDPOINT`.
    pub transcription_url: Url,
    /// The resource key, sent as `Ocp-Apim-Subscription-Key`.
    pub key: String,
    /// `conversation` (the only one the current docs list), `interactive` or `dictation`.
    pub recognition_mode: String,
    /// `masked`, `removed` or `raw`.
    pub profanity: String,
    pub connections: ConnectionSettings,
}

impl AzureSpeechConfig {
    /// The public regional host. Anything but letters and digits is dropped from `region`
    /// (Azure region names have nothing else); check [`Self::is_valid_region`] at startup to
    /// refuse a bad value instead.
    pub fn for_region(region: &str, key: String) -> Self {
        let region: String =
            region.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
        // Letters and digits always make a valid host label; only an empty region fails here.
        let base_url = Url::parse(&format!("https://{region}.stt.speech.microsoft.com/"))
            .unwrap_or_else(|_| Url::parse("https://stt.speech.microsoft.com/").expect("a constant URL parses"));
        Self::with_endpoint(base_url, key)
    }

    pub fn with_endpoint(endpoint: Url, key: String) -> Self {
        Self {
            transcription_url: endpoint.clone(),
            base_url: endpoint,
            key,
            recognition_mode: "conversation".to_string(),
            profanity: "masked".to_string(),
            connections: ConnectionSettings::default(),
        }
    }

    pub fn is_valid_region(region: &str) -> bool {
        !region.is_empty() && region.chars().all(|c| c.is_ascii_alphanumeric())
    }

    /// Startup check of what a request would otherwise fail on, with a reason to print.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.base_url.scheme(), "http" | "https") || self.base_url.host().is_none() {
            return Err(format!("Azure Speech endpoint {} is not an http(s) URL with a host", self.base_url));
        }
        if self.key.is_empty() || HeaderValue::from_str(&self.key).is_err() {
            return Err("Azure Speech key is empty or not a valid header value".to_string());
        }
        if !matches!(self.recognition_mode.as_str(), "conversation" | "interactive" | "dictation") {
            return Err(format!("unknown Azure Speech recognition mode {:?}", self.recognition_mode));
        }
        if !matches!(self.profanity.as_str(), "masked" | "removed" | "raw") {
            return Err(format!("unknown Azure Speech profanity option {:?}", self.profanity));
        }
        Ok(())
    }

    /// `{base}/speech/recognition/{mode}/cognitiveservices/v1`, keeping any path on the base.
    fn recognition_url(&self) -> Result<Url, UpstreamError> {
        let mut url = self.base_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| UpstreamError::Unreachable {
                upstream: UPSTREAM,
                message: format!("endpoint {} cannot carry a path", self.base_url),
            })?
            .pop_if_empty()
            .extend(["speech", "recognition", &self.recognition_mode, "cognitiveservices", "v1"]);
        Ok(url)
    }
}

impl std::fmt::Debug for AzureSpeechConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSpeechConfig")
            .field("base_url", &self.base_url.as_str())
            .field("transcription_url", &self.transcription_url.as_str())
            .field("key", &"<redacted>")
            .field("recognition_mode", &self.recognition_mode)
            .field("profanity", &self.profanity)
            .field("connections", &self.connections)
            .finish()
    }
}

/// Azure Speech short-audio recognition and pronunciation assessment. Cheap to clone: clones
/// share one connection pool.
#[derive(Debug, Clone)]
pub struct AzureSpeechClient {
    pub(super) http: Connections,
    pub(super) config: std::sync::Arc<AzureSpeechConfig>,
}

impl AzureSpeechClient {
    /// Its connections, for the in-flight gauge.
    pub fn connections(&self) -> &Connections {
        &self.http
    }

    pub fn new(config: AzureSpeechConfig) -> Self {
        let configure = |builder: reqwest::ClientBuilder| {
            builder
                .connect_timeout(Duration::from_secs(5))
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(32)
                .tcp_keepalive(Duration::from_secs(30))
                // A redirected POST would be replayed as a bodiless GET; a redirect is an error here.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("backend-ai/", env!("CARGO_PKG_VERSION")))
        };
        let http = Connections::new(config.connections, configure)
            .or_else(|error| {
                tracing::warn!(%error, "Azure Speech HTTP client settings refused; using defaults");
                Connections::new(config.connections, |builder| builder)
            })
            .expect("the TLS backend initialises (a build-time property, not an input)");
        Self { http, config: std::sync::Arc::new(config) }
    }

    /// Recognise `job.audio` in `job.language`: by short-audio recognition up to 60 s, by fast
    /// transcription beyond. No speech (`NoMatch`, `InitialSilenceTimeout`, `BabbleTimeout`) is
    /// an `Ok` with empty text and that status.
    pub async fn transcribe(&self, job: &TranscribeJob) -> Result<Transcription, UpstreamError> {
        if job.audio.payload().destination == Destination::FastTranscription {
            return self.fast_transcribe(job.audio.payload(), &job.language).await;
        }
        let response = self.recognise(&job.audio, &job.language, None).await?;
        transcription(response, &job.language)
    }

    /// Assess `job.audio` against `job.reference_text` (HundredMark, phoneme granularity,
    /// comprehensive, miscue on; prosody too for en-US, the only language that has it).
    pub async fn assess(&self, job: &PronunciationJob) -> Result<Pronunciation, UpstreamError> {
        let params = AssessmentParams {
            reference_text: &job.reference_text,
            grading_system: "HundredMark",
            granularity: "Phoneme",
            dimension: "Comprehensive",
            enable_miscue: "True",
            enable_prosody_assessment: job.language.eq_ignore_ascii_case("en-US").then_some("True"),
        };
        // Serialising strings and base64 both always succeed; the error path only keeps this
        // free of panics. Status 0: refused before anything was sent.
        let header = serde_json::to_vec(&params)
            .map_err(|error| error.to_string())
            .and_then(|json| HeaderValue::from_str(&STANDARD.encode(json)).map_err(|error| error.to_string()))
            .map_err(|error| UpstreamError::Rejected {
                upstream: UPSTREAM,
                status: 0,
                message: format!("pronunciation parameters not encodable: {error}"),
            })?;
        let response = self.recognise(&job.audio, &job.language, Some(header)).await?;
        pronunciation(response, &job.reference_text)
    }

    async fn recognise(
        &self,
        audio: &Audio,
        language: &str,
        assessment: Option<HeaderValue>,
    ) -> Result<RecognitionResponse, UpstreamError> {
        let config = &self.config;
        let mut url = config.recognition_url()?;
        // Azure keeps only a 32-hex id without dashes; quoting it lets support find the call.
        let connection_id = uuid::Uuid::new_v4().simple().to_string();
        url.query_pairs_mut()
            .append_pair("language", language)
            .append_pair("format", "detailed")
            .append_pair("profanity", &config.profanity)
            .append_pair("X-ConnectionId", &connection_id);

        let mut key = HeaderValue::from_str(&config.key).map_err(|_| UpstreamError::Auth {
            upstream: UPSTREAM,
            message: "the Azure Speech key is not a valid header value".to_string(),
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(SUBSCRIPTION_KEY, key);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(audio.payload().content_type));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let assessing = assessment.is_some();
        if let Some(assessment) = assessment {
            headers.insert(PRONUNCIATION_ASSESSMENT, assessment);
        }

        tracing::debug!(
            connection_id,
            mode = %config.recognition_mode,
            language,
            assessing,
            audio_bytes = audio.payload().bytes.len(),
            "calling Azure Speech"
        );
        let http = self.http.lease();
        let response = http
            .post(url)
            .headers(headers)
            // `Bytes` clones share the buffer: each attempt re-sends the whole audio cheaply.
            .body(audio.payload().bytes.clone())
            .send()
            .await
            .map_err(transport_error)?;

        let status = response.status();
        let response_headers = response.headers().clone();
        let body = read_capped(response, MAX_REPLY_BYTES, UPSTREAM, transport_error).await?;
        drop(http);
        tracing::debug!(connection_id, status = status.as_u16(), "Azure Speech answered");
        if !status.is_success() {
            return Err(status_error(status, &response_headers, &body, SystemTime::now()));
        }
        serde_json::from_slice(&body).map_err(|error| UpstreamError::InvalidResponse {
            upstream: UPSTREAM,
            message: format!("not a recognition result: {error}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_regional_host_is_built_from_the_region_name() {
        let config = AzureSpeechConfig::for_region("westeurope", "k".to_string());
        assert_eq!(config.base_url.as_str(), "https://westeurope.stt.speech.microsoft.com/");
        assert_eq!(config.recognition_mode, "conversation");
        assert_eq!(config.profanity, "masked");
        assert!(config.validate().is_ok());
        let odd = AzureSpeechConfig::for_region("West Europe/../x", "k".to_string());
        assert_eq!(odd.base_url.host_str(), Some("westeuropex.stt.speech.microsoft.com"));
        assert!(!AzureSpeechConfig::is_valid_region("West Europe/../x"));
        assert!(AzureSpeechConfig::is_valid_region("eastus2"));
    }

    #[test]
    fn the_recognition_path_keeps_a_prefix_on_the_endpoint() {
        let mut config = AzureSpeechConfig::with_endpoint(
            Url::parse("https://proxy.example/azure/?x=1").expect("valid URL"),
            "k".to_string(),
        );
        config.recognition_mode = "dictation".to_string();
        let url = config.recognition_url().map(|url| url.to_string());
        assert_eq!(
            url.as_deref().ok(),
            Some("https://proxy.example/azure/speech/recognition/dictation/cognitiveservices/v1")
        );
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let base = AzureSpeechConfig::for_region("westus", "key".to_string());
        assert!(AzureSpeechConfig { key: String::new(), ..base.clone() }.validate().is_err());
        assert!(AzureSpeechConfig { key: "bad\nkey".to_string(), ..base.clone() }.validate().is_err());
        assert!(AzureSpeechConfig { recognition_mode: "batch".to_string(), ..base.clone() }.validate().is_err());
        assert!(AzureSpeechConfig { profanity: "tags".to_string(), ..base.clone() }.validate().is_err());
        let ftp = Url::parse("ftp://host/").expect("valid URL");
        assert!(AzureSpeechConfig::with_endpoint(ftp, "key".to_string()).validate().is_err());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let client = AzureSpeechClient::new(AzureSpeechConfig::for_region("westus", "s3cr3t-key".to_string()));
        let printed = format!("{client:?}");
        assert!(printed.contains("westus") && !printed.contains("s3cr3t-key"), "{printed}");
    }
}
