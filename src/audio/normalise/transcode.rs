//! Recordings that are decoded, down-mixed and resampled to a 16 kHz mono 16-bit WAV, and what
//! fast transcription is sent for long ones.

use std::time::Duration;

use bytes::Bytes;

use super::{
    Action, Destination, Limits, Normalised, OVERRUN, Payload, Purpose, duration_to_48k, frames_to_duration,
    opus_end_trim, wav_payload,
};
use crate::audio::budget::Output;
use crate::audio::decode::Decoder;
use crate::audio::demux::{Codec, Demuxer};
use crate::audio::detect::Container;
use crate::audio::error::AudioError;
use crate::audio::mp4::EditList;
use crate::audio::opus::{self, OpusHead};
use crate::audio::resample::To16k;
use crate::audio::wav::{self, TARGET_RATE};

/// Packets in a row that yield no audio before the track is refused. A damaged stretch of a
/// real recording spans a few packets, and a decoder's start-up one or two; a stream that goes
/// on yielding nothing is claims without audio, each still costing a decoding attempt.
const SILENT_RUN_LIMIT: u32 = 256;

/// Decoded, down-mixed and resampled to a 16 kHz mono 16-bit WAV.
pub(super) fn transcode(
    mut demuxer: Demuxer,
    head: Option<OpusHead>,
    original: Bytes,
    limits: &Limits,
    output: &mut Output,
) -> Result<Normalised, AudioError> {
    let (container, codec) = (demuxer.container, demuxer.codec);
    let fast_takes_original =
        limits.purpose == Purpose::Transcription && fast_transcription_reads(container, &original);
    let keep_for = if fast_takes_original { limits.short } else { limits.max };
    // OVERRUN more than the limit, cut to the measured length below.
    let keep =
        usize::try_from((keep_for + OVERRUN).as_secs()).unwrap_or(usize::MAX).saturating_mul(TARGET_RATE as usize);
    let mut decoder = Decoder::new(&demuxer, head.as_ref())?;
    demuxer.limit_decoding(limits.max + OVERRUN);
    let mut resampler: Option<To16k> = None;
    let mut window: Option<Window> = None;
    let mut decoded = Vec::new();
    let (mut opus_samples, mut end_trim) = (0u64, 0u64);
    let mut silent_run = 0u32;
    while let Some(packet) = demuxer.next_packet()? {
        if codec == Codec::Opus {
            // Only packets that hold audio count (the decoder leaves the others out too).
            opus_samples +=
                u64::from(opus::packet_samples(&packet.data).filter(|_| opus::holds_audio(&packet.data)).unwrap_or(0));
            end_trim = packet.trim_end.get();
        }
        decoded.clear();
        let Some(made) = decoder.decode(&packet, &mut decoded)? else {
            silent_run += 1;
            if silent_run >= SILENT_RUN_LIMIT {
                return Err(AudioError::damaged(
                    container.name(),
                    format!("{SILENT_RUN_LIMIT} packets in a row hold no audio that can be decoded"),
                ));
            }
            continue;
        };
        silent_run = 0;
        let rate = made.rate;
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
        // Room for the output is reserved before the samples are made, never doubled past it.
        resampler.make_room(output.room_for(resampler.output_bytes_after(playable.len()), resampler.most_bytes())?);
        resampler.push(playable);
        if frames_to_duration(resampler.input_frames(), rate) > limits.max + OVERRUN {
            return Err(limits.too_long(None));
        }
        // After the length: stereo 48 kHz past the limit is too long, not too much.
        demuxer.spend_decoded(&made)?;
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
            // The WAV is written beside the samples before they are dropped.
            output.copy(wav::CANONICAL_HEADER_LEN + samples.len() * 2)?;
            wav_payload(Bytes::from(wav::encode(&samples)), destination)
        }
        (_, None) => return Err(limits.too_long(Some(duration))),
    };
    output.release_room();
    Ok(Normalised { container, codec, action: Action::Transcode, duration, payload })
}

/// Whether Azure fast transcription reads this recording as it came: the containers its
/// documentation lists, and of WAV only the plain PCM header.
pub(super) fn fast_transcription_reads(container: Container, bytes: &[u8]) -> bool {
    match container {
        Container::Ogg | Container::WebM | Container::Mp4 | Container::Mp3 | Container::Flac => true,
        Container::Wav => wav::parse(bytes)
            .is_ok_and(|info| info.format == wav::FORMAT_PCM && !info.extensible && !info.data_size_unknown),
        Container::Matroska | Container::Adts => false,
    }
}

pub(super) fn container_content_type(container: Container) -> &'static str {
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

pub(super) fn container_file_name(container: Container) -> &'static str {
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
