//! A learner's recording as the upstream stacks carry it: the bytes as uploaded (whose hash
//! keys the cache) and what the normaliser made of them for Azure.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::budget::Reservation;
use super::demux::Codec;
use super::detect::Container;
use super::error::AudioError;
use super::normalise::{
    self, Action, Destination, Normalised, Payload, Policy, Purpose, SHORT_AUDIO_LIMIT, SendFormat, WAV_CONTENT_TYPE,
};
use super::wav::{self, TARGET_RATE};

/// Cheap to clone: clones share the bytes, the normalised payload and the digest.
#[derive(Clone)]
pub struct Audio {
    original: Bytes,
    normalised: Arc<Normalised>,
    send: SendFormat,
    /// SHA-256 of the bytes as uploaded, computed on first use and shared by every clone: each
    /// layer of a stack that asks for the job's cache key (single-flight, then the cache) would
    /// otherwise hash the whole recording again, up to `AUDIO_MAX_BYTES` per request.
    digest: Arc<OnceLock<[u8; 32]>>,
    /// The request's share of `AUDIO_BYTES_IN_FLIGHT`: an upstream call that outlives its client
    /// (`middleware::detach`) still holds these bytes, so they stay counted until it ends.
    held: Option<Reservation>,
}

impl Audio {
    pub fn new(original: Bytes, normalised: Normalised, send: SendFormat) -> Self {
        Self { original, normalised: Arc::new(normalised), send, digest: Arc::default(), held: None }
    }

    /// Counted in `reservation` for as long as any clone of it lives.
    pub fn held_in(mut self, reservation: Reservation) -> Self {
        self.held = Some(reservation);
        self
    }

    /// Normalise on the calling thread: for tests and tools. The service goes through
    /// `audio::Preparer`, which keeps this CPU work off the async workers.
    pub fn normalise(original: Bytes, purpose: Purpose, policy: Policy) -> Result<Self, AudioError> {
        let normalised = normalise::normalise(original.clone(), purpose, policy).map_err(|rejected| rejected.error)?;
        Ok(Self::new(original, normalised, policy.send))
    }

    /// A stretch of 16 kHz mono PCM as a WAV for Azure: a piece of a long reading. Its own
    /// bytes are its original (its digest is the piece's).
    pub fn from_pcm(samples: &[i16]) -> Self {
        let bytes = Bytes::from(wav::encode(samples));
        let duration = Duration::from_secs_f64(samples.len() as f64 / f64::from(TARGET_RATE));
        let destination =
            if duration > SHORT_AUDIO_LIMIT { Destination::FastTranscription } else { Destination::ShortAudio };
        let payload =
            Payload { bytes: bytes.clone(), content_type: WAV_CONTENT_TYPE, file_name: "audio.wav", destination };
        let normalised =
            Normalised { container: Container::Wav, codec: Codec::Pcm, action: Action::Passthrough, duration, payload };
        Self::new(bytes, normalised, SendFormat::Wav)
    }

    /// The recording as 16 kHz mono 16-bit samples: read from the WAV Azure would receive, or
    /// decoded from its Ogg/Opus (CPU work: not on an async worker).
    pub fn pcm(&self) -> Result<Vec<i16>, AudioError> {
        let wav_bytes = if self.payload().content_type == WAV_CONTENT_TYPE {
            self.payload().bytes.clone()
        } else {
            let policy = Policy { max_duration: self.duration() + normalise::OVERRUN, send: SendFormat::Wav };
            normalise::normalise(self.payload().bytes.clone(), Purpose::Assessment, policy)
                .map_err(|rejected| rejected.error)?
                .payload
                .bytes
        };
        let info = wav::parse(&wav_bytes)?;
        let data = &wav_bytes[info.data.clone()];
        Ok(data.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect())
    }

    /// What Azure receives.
    pub fn payload(&self) -> &Payload {
        &self.normalised.payload
    }

    /// Exact, measured before any call.
    pub fn duration(&self) -> Duration {
        self.normalised.duration
    }

    pub fn container(&self) -> Container {
        self.normalised.container
    }

    pub fn codec(&self) -> Codec {
        self.normalised.codec
    }

    pub fn action(&self) -> Action {
        self.normalised.action
    }

    /// `AUDIO_SEND_FORMAT` when it was prepared: part of what decides the answer.
    pub fn send_format(&self) -> SendFormat {
        self.send
    }

    pub fn digest(&self) -> &[u8; 32] {
        self.digest.get_or_init(|| Sha256::digest(&self.original).into())
    }

    #[cfg(test)]
    pub(crate) fn digest_is_ready(&self) -> bool {
        self.digest.get().is_some()
    }
}

impl PartialEq for Audio {
    fn eq(&self, other: &Self) -> bool {
        self.original == other.original && self.send == other.send && self.normalised == other.normalised
    }
}

impl Eq for Audio {}

impl std::fmt::Debug for Audio {
    // Recordings are large and personal: what they are and how long is what a log needs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Audio")
            .field("container", &self.container())
            .field("codec", &self.codec())
            .field("action", &self.action())
            .field("duration", &self.duration())
            .field("bytes", &self.original.len())
            .field("sent_bytes", &self.payload().bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav;

    fn policy() -> Policy {
        Policy { max_duration: Duration::from_secs(600), send: SendFormat::Auto }
    }

    #[test]
    fn a_recordings_digest_is_computed_once_for_all_its_clones() {
        let bytes = Bytes::from(wav::encode(&[7; 1600]));
        let audio = Audio::normalise(bytes.clone(), Purpose::Transcription, policy()).expect("a WAV");
        let job_copy = audio.clone();
        assert!(audio.digest.get().is_none(), "nothing hashed until a key is asked for");
        let digest = *job_copy.digest();
        assert_eq!(audio.digest.get(), Some(&digest), "the clone's hash is the original's");
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }
}
