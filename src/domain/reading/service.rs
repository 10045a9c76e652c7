//! The reading's calls in order: a tower service over two others, one transcribing a piece and
//! one assessing a piece (each the usual resilience stack), so the stacks above it (single-flight,
//! cache) hold the whole result as one entry and merge identical long readings.

use std::ops::Range;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use parking_lot::Mutex;
use tower::{Service, ServiceExt};

use super::aggregate::{self, Assessed};
use super::pauses::{self, CutConfig};
use super::{PIECE_LIMIT, reference_parts, samples_to_ms};
use crate::audio::Audio;
use crate::domain::jobs::{PronunciationJob, TranscribeJob};
use crate::domain::served::{Origin, Served};
use crate::domain::speech::{Mode, Pronunciation, Transcription};
use crate::upstream::{Upstream, UpstreamError};
use crate::usage::record::SentAudio;

/// Assesses a [`PronunciationJob`] of any accepted length, scripted or not.
#[derive(Clone)]
pub struct Reading<T, A> {
    transcribe: T,
    assess: A,
    /// Pieces in flight at once (`PRONUNCIATION_CONCURRENCY`).
    concurrency: usize,
    cut: CutConfig,
}

impl<T, A> Reading<T, A> {
    pub fn new(transcribe: T, assess: A, concurrency: usize) -> Self {
        Self { transcribe, assess, concurrency: concurrency.max(1), cut: CutConfig::default() }
    }
}

impl<T, A> Service<PronunciationJob> for Reading<T, A>
where
    T: Service<TranscribeJob, Response = Served<Transcription>, Error = UpstreamError> + Clone + Send + Sync + 'static,
    T::Future: Send,
    A: Service<PronunciationJob, Response = Served<Pronunciation>, Error = UpstreamError>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send,
{
    type Response = Served<Pronunciation>;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<Served<Pronunciation>, UpstreamError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        // Each call drives clones of the inner services to readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, job: PronunciationJob) -> Self::Future {
        let reading = self.clone();
        Box::pin(async move {
            let sent = Sent::default();
            let mut result = reading.run(job, &sent).await?;
            result.sent = SentAudio(sent.total());
            Ok(Served::fresh(result))
        })
    }
}

impl<T, A> Reading<T, A>
where
    T: Service<TranscribeJob, Response = Served<Transcription>, Error = UpstreamError> + Clone + Send + Sync + 'static,
    T::Future: Send,
    A: Service<PronunciationJob, Response = Served<Pronunciation>, Error = UpstreamError>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send,
{
    async fn run(self, job: PronunciationJob, sent: &Sent) -> Result<Pronunciation, UpstreamError> {
        let mode = if job.reference_text.is_some() { Mode::Scripted } else { Mode::Unscripted };
        if job.audio.duration() <= PIECE_LIMIT {
            let duration_ms = u64::try_from(job.audio.duration().as_millis()).unwrap_or(u64::MAX);
            let text = job.reference_text.map_or(Text::TranscribeFirst, Text::Given);
            let piece = self.piece(job.audio, job.language, text, 0, duration_ms, sent.clone()).await?;
            return Ok(aggregate::single(piece, mode));
        }
        let audio = job.audio.clone();
        let samples = tokio::task::spawn_blocking(move || audio.pcm())
            .await
            .map_err(|error| internal(format!("decoding the reading failed: {error}")))?
            .map_err(|error| internal(format!("the reading's own audio could not be read: {error}")))?;
        let pieces = pauses::cut(&samples, &self.cut);
        let audios: Vec<(Range<usize>, Audio)> =
            pieces.into_iter().map(|range| (range.clone(), Audio::from_pcm(&samples[range]))).collect();
        drop(samples);

        let transcribing: Vec<_> = audios
            .iter()
            .map(|(_, audio)| {
                let job = TranscribeJob { audio: audio.clone(), language: job.language.clone() };
                let (call, sent, seconds) = (self.transcribe.clone().oneshot(job), sent.clone(), audio.duration());
                async move { call.await.inspect(|served| sent.add(served, seconds)) }
            })
            .collect();
        let transcripts: Vec<Transcription> =
            stream::iter(transcribing).buffered(self.concurrency).map_ok(|served| served.value).try_collect().await?;
        let texts: Vec<String> = transcripts.iter().map(|transcript| transcript.text.clone()).collect();
        // Free speech: each piece's transcript is its text.
        let parts: Vec<Option<String>> = match &job.reference_text {
            Some(reference) => reference_parts(reference, &texts)
                .into_iter()
                .zip(&texts)
                // A piece holding none of the text but saying something is scored against what
                // it said; the whole text then finds those words extra.
                .map(|(part, text)| Some(if part.is_empty() { text.clone() } else { part }))
                .collect(),
            None => texts.into_iter().map(Some).collect(),
        };

        let assessing: Vec<_> = audios
            .into_iter()
            .zip(parts)
            .zip(transcripts)
            .map(|(((range, audio), part), transcript)| {
                let (offset_ms, duration_ms) = (samples_to_ms(range.start), samples_to_ms(range.len()));
                let text = match part {
                    // A piece where nothing was heard costs no assessment.
                    _ if transcript.text.trim().is_empty() => Text::Silent(transcript.status),
                    Some(part) => Text::Given(part),
                    None => Text::Silent(transcript.status),
                };
                self.clone().piece(audio, job.language.clone(), text, offset_ms, duration_ms, sent.clone())
            })
            .collect();
        let assessed: Vec<Assessed> = stream::iter(assessing).buffered(self.concurrency).try_collect().await?;
        Ok(aggregate::combine(mode, job.reference_text.as_deref(), &assessed))
    }

    /// One piece assessed against its text.
    async fn piece(
        self,
        audio: Audio,
        language: String,
        text: Text,
        offset_ms: u64,
        duration_ms: u64,
        sent: Sent,
    ) -> Result<Assessed, UpstreamError> {
        let seconds = audio.duration();
        let silent = |status: String| Assessed {
            offset_ms,
            duration_ms,
            result: Pronunciation { status, ..Pronunciation::default() },
        };
        let reference = match text {
            Text::Given(reference) => reference,
            Text::Silent(status) => return Ok(silent(status)),
            Text::TranscribeFirst => {
                let job = TranscribeJob { audio: audio.clone(), language: language.clone() };
                let served = self.transcribe.clone().oneshot(job).await?;
                sent.add(&served, seconds);
                let transcript = served.value;
                if transcript.text.trim().is_empty() {
                    return Ok(silent(transcript.status));
                }
                transcript.text
            }
        };
        let job = PronunciationJob { audio, language, reference_text: Some(reference) };
        let served = self.assess.clone().oneshot(job).await?;
        sent.add(&served, seconds);
        let result = served.value;
        Ok(Assessed { offset_ms, duration_ms, result })
    }
}

/// The audio a reading's own calls sent to Azure, for its user's usage and audio budget.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Duration>>);

impl Sent {
    /// A call answered from elsewhere (a cache, another request's call) sent nothing.
    fn add<T>(&self, served: &Served<T>, audio: Duration) {
        if served.origin == Origin::Upstream {
            *self.0.lock() += audio;
        }
    }

    fn total(&self) -> Duration {
        *self.0.lock()
    }
}

/// What a piece is assessed against.
enum Text {
    Given(String),
    /// Free speech: its own transcript, made first.
    TranscribeFirst,
    /// Nothing was heard (the transcription's status says how): no assessment.
    Silent(String),
}

fn internal(message: String) -> UpstreamError {
    UpstreamError::Internal { upstream: Upstream::AzureSpeech, message }
}
