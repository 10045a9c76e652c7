//! Hashes a job's recording on the blocking pool before the stack below asks for its cache key.
//!
//! An audio job's key is the SHA-256 of the recording as uploaded (`cache::key`), up to
//! `AUDIO_MAX_BYTES` (10 MiB: ~10-30 ms of CPU). Asked for lazily by single-flight, that hash
//! ran on an async worker and stalled every other request on it meanwhile. Here it runs where
//! the decoding runs, and the key below finds it already made: the same digest (every clone of
//! the recording shares it), so the same key, and cache hits still hit.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::audio::Audio;
use crate::domain::jobs::{PronunciationJob, TranscribeJob};
use crate::upstream::UpstreamError;

/// A job that carries a recording.
pub trait Recorded {
    fn recording(&self) -> &Audio;
}

impl Recorded for TranscribeJob {
    fn recording(&self) -> &Audio {
        &self.audio
    }
}

impl Recorded for PronunciationJob {
    fn recording(&self) -> &Audio {
        &self.audio
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RecordingDigestLayer;

impl<S> Layer<S> for RecordingDigestLayer {
    type Service = RecordingDigest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordingDigest { inner }
    }
}

#[derive(Clone)]
pub struct RecordingDigest<S> {
    inner: S,
}

impl<S, J> Service<J> for RecordingDigest<S>
where
    J: Recorded + Send + 'static,
    S: Service<J, Error = UpstreamError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<S::Response, UpstreamError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, job: J) -> Self::Future {
        // The clone that was made ready goes with the job; a fresh clone stays for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let recording = job.recording().clone();
        Box::pin(async move {
            // Only a runtime shutting down fails this; the key then hashes where it is asked.
            let _ = tokio::task::spawn_blocking(move || {
                recording.digest();
            })
            .await;
            inner.call(job).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::audio::{Policy, Purpose, SendFormat, wav};
    use crate::cache::key::CacheKeyed;

    fn job() -> TranscribeJob {
        let recording = Bytes::from(wav::encode(&[7; 32_000]));
        let policy = Policy { max_duration: Duration::from_secs(600), send: SendFormat::Auto };
        let audio = Audio::normalise(recording, Purpose::Transcription, policy).expect("a plain WAV");
        TranscribeJob { audio, language: "en-GB".to_string() }
    }

    #[tokio::test]
    async fn the_recording_is_hashed_before_the_stack_asks_and_into_the_same_key() {
        let expected = job().cache_key();
        let service = RecordingDigestLayer.layer(service_fn(move |job: TranscribeJob| async move {
            assert!(job.audio.digest_is_ready(), "hashed before the stack below asks for the key");
            Ok::<_, UpstreamError>(job.cache_key())
        }));
        let job = job();
        assert!(!job.audio.digest_is_ready());
        let key = service.oneshot(job).await.expect("key");
        assert_eq!(key, expected, "the same key as hashing in place gives");
    }
}
