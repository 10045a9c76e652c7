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
//! 16-bit), which keeps up to `AUDIO_MAX_SECONDS` of it (19.2 MB at 600 s).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::decode::Decoder;
use super::demux::{Codec, Demuxer};
use super::detect::{self, Container};
use super::error::AudioError;
use super::mp4::EditList;
use super::ogg_opus;
use super::opus::{self, OpusHead};
use super::resample::To16k;
use super::wav::{self, TARGET_RATE, WavInfo};

/// Bump when what the normaliser sends for the same bytes changes: cache keys carry it, so no
/// result of an older conversion is served for a recording the new one would send differently.
pub const NORMALISER_VERSION: &str = "1";
/// Azure's short-audio REST API takes at most this much audio.
pub const SHORT_AUDIO_LIMIT: Duration = Duration::from_secs(60);
/// Pronunciation assessment takes at most this much (Azure's documented limit).
pub const ASSESSMENT_LIMIT: Duration = Duration::from_secs(30);
/// More channels than any microphone or phone records: refused before decoding.
const MAX_CHANNELS: usize = 8;
const RATES: std::ops::RangeInclusive<u32> = 4_000..=384_000;
/// Wall-clock bound on one recording's decoding, a guard against a decoder that stops making
/// progress; real recordings of the longest accepted length take a few seconds.
const DECODE_DEADLINE: Duration = Duration::from_secs(30);

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
}

impl Action {
    pub const ALL: [Action; 4] = [Self::Passthrough, Self::Remux, Self::Transcode, Self::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Remux => "remux",
            Self::Transcode => "transcode",
            Self::Rejected => "rejected",
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
    let container = detect::detect(&bytes).map_err(|found| Rejected {
        error: AudioError::unsupported(found),
        container: None,
        codec: None,
    })?;
    let reject = |codec: Option<Codec>| move |error| Rejected { error, container: Some(container), codec };
    let limits = Limits::new(purpose, policy);
    if container == Container::Wav {
        let info = wav::parse(&bytes).map_err(reject(Some(Codec::Pcm)))?;
        if info.is_azure_native() {
            return native_wav(bytes, &info, &limits).map_err(reject(Some(Codec::Pcm)));
        }
        plausible(Some(usize::from(info.channels)), Some(info.sample_rate), "WAV").map_err(reject(None))?;
        let readable = if info.data_size_unknown { with_sizes(&bytes, &info) } else { bytes.clone() };
        let demuxer = Demuxer::open(readable, container).map_err(reject(None))?;
        let codec = demuxer.codec;
        return transcode(demuxer, None, bytes, &limits).map_err(reject(Some(codec)));
    }
    let demuxer = Demuxer::open(bytes.clone(), container).map_err(reject(None))?;
    let codec = demuxer.codec;
    let params = &demuxer.params;
    plausible(params.channels.as_ref().map(|channels| channels.count()), params.sample_rate, container.name())
        .map_err(reject(Some(codec)))?;
    if codec == Codec::Opus {
        let head = OpusHead::parse(params.extra_data.as_deref().unwrap_or_default(), container.name())
            .map_err(reject(Some(codec)))?;
        plausible(Some(usize::from(head.channels)), Some(opus::RATE), container.name()).map_err(reject(Some(codec)))?;
        if head.channels == 1 && head.mapping_family == 0 && policy.send == SendFormat::Auto {
            return remux(demuxer, &head, &limits).map_err(reject(Some(codec)));
        }
        return transcode(demuxer, Some(head), bytes, &limits).map_err(reject(Some(codec)));
    }
    transcode(demuxer, None, bytes, &limits).map_err(reject(Some(codec)))
}

/// The lengths that matter for one purpose.
struct Limits {
    purpose: Purpose,
    /// Past it the recording is refused.
    max: Duration,
    /// Past it the recording goes to fast transcription.
    short: Duration,
}

impl Limits {
    fn new(purpose: Purpose, policy: Policy) -> Self {
        match purpose {
            Purpose::Assessment => {
                Self { purpose, max: ASSESSMENT_LIMIT.min(policy.max_duration), short: ASSESSMENT_LIMIT }
            }
            Purpose::Transcription => Self { purpose, max: policy.max_duration, short: SHORT_AUDIO_LIMIT },
        }
    }

    /// The error for a recording longer than `max`; `known` when its whole length is.
    fn too_long(&self, known: Option<Duration>) -> AudioError {
        let seconds = known.map(|known| known.as_secs_f64());
        match self.purpose {
            Purpose::Assessment if self.max == ASSESSMENT_LIMIT => {
                AudioError::TooLongFor { operation: "pronunciation assessment", seconds, limit: self.max.as_secs() }
            }
            _ => AudioError::TooLong { seconds, limit: self.max.as_secs() },
        }
    }

    fn check(&self, duration: Duration) -> Result<(), AudioError> {
        if duration > self.max { Err(self.too_long(Some(duration))) } else { Ok(()) }
    }

