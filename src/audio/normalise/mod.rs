//! Whatever a browser or phone recorded, made into what Azure documents, with its exact length.
//!
//! Flow of one recording (CPU work: run it through `audio::prepare`, never on an async worker):
//! 1. detect the container by its bytes; WAV headers are read here, the rest demuxed by symphonia;
//! 2. refuse what no learner's device makes (thousands of channels, absurd rates) before any
//!    decoding;
//! 3. choose: a 16 kHz mono 16-bit WAV goes as it came (`passthrough`); mono Opus is re-packaged
//!    as Ogg/Opus packet for packet (`remux`, also a WAV whose size fields were left unknown);
//!    everything else is decoded, down-mixed and resampled to 16 kHz mono 16-bit (`transcode`);
//! 4. measure while doing it: Opus by its packets' TOC durations less pre-skip and end trim,
//!    the rest by decoded samples, and stop as soon as a limit is passed;
//! 5. pick the destination: up to 60 s Azure's short-audio REST API; longer recordings its fast
//!    transcription API, which takes the common containers as they are, so those go unchanged.
//!
//! Memory per recording is its bytes (at most `AUDIO_MAX_BYTES`), the decoder's state, and the
//! 16 kHz output: at most 60 s of it (1.9 MB) unless a long recording's container is one fast
//! transcription does not take (ADTS, Matroska other than WebM, a WAV that is not 16 kHz mono
//! 16-bit), which keeps up to `AUDIO_MAX_SECONDS` of it (19.2 MB at 600 s). Copies and output
//! are held in the request's `budget::Output` before they are allocated.

use std::time::Duration;

use bytes::Bytes;

use self::remux::{native_wav, remux, with_sizes};
use self::transcode::transcode;
use super::allowance::Cancel;
use super::budget::Output;
use super::demux::{Codec, Demuxer};
use super::detect::{self, Container};
use super::error::AudioError;
use super::mp4::EditList;
use super::opus::{self, OpusHead};
use super::wav;

mod remux;
mod transcode;

/// Bump when what the normaliser sends for the same bytes changes: cache keys carry it, so no
/// result of an older conversion is served for a recording the new one would send differently.
pub const NORMALISER_VERSION: &str = "1";
/// Azure's short-audio REST API takes at most this much audio.
pub const SHORT_AUDIO_LIMIT: Duration = Duration::from_secs(60);
/// Pronunciation assessment takes at most this much (Azure's documented limit).
pub const ASSESSMENT_LIMIT: Duration = Duration::from_secs(30);
/// How far past a limit decoding may run before it stops early: the decoded stream runs a little
/// past the measured length (Opus' end padding, trimmed only at the end; the resampler's tail),
/// and a recording of exactly the limit must fit. The exact length is checked at the end.
pub(super) const OVERRUN: Duration = Duration::from_secs(1);
/// More channels than any microphone or phone records: refused before decoding.
const MAX_CHANNELS: usize = 8;
const RATES: std::ops::RangeInclusive<u32> = 4_000..=384_000;

/// What the recording is for: it decides the longest acceptable length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Transcription,
    Assessment,
}

/// `AUDIO_SEND_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendFormat {
    /// Mono Opus as Ogg/Opus, the rest as WAV.
    #[default]
    Auto,
    /// Always WAV: Opus is decoded too.
    Wav,
}

impl SendFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Wav => "wav",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `AUDIO_MAX_SECONDS`.
    pub max_duration: Duration,
    pub send: SendFormat,
}

impl Default for Policy {
    /// The defaults of `AUDIO_MAX_SECONDS` and `AUDIO_SEND_FORMAT`.
    fn default() -> Self {
        Self { max_duration: Duration::from_secs(600), send: SendFormat::Auto }
    }
}

/// What happened to a recording, as `audio_inputs_total{action}` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Passthrough,
    Remux,
    Transcode,
    Rejected,
    /// Stopped part-way because its request was gone.
    Cancelled,
}

impl Action {
    pub const ALL: [Action; 5] = [Self::Passthrough, Self::Remux, Self::Transcode, Self::Rejected, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Remux => "remux",
            Self::Transcode => "transcode",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Which Azure API the recording goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Short-audio REST recognition (and pronunciation assessment): up to 60 s.
    ShortAudio,
    /// Fast transcription: longer recordings.
    FastTranscription,
}

/// The bytes Azure receives, and how they are labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub bytes: Bytes,
    pub content_type: &'static str,
    /// The file name of the multipart part fast transcription receives.
    pub file_name: &'static str,
    pub destination: Destination,
}

pub const WAV_CONTENT_TYPE: &str = "audio/wav; codecs=audio/pcm; samplerate=16000";
pub const OGG_OPUS_CONTENT_TYPE: &str = "audio/ogg; codecs=opus";

/// A recording ready for Azure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    pub container: Container,
    pub codec: Codec,
    pub action: Action,
    pub duration: Duration,
    pub payload: Payload,
}

/// A recording refused, with what was recognised of it (for the metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub error: AudioError,
    pub container: Option<Container>,
    pub codec: Option<Codec>,
}

pub fn normalise(bytes: Bytes, purpose: Purpose, policy: Policy) -> Result<Normalised, Rejected> {
    normalise_counted(bytes, purpose, policy, &mut Output::unbounded(), Cancel::new())
}

