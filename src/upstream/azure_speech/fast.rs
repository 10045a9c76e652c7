//! Azure fast transcription (UPSTREAMS.md 1.9), for recordings longer than the 60 s that
//! short-audio REST recognition covers: one synchronous call per recording, the whole of it
//! transcribed.
//!
//! `POST {base}/speechtotext/transcriptions:transcribe?api-version=2024-11-15`, multipart with
//! the recording as the `audio` file part and a `definition` JSON part naming the locale. The
//! answer is display text in phrases with millisecond offsets (not ticks), and becomes the same
//! contract `Transcription` short audio gives.

use std::time::SystemTime;

use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use url::Url;

use super::UPSTREAM;
use super::client::{AzureSpeechClient, SUBSCRIPTION_KEY};
use super::status::{status_error, transport_error};
use crate::audio::Payload;
use crate::domain::speech::Transcription;
use crate::upstream::UpstreamError;
use crate::upstream::reply::read_capped;

/// The longest fast-transcription reply read. 600 s of speech is about 2,000 words; with the
/// per-phrase and per-word entries Azure may add that stays under 1 MiB, so 8 MiB is generous
/// and still keeps a broken or hostile answer from holding memory.
pub const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// The GA version the contract names; the 2025 one only adds fields we do not use.
pub const API_VERSION: &str = "2024-11-15";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Definition<'a> {
    locales: [&'a str; 1],
    /// As short audio's `profanity=masked`.
    profanity_filter_mode: &'static str,
}

/// `TranscribeResult` [AZ-SPEC]; every field optional, as proto-style APIs omit empty ones.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TranscribeResult {
    #[serde(default)]
    combined_phrases: Vec<CombinedPhrase>,
    #[serde(default)]
    phrases: Vec<Phrase>,
}

#[derive(Debug, Default, Deserialize)]
struct CombinedPhrase {
    #[serde(default)]
    text: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Phrase {
    #[serde(default)]
    offset_milliseconds: u64,
    #[serde(default)]
    duration_milliseconds: u64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    confidence: Option<f64>,
}

impl AzureSpeechClient {
    /// Transcribe a long recording whole.
    pub(super) async fn fast_transcribe(
        &self,
        audio: &Payload,
        language: &str,
    ) -> Result<Transcription, UpstreamError> {
        let mut url = transcription_url(&self.config.transcription_url)?;
        url.query_pairs_mut().append_pair("api-version", API_VERSION);
        let definition = serde_json::to_string(&Definition { locales: [language], profanity_filter_mode: "Masked" })
            .map_err(|error| UpstreamError::Rejected { upstream: UPSTREAM, status: 0, message: error.to_string() })?;
        let length = audio.bytes.len() as u64;
        let file = Part::stream_with_length(reqwest::Body::from(audio.bytes.clone()), length)
            .file_name(audio.file_name)
            // The part's type is the media type alone: short audio's `codecs=audio/pcm` parameter
            // is not a valid MIME parameter value, and fast transcription reads the bytes anyway.
            .mime_str(audio.content_type.split(';').next().unwrap_or(audio.content_type).trim())
            .map_err(|error| UpstreamError::Rejected { upstream: UPSTREAM, status: 0, message: error.to_string() })?;
        let form = Form::new().part("audio", file).text("definition", definition);
        let mut key = HeaderValue::from_str(&self.config.key).map_err(|_| UpstreamError::Auth {
            upstream: UPSTREAM,
            message: "the Azure Speech key is not a valid header value".to_string(),
        })?;
        key.set_sensitive(true);

        tracing::debug!(language, audio_bytes = length, "calling Azure fast transcription");
        let http = self.http.lease();
        let response = http
            .post(url)
            .header(SUBSCRIPTION_KEY, key)
            .header(ACCEPT, "application/json")
            .multipart(form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, MAX_REPLY_BYTES, UPSTREAM, transport_error).await?;
        drop(http);
        tracing::debug!(status = status.as_u16(), "Azure fast transcription answered");
        if !status.is_success() {
            return Err(status_error(status, &headers, &body, SystemTime::now()));
        }
        let result: TranscribeResult =
            serde_json::from_slice(&body).map_err(|error| UpstreamError::InvalidResponse {
                upstream: UPSTREAM,
                message: format!("not a transcription result: {error}"),
            })?;
        Ok(transcription(result, language))
    }
}

/// `{base}/speechtotext/transcriptions:transcribe`, keeping any path prefix on the base.
fn transcription_url(base: &Url) -> Result<Url, UpstreamError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| UpstreamError::Unreachable {
            upstream: UPSTREAM,
            message: format!("endpoint {base} cannot carry a path"),
        })?
        .pop_if_empty()
        .extend(["speechtotext", "transcriptions:transcribe"]);
    Ok(url)
}