    fn destination(&self, duration: Duration) -> Destination {
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

/// Already what Azure documents: as it came, or with its size fields made true.
fn native_wav(bytes: Bytes, info: &WavInfo, limits: &Limits) -> Result<Normalised, AudioError> {
    let frames = info.frames();
    let duration = Duration::from_secs_f64(frames as f64 / f64::from(TARGET_RATE));
    limits.check(duration)?;
    let (action, bytes) =
        if info.data_size_unknown { (Action::Remux, with_sizes(&bytes, info)) } else { (Action::Passthrough, bytes) };
    let payload = wav_payload(bytes, limits.destination(duration));
    Ok(Normalised { container: Container::Wav, codec: Codec::Pcm, action, duration, payload })
}

/// The same WAV with a canonical header whose sizes are those of the samples it really has.
/// Only the header is rewritten for a native file; any other keeps its own `fmt ` chunk.
fn with_sizes(bytes: &Bytes, info: &WavInfo) -> Bytes {
    let whole = info.data.len() - info.data.len() % usize::from(info.block_align.max(1));
    let samples = &bytes[info.data.start..info.data.start + whole];
    let mut file = Vec::with_capacity(bytes.len());
    if info.is_azure_native() {
        file.extend_from_slice(&wav::header(whole / 2));
    } else {
        file.extend_from_slice(&bytes[..info.data.start - 8]);
        file[4..8].copy_from_slice(&u32::try_from(info.data.start - 8 + whole).unwrap_or(u32::MAX).to_le_bytes());
        file.extend_from_slice(b"data");
        file.extend_from_slice(&u32::try_from(whole).unwrap_or(u32::MAX).to_le_bytes());
    }
    file.extend_from_slice(samples);
    Bytes::from(file)
}

fn wav_payload(bytes: Bytes, destination: Destination) -> Payload {
    Payload { bytes, content_type: WAV_CONTENT_TYPE, file_name: "audio.wav", destination }
}

/// Mono Opus, packet for packet, into Ogg.
fn remux(mut demuxer: Demuxer, head: &OpusHead, limits: &Limits) -> Result<Normalised, AudioError> {
    let container = demuxer.container;
    let started = Instant::now();
    let mut writer = ogg_opus::Writer::new(head, container.name())?;
    let mut end_trim = 0;
    while let Some(packet) = demuxer.next_packet()? {
        writer.push(&packet.data)?;
        end_trim = packet.trim_end.get();
        let so_far =
            Duration::from_secs_f64(writer.samples().saturating_sub(u64::from(head.pre_skip)) as f64 / 48_000.0);
        if so_far > limits.max {
            return Err(limits.too_long(None));
        }
        deadline(started, container)?;
    }
    let end_trim =
        end_trim.max(opus_end_trim(demuxer.edits, writer.samples(), head)).max(demuxer.end_padding.unwrap_or(0));
    let ogg = writer.finish(end_trim)?;
    let duration = Duration::from_secs_f64(ogg.played_samples as f64 / f64::from(opus::RATE));
    limits.check(duration)?;
    let payload = Payload {
        bytes: Bytes::from(ogg.bytes),
        content_type: OGG_OPUS_CONTENT_TYPE,
        file_name: "audio.ogg",
        destination: limits.destination(duration),
    };
    Ok(Normalised { container, codec: Codec::Opus, action: Action::Remux, duration, payload })
}

/// Decoded, down-mixed and resampled to a 16 kHz mono 16-bit WAV.
fn transcode(
    mut demuxer: Demuxer,
    head: Option<OpusHead>,
    original: Bytes,
    limits: &Limits,
) -> Result<Normalised, AudioError> {
    let (container, codec) = (demuxer.container, demuxer.codec);
    let fast_takes_original =
        limits.purpose == Purpose::Transcription && fast_transcription_reads(container, &original);
    let keep_for = if fast_takes_original { limits.short } else { limits.max };
    let keep = usize::try_from(keep_for.as_secs()).unwrap_or(usize::MAX).saturating_mul(TARGET_RATE as usize);
    let mut decoder = Decoder::new(&demuxer, head.as_ref())?;
    let mut resampler: Option<To16k> = None;
    let mut window: Option<Window> = None;
    let mut decoded = Vec::new();
    let (mut opus_samples, mut end_trim) = (0u64, 0u64);
    let started = Instant::now();
    while let Some(packet) = demuxer.next_packet()? {
        if codec == Codec::Opus {
            opus_samples += u64::from(opus::packet_samples(&packet.data).unwrap_or(0));
            end_trim = packet.trim_end.get();
        }
        decoded.clear();
        let Some(rate) = decoder.decode(&packet, &mut decoded)? else { continue };
        let resampler = match &mut resampler {
            Some(resampler) if resampler.from_rate() != rate => {
                return Err(AudioError::damaged(container.name(), "its sample rate changes part-way"));
            }
            Some(resampler) => resampler,
            None => {
                // Opus' decoder drops its pre-skip itself; its edit list only tells the end.
                if head.is_none() {
                    window = demuxer.edits.map(|edits| Window::new(edits, rate));
                }
                resampler.insert(To16k::new(rate, keep)?)
            }
        };
        let playable = match &mut window {
            Some(window) => window.take(&decoded),
            None => &decoded,
        };
        resampler.push(playable);
        if frames_to_duration(resampler.input_frames(), rate) > limits.max {
            return Err(limits.too_long(None));
        }
        deadline(started, container)?;
    }
    let Some(resampler) = resampler else {
        return Err(AudioError::damaged(container.name(), "no audio in it could be decoded"));
    };
    let duration = match &head {
        // Opus has an exact answer that does not depend on the decoder: its packets' lengths.
        Some(head) => {
            let end_trim =
                end_trim.max(opus_end_trim(demuxer.edits, opus_samples, head)).max(demuxer.end_padding.unwrap_or(0));
            Duration::from_secs_f64(
                opus_samples.saturating_sub(u64::from(head.pre_skip) + end_trim) as f64 / f64::from(opus::RATE),
            )
        }
        None => frames_to_duration(resampler.input_frames(), resampler.from_rate()),
    };
    limits.check(duration)?;
    let destination = limits.destination(duration);
    let kept = resampler.finish();
    let payload = match (destination, kept) {
        (Destination::FastTranscription, _) if fast_takes_original => Payload {
            bytes: original,
            content_type: container_content_type(container),
            file_name: container_file_name(container),
            destination,
        },
        (_, Some(mut samples)) => {
            if head.is_some() {
                // The decoder's output, cut to the length the packets say it plays for.
                let expected = Decoder::opus_output_samples(duration_to_48k(duration));
                samples.resize(usize::try_from(expected).unwrap_or(samples.len()), 0);
            }
            wav_payload(Bytes::from(wav::encode(&samples)), destination)
        }
        (_, None) => return Err(limits.too_long(Some(duration))),
    };
    Ok(Normalised { container, codec, action: Action::Transcode, duration, payload })
}

/// Whether Azure fast transcription reads this recording as it came: the containers its
/// documentation lists, and of WAV only the plain PCM header.
fn fast_transcription_reads(container: Container, bytes: &[u8]) -> bool {
    match container {
        Container::Ogg | Container::WebM | Container::Mp4 | Container::Mp3 | Container::Flac => true,
        Container::Wav => wav::parse(bytes)
            .is_ok_and(|info| info.format == wav::FORMAT_PCM && !info.extensible && !info.data_size_unknown),
        Container::Matroska | Container::Adts => false,
    }
}

fn container_content_type(container: Container) -> &'static str {
    match container {
        Container::Wav => "audio/wav",
        Container::Ogg => "audio/ogg",
        Container::WebM | Container::Matroska => "audio/webm",
        Container::Mp4 => "audio/mp4",
        Container::Mp3 => "audio/mpeg",
        Container::Adts => "audio/aac",
        Container::Flac => "audio/flac",
    }
}

fn container_file_name(container: Container) -> &'static str {
    match container {
        Container::Wav => "audio.wav",
        Container::Ogg => "audio.ogg",
        Container::WebM | Container::Matroska => "audio.webm",
        Container::Mp4 => "audio.m4a",
        Container::Mp3 => "audio.mp3",
        Container::Adts => "audio.aac",
        Container::Flac => "audio.flac",
    }
}

/// 48 kHz samples of padding at the end of MP4 Opus, by its edit list: what the packets hold
/// beyond the pre-skip and the edited length.
fn opus_end_trim(edits: Option<EditList>, samples: u64, head: &OpusHead) -> u64 {
    match edits.map(|edits| edits.at_rate(opus::RATE)) {
        Some((_, Some(play))) => samples.saturating_sub(u64::from(head.pre_skip) + play),
        _ => 0,
    }
}

/// The part of a decoded stream an MP4 edit list says plays: the priming dropped, the padding
/// after the edited length cut.
struct Window {
    skip: u64,
    left: Option<u64>,
}

impl Window {
    fn new(edits: EditList, rate: u32) -> Self {
        let (skip, left) = edits.at_rate(rate);
        Self { skip, left }
    }

    fn take<'a>(&mut self, samples: &'a [f32]) -> &'a [f32] {
        let skipped = usize::try_from(self.skip).unwrap_or(usize::MAX).min(samples.len());
        self.skip -= skipped as u64;
        let rest = &samples[skipped..];
        match &mut self.left {
            Some(left) => {
                let kept = usize::try_from(*left).unwrap_or(usize::MAX).min(rest.len());
                *left -= kept as u64;
                &rest[..kept]
            }
            None => rest,
        }
    }
}

fn frames_to_duration(frames: u64, rate: u32) -> Duration {
    Duration::from_secs_f64(frames as f64 / f64::from(rate.max(1)))
}

fn duration_to_48k(duration: Duration) -> u64 {
    (duration.as_secs_f64() * f64::from(opus::RATE)).round() as u64
}

fn deadline(started: Instant, container: Container) -> Result<(), AudioError> {
    if started.elapsed() > DECODE_DEADLINE {
        return Err(AudioError::damaged(container.name(), "it took too long to decode"));
    }
    Ok(())
}
