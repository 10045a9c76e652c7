//! Learner audio: recognising the two formats Azure's short-audio REST API takes, and fetching
//! audio from a URL without letting that URL reach inside our network.

pub mod address;
pub mod error;
pub mod fetch;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use address::{AddressClass, classify};
pub use error::AudioError;
pub use fetch::{AudioFetcher, FetchPolicy};

/// The containers Azure Speech's short-audio REST endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// RIFF/WAVE, PCM.
    Wav,
    /// Ogg container with an Opus stream.
    OggOpus,
}

impl AudioFormat {
    /// Recognise the format by magic bytes; the file name and declared type are not trusted.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
            return Some(Self::Wav);
        }
        // An Ogg page starts with "OggS"; the first packet of an Opus stream is "OpusHead",
        // which sits right after the 27-byte page header and its segment table.
        if bytes.len() >= 28 && &bytes[0..4] == b"OggS" {
            let segments = bytes[26] as usize;
            let start = 27 + segments;
            if bytes.len() >= start + 8 && &bytes[start..start + 8] == b"OpusHead" {
                return Some(Self::OggOpus);
            }
        }
        None
    }

    /// The `Content-Type` Azure documents for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav; codecs=audio/pcm; samplerate=16000",
            Self::OggOpus => "audio/ogg; codecs=opus",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::OggOpus => "ogg_opus",
        }
    }
}

/// Audio bytes whose format has been recognised. Cheap to clone: clones share the bytes and the
/// digest.
#[derive(Clone)]
pub struct Audio {
    bytes: Bytes,
    format: AudioFormat,
    /// SHA-256 of `bytes`, computed on first use and shared by every clone: each layer of a stack
    /// that asks for the job's cache key (single-flight, then the cache) would otherwise hash the
    /// whole recording again, up to `AUDIO_MAX_BYTES` per request.
    digest: Arc<OnceLock<[u8; 32]>>,
}

impl Audio {
    pub fn new(bytes: Bytes, format: AudioFormat) -> Self {
        Self { bytes, format, digest: Arc::default() }
    }

    /// `None` when the bytes are neither WAV nor Ogg/Opus (the contract's 415).
    pub fn recognise(bytes: Bytes) -> Option<Self> {
        AudioFormat::detect(&bytes).map(|format| Self::new(bytes, format))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn format(&self) -> AudioFormat {
        self.format
    }

    pub fn digest(&self) -> &[u8; 32] {
        self.digest.get_or_init(|| Sha256::digest(&self.bytes).into())
    }
}

impl PartialEq for Audio {
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format && self.bytes == other.bytes
    }
}

impl Eq for Audio {}

impl std::fmt::Debug for Audio {
    // Recordings are large and personal: their length is what a log needs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Audio").field("format", &self.format).field("bytes", &self.bytes.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recordings_digest_is_computed_once_for_all_its_clones() {
        let audio = Audio::new(Bytes::from_static(b"RIFF....WAVEfmt "), AudioFormat::Wav);
        let job_copy = audio.clone();
        assert!(audio.digest.get().is_none(), "nothing hashed until a key is asked for");
        let digest = *job_copy.digest();
        assert_eq!(audio.digest.get(), Some(&digest), "the clone's hash is the original's");
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(b"RIFF....WAVEfmt ")));
    }

    #[test]
    fn a_riff_wave_header_is_wav() {
        let mut wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
        wav.extend_from_slice(&[0; 32]);
        assert_eq!(AudioFormat::detect(&wav), Some(AudioFormat::Wav));
    }

    #[test]
    fn an_ogg_page_carrying_opus_head_is_ogg_opus() {
        let mut ogg = b"OggS".to_vec();
        ogg.extend_from_slice(&[0; 22]); // version .. page checksum
        ogg.push(1); // one segment
        ogg.push(19); // its length
        ogg.extend_from_slice(b"OpusHead\x01\x01\x38\x01\x80\x3e\x00\x00\x00\x00\x00");
        assert_eq!(AudioFormat::detect(&ogg), Some(AudioFormat::OggOpus));
    }

    #[test]
    fn ogg_vorbis_mp3_and_text_are_refused() {
        let mut vorbis = b"OggS".to_vec();
        vorbis.extend_from_slice(&[0; 22]);
        vorbis.push(1);
        vorbis.push(30);
        vorbis.extend_from_slice(b"\x01vorbis\x00\x00\x00\x00\x02\x44\xac\x00\x00");
        assert_eq!(AudioFormat::detect(&vorbis), None);
        assert_eq!(AudioFormat::detect(b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb"), None);
        assert_eq!(AudioFormat::detect(b"hello world, not audio"), None);
        assert_eq!(AudioFormat::detect(b""), None);
    }
}
