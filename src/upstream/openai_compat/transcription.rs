//! `POST {base}/audio/transcriptions` (OpenAI's wire format, UPSTREAMS.md 6.1): multipart
//! `file` whose name's extension says its format, `model`, `response_format=verbose_json`,
//! `language` as ISO-639-1.
//!
//! Servers' quirks read here: vLLM types `duration` as a string; whisper.cpp's server ignores
//! `model`, and sends no `segments` unless asked; speaches answers 404 for a model not
//! installed (handed over like any 404).

use std::time::SystemTime;

use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::Value;

use super::errors::classify_error;
use super::{MAX_TRANSCRIPTION_REPLY_BYTES, OpenAiCompatClient, UPSTREAM, transport_error};
use crate::upstream::UpstreamError;
use crate::upstream::reply::read_capped;

/// One recording to transcribe.
#[derive(Debug, Clone)]
pub struct TranscriptionRequest<'a> {
    pub model: &'a str,
    pub bytes: bytes::Bytes,
    /// `audio.wav`, `audio.ogg`...: servers tell the format by the extension.
    pub file_name: &'static str,
    pub content_type: &'static str,
    /// BCP-47 as the contract takes it (`en-US`); sent as its ISO-639-1 part.
    pub language: &'a str,
}

/// What `verbose_json` says.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionReply {
    pub text: String,
    pub duration_seconds: Option<f64>,
    /// Where speech starts: the first segment's `start`.
    pub first_start_seconds: Option<f64>,
    /// `exp` of the segments' mean `avg_logprob`, when the server sent segments.
    pub confidence: Option<f64>,
    /// The language the server names (`english`, or `en`), for the log.
    pub language: Option<String>,
}

#[derive(Deserialize)]
struct Verbose {
    #[serde(default)]
    text: String,
    #[serde(default)]
    language: Option<String>,
    /// A number (OpenAI, speaches, whisper.cpp) or a string (vLLM).
    #[serde(default)]
    duration: Option<Value>,
    #[serde(default)]
    segments: Option<Vec<Segment>>,
}

#[derive(Deserialize)]
struct Segment {
    #[serde(default)]
    start: Option<Value>,
    #[serde(default)]
    avg_logprob: Option<f64>,
}

/// `en-US` → `en`; `zh-Hans-CN` → `zh`. The primary subtag is ISO-639-1 for every language
/// Azure's short-audio locales list (two letters); anything longer is sent as it is.
pub fn iso_639_1(language: &str) -> String {
    language.split(['-', '_']).next().unwrap_or(language).to_ascii_lowercase()
}

impl OpenAiCompatClient {
    pub async fn transcribe(&self, request: &TranscriptionRequest<'_>) -> Result<TranscriptionReply, UpstreamError> {
        let authorization = self.authorization()?;
        let length = request.bytes.len() as u64;
        let file = Part::stream_with_length(reqwest::Body::from(request.bytes.clone()), length)
            .file_name(request.file_name)
            .mime_str(request.content_type.split(';').next().unwrap_or(request.content_type).trim())
            .map_err(|error| UpstreamError::Rejected { upstream: UPSTREAM, status: 0, message: error.to_string() })?;
        let form = Form::new()
            .part("file", file)
            .text("model", request.model.to_string())
            .text("response_format", "verbose_json")
            .text("language", iso_639_1(request.language));
        let http = self.inner.http.lease();
        let mut call = http.post(self.inner.transcriptions_url.clone()).multipart(form);
        if let Some(authorization) = authorization {
            call = call.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = call.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = read_capped(response, MAX_TRANSCRIPTION_REPLY_BYTES, UPSTREAM, transport_error).await?;
        drop(http);
        if (200..300).contains(&status) {
            read_reply(&bytes)
        } else {
            Err(classify_error(status, &headers, &bytes, SystemTime::now()))
        }
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|seconds: &f64| seconds.is_finite() && *seconds >= 0.0)
}

fn read_reply(bytes: &[u8]) -> Result<TranscriptionReply, UpstreamError> {
    let verbose: Verbose = serde_json::from_slice(bytes).map_err(|error| UpstreamError::InvalidResponse {
        upstream: UPSTREAM,
        message: format!("transcription body: {error}"),
    })?;
    let segments = verbose.segments.unwrap_or_default();
    let logprobs: Vec<f64> =
        segments.iter().filter_map(|segment| segment.avg_logprob).filter(|p| p.is_finite()).collect();
    let confidence =
        (!logprobs.is_empty()).then(|| (logprobs.iter().sum::<f64>() / logprobs.len() as f64).exp().clamp(0.0, 1.0));
    Ok(TranscriptionReply {
        text: verbose.text.trim().to_string(),
        duration_seconds: verbose.duration.as_ref().and_then(number),
        first_start_seconds: segments.first().and_then(|segment| segment.start.as_ref()).and_then(number),
        confidence,
        language: verbose.language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_sent_as_their_iso_639_1_part() {
        assert_eq!(iso_639_1("en-US"), "en");
        assert_eq!(iso_639_1("pt-BR"), "pt");
        assert_eq!(iso_639_1("de"), "de");
    }

    #[test]
    fn openai_verbose_json_is_read() {
        // OpenAI's documented verbose_json example, trimmed to one segment.
        let body = br#"{"task":"transcribe","language":"english","duration":8.470000267028809,"text":"The beach was a popular spot on a hot summer day.","segments":[{"id":0,"seek":0,"start":0.0,"end":3.319999933242798,"text":" The beach was a popular spot on a hot summer day.","tokens":[50364,440],"temperature":0.0,"avg_logprob":-0.2860786020755768,"compression_ratio":1.2363636493682861,"no_speech_prob":0.00985979475080967}]}"#;
        let reply = read_reply(body).expect("reply");
        assert_eq!(reply.text, "The beach was a popular spot on a hot summer day.");
        assert_eq!(reply.duration_seconds, Some(8.470000267028809));
        assert_eq!(reply.first_start_seconds, Some(0.0));
        let confidence = reply.confidence.expect("segments give a confidence");
        assert!((confidence - (-0.2860786020755768f64).exp()).abs() < 1e-9);
    }

    #[test]
    fn vllm_duration_as_a_string_and_no_segments_are_read() {
        let body = br#"{"text":" Hello there.","language":"en","duration":"2.5","segments":[]}"#;
        let reply = read_reply(body).expect("reply");
        assert_eq!((reply.text.as_str(), reply.duration_seconds, reply.confidence), ("Hello there.", Some(2.5), None));
        let plain = br#"{"text":"Hi"}"#;
        assert_eq!(read_reply(plain).expect("reply").duration_seconds, None);
    }
}