/// [`normalise`], with every copy and the growing 16 kHz output held in `output` before it is
/// allocated (a long recording's 19.2 MB included), and stopped at the next packet once `cancel`
/// is set (its request is gone).
pub fn normalise_counted(
    bytes: Bytes,
    purpose: Purpose,
    policy: Policy,
    output: &mut Output,
    cancel: Cancel,
) -> Result<Normalised, Rejected> {
    let container = detect::detect(&bytes).map_err(|found| Rejected {
        error: AudioError::unsupported(found),
        container: None,
        codec: None,
    })?;
    let reject = |codec: Option<Codec>| move |error| Rejected { error, container: Some(container), codec };
    let limits = Limits::new(purpose, policy);
    if container == Container::Wav {
        let info = wav::parse(&bytes).map_err(reject(Some(Codec::Pcm)))?;
        if info.data_size_unknown {
            // Its sizes are made true in a copy.
            output.copy(bytes.len()).map_err(reject(Some(Codec::Pcm)))?;
        }
        if info.is_azure_native() {
            return native_wav(bytes, &info, &limits).map_err(reject(Some(Codec::Pcm)));
        }
        plausible(Some(usize::from(info.channels)), Some(info.sample_rate), "WAV").map_err(reject(None))?;
        let readable = if info.data_size_unknown { with_sizes(&bytes, &info) } else { bytes.clone() };
        let demuxer = Demuxer::open(readable, container, cancel).map_err(reject(None))?;
        let codec = demuxer.codec;
        return transcode(demuxer, None, bytes, &limits, output).map_err(reject(Some(codec)));
    }
    let demuxer = Demuxer::open(bytes.clone(), container, cancel).map_err(reject(None))?;
    let codec = demuxer.codec;
    let params = &demuxer.params;
    plausible(params.channels.as_ref().map(|channels| channels.count()), params.sample_rate, container.name())
        .map_err(reject(Some(codec)))?;
    if codec == Codec::Opus {
        let head = OpusHead::parse(params.extra_data.as_deref().unwrap_or_default(), container.name())
            .map_err(reject(Some(codec)))?;
        plausible(Some(usize::from(head.channels)), Some(opus::RATE), container.name()).map_err(reject(Some(codec)))?;
        if head.channels == 1 && head.mapping_family == 0 && policy.send == SendFormat::Auto {
            // Ogg pages around the same packets: about as large as the recording.
            output.copy(bytes.len()).map_err(reject(Some(codec)))?;
            return remux(demuxer, &head, &limits).map_err(reject(Some(codec)));
        }
        return transcode(demuxer, Some(head), bytes, &limits, output).map_err(reject(Some(codec)));
    }
    transcode(demuxer, None, bytes, &limits, output).map_err(reject(Some(codec)))
}

/// The lengths that matter for one purpose.
pub(super) struct Limits {
    pub(super) purpose: Purpose,
    /// Past it the recording is refused.
    pub(super) max: Duration,
    /// Past it the recording goes to fast transcription.
    pub(super) short: Duration,
}

impl Limits {
    fn new(purpose: Purpose, policy: Policy) -> Self {
        match purpose {
            // A reading longer than Azure assesses at once is cut into pieces later
            // (`domain::reading`), so it is kept whole up to `AUDIO_MAX_SECONDS` like any other.
            Purpose::Assessment => Self { purpose, max: policy.max_duration, short: ASSESSMENT_LIMIT },
            Purpose::Transcription => Self { purpose, max: policy.max_duration, short: SHORT_AUDIO_LIMIT },
        }
    }

    /// The error for a recording longer than `max`; `known` when its whole length is.
    pub(super) fn too_long(&self, known: Option<Duration>) -> AudioError {
        let seconds = known.map(|known| known.as_secs_f64());
        match self.purpose {
            Purpose::Assessment if self.max == ASSESSMENT_LIMIT => {
                AudioError::TooLongFor { operation: "pronunciation assessment", seconds, limit: self.max.as_secs() }
            }
            _ => AudioError::TooLong { seconds, limit: self.max.as_secs() },
        }
    }

    pub(super) fn check(&self, duration: Duration) -> Result<(), AudioError> {
        if duration.is_zero() {
            // Nothing to recognise: Azure would be paid to say so.
            return Err(AudioError::Missing("the recording holds no audio".into()));
        }
        if duration > self.max { Err(self.too_long(Some(duration))) } else { Ok(()) }
    }

    pub(super) fn destination(&self, duration: Duration) -> Destination {
        if duration > self.short { Destination::FastTranscription } else { Destination::ShortAudio }
    }
}

fn plausible(channels: Option<usize>, rate: Option<u32>, container: &str) -> Result<(), AudioError> {
    if let Some(channels) = channels.filter(|&channels| channels > MAX_CHANNELS) {
        return Err(AudioError::unsupported(format!(
            "{container} audio with {channels} channels (at most {MAX_CHANNELS})"
        )));
    }
    if let Some(rate) = rate.filter(|rate| !RATES.contains(rate)) {
        return Err(AudioError::unsupported(format!(
            "{container} audio at {rate} Hz (from {} to {} Hz are accepted)",
            RATES.start(),
            RATES.end()
        )));
    }
    Ok(())
}

pub(super) fn frames_to_duration(frames: u64, rate: u32) -> Duration {
    Duration::from_secs_f64(frames as f64 / f64::from(rate.max(1)))
}

pub(super) fn duration_to_48k(duration: Duration) -> u64 {
    (duration.as_secs_f64() * f64::from(opus::RATE)).round() as u64
}

pub(super) fn wav_payload(bytes: Bytes, destination: Destination) -> Payload {
    Payload { bytes, content_type: WAV_CONTENT_TYPE, file_name: "audio.wav", destination }
}

/// 48 kHz samples of padding at the end of MP4 Opus, by its edit list: what the packets hold
/// beyond the pre-skip and the edited length.
pub(super) fn opus_end_trim(edits: Option<EditList>, samples: u64, head: &OpusHead) -> u64 {
    match edits.map(|edits| edits.at_rate(opus::RATE)) {
        Some((_, Some(play))) => samples.saturating_sub(u64::from(head.pre_skip) + play),
        _ => 0,
    }
}
