//! `/api/transcribe`'s second path: a recording to an OpenAI-compatible transcription, the
//! reply into the contract's [`Transcription`].
//!
//! What Azure gives and these servers do not is derived or marked: `lexical` from the text
//! (Azure's rule: lower case, no punctuation), `confidence` from the segments' mean
//! `avg_logprob` (0 when the server sent no segments), `status` `Success` or, for no text,
//! `NoMatch` as Azure says it; `language` is the locale asked for.

use std::sync::Arc;

use super::{OpenAiCompatClient, TranscriptionRequest};
use crate::domain::jobs::TranscribeJob;
use crate::domain::provider::Provider;
use crate::domain::speech::Transcription;
use crate::upstream::UpstreamError;
use crate::upstream::azure_speech::lexical;

#[derive(Clone)]
pub struct Transcriber {
    client: OpenAiCompatClient,
    model: Arc<str>,
}

impl Transcriber {
    pub fn new(client: OpenAiCompatClient, model: &str) -> Self {
        Self { client, model: model.into() }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub async fn transcribe(&self, job: &TranscribeJob) -> Result<Transcription, UpstreamError> {
        let payload = job.audio.payload();
        let request = TranscriptionRequest {
            model: &self.model,
            bytes: payload.bytes.clone(),
            file_name: payload.file_name,
            content_type: payload.content_type,
            language: &job.language,
        };
        let reply = self.client.transcribe(&request).await?;
        tracing::debug!(model = %self.model, language = reply.language.as_deref().unwrap_or(""), "openai-compatible transcription replied");
        let seconds_to_ms = |seconds: f64| (seconds * 1000.0).round() as u64;
        let duration_ms = reply
            .duration_seconds
            .map_or_else(|| u64::try_from(job.audio.duration().as_millis()).unwrap_or(u64::MAX), seconds_to_ms);
        let offset_ms = reply.first_start_seconds.map_or(0, seconds_to_ms);
        Ok(Transcription {
            lexical: lexical(&reply.text),
            status: if reply.text.is_empty() { "NoMatch" } else { "Success" }.to_string(),
            confidence: reply.confidence.unwrap_or(0.0),
            language: job.language.clone(),
            offset_ms,
            duration_ms: duration_ms.saturating_sub(offset_ms),
            text: reply.text,
            provider: Some(Provider::OpenaiCompatible),
        })
    }
}