/// The contract's transcription from fast transcription's phrases. They carry display text
/// only, so the lexical form is derived from it: lower-cased, punctuation dropped. Short audio's
/// `Lexical` also spells numbers out ("5" as "five"); this does not.
fn transcription(result: TranscribeResult, language: &str) -> Transcription {
    let text = if result.combined_phrases.is_empty() {
        result
            .phrases
            .iter()
            .map(|phrase| phrase.text.trim())
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        result.combined_phrases.iter().map(|phrase| phrase.text.trim()).collect::<Vec<_>>().join(" ")
    };
    let spoken: Vec<&Phrase> = result.phrases.iter().filter(|phrase| !phrase.text.trim().is_empty()).collect();
    // Weighted by how long each phrase lasts, as one confidence for the whole recording.
    let weight: u64 = spoken.iter().map(|phrase| phrase.duration_milliseconds.max(1)).sum();
    let confidence = if weight == 0 {
        0.0
    } else {
        spoken
            .iter()
            .map(|phrase| phrase.confidence.unwrap_or(0.0) * phrase.duration_milliseconds.max(1) as f64)
            .sum::<f64>()
            / weight as f64
    };
    let start = spoken.iter().map(|phrase| phrase.offset_milliseconds).min().unwrap_or(0);
    let end = spoken.iter().map(|phrase| phrase.offset_milliseconds + phrase.duration_milliseconds).max().unwrap_or(0);
    let status = if text.trim().is_empty() { "NoMatch" } else { "Success" };
    Transcription {
        lexical: lexical(&text),
        text,
        confidence,
        language: language.to_string(),
        status: status.to_string(),
        offset_ms: start,
        duration_ms: end.saturating_sub(start),
        provider: None,
    }
}

/// Lower case, punctuation dropped except in-word apostrophes.
pub(crate) fn lexical(display: &str) -> String {
    display
        .split_whitespace()
        .map(|word| {
            word.trim_matches(|c: char| !c.is_alphanumeric())
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_becomes_the_contracts_transcription() {
        // The head of the 2024-11-15 documentation's example [AZ-FAST].
        let result: TranscribeResult = serde_json::from_str(
            r#"{"durationMilliseconds": 182439,
                "combinedPhrases": [{"text": "Good afternoon. This is Sam."}],
                "phrases": [{"offsetMilliseconds": 960, "durationMilliseconds": 640, "text": "Good afternoon.",
                  "words": [{"text": "Good", "offsetMilliseconds": 960, "durationMilliseconds": 240},
                            {"text": "afternoon.", "offsetMilliseconds": 1200, "durationMilliseconds": 400}],
                  "locale": "en-US", "confidence": 0.93616915},
                  {"offsetMilliseconds": 1600, "durationMilliseconds": 960, "text": "This is Sam.",
                  "locale": "en-US", "confidence": 0.8}]}"#,
        )
        .expect("documented shape");
        let transcription = transcription(result, "en-US");
        assert_eq!(transcription.text, "Good afternoon. This is Sam.");
        assert_eq!(transcription.lexical, "good afternoon this is sam");
        assert_eq!(transcription.status, "Success");
        assert_eq!((transcription.offset_ms, transcription.duration_ms), (960, 1600));
        let expected = (0.93616915 * 640.0 + 0.8 * 960.0) / 1600.0;
        assert!((transcription.confidence - expected).abs() < 1e-9);
    }

    #[test]
    fn no_phrases_is_no_match_not_an_error() {
        let transcription = transcription(TranscribeResult::default(), "en-GB");
        assert_eq!(transcription.status, "NoMatch");
        assert_eq!(transcription.text, "");
        assert_eq!(transcription.language, "en-GB");
    }

    #[test]
    fn the_path_keeps_a_prefix_on_the_endpoint() {
        let url = transcription_url(&Url::parse("https://proxy.example/azure/?x=1").expect("url")).expect("path");
        assert_eq!(url.as_str(), "https://proxy.example/azure/speechtotext/transcriptions:transcribe");
    }
}
