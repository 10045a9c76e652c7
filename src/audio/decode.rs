//! Packets to mono PCM. symphonia decodes AAC-LC, MP3, FLAC, Vorbis, ALAC, ADPCM and PCM;
//! Opus, which symphonia has no decoder for, goes to libopus itself (the `opus` crate, linked
//! statically: the service stays one binary). libopus decodes stereo 48 kHz at several hundred
//! times real time on one core, where the pure-Rust decoder used before managed about five,
//! too slow for a ten-minute recording to finish within the decode deadline. Channels are
//! averaged into one.
//!
//! The rate is the decoder's, not the container's: symphonia's AAC decoder plays HE-AAC's core
//! at half the rate the container announces, and resampling from the announced rate would
//! double the speed of the learner's voice.

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::packet::Packet;

use super::allowance::Decoded;
use super::demux::{Codec, Demuxer};
use super::error::AudioError;
use super::opus::{self, OpusHead};
use super::wav::TARGET_RATE;

/// Opus decodes straight to Azure's rate: the decoder's own band-limited output stage does the
/// resampling, and its output needs no second pass.
const OPUS_OUTPUT_RATE: u32 = TARGET_RATE;
const OPUS_RATE_RATIO: u64 = (opus::RATE / OPUS_OUTPUT_RATE) as u64;
/// The longest packet RFC 6716 allows, 120 ms, at the output rate.
const OPUS_MAX_PACKET_SAMPLES: usize = OPUS_OUTPUT_RATE as usize * 120 / 1000;

pub enum Decoder {
    Symphonia {
        decoder: Box<dyn AudioDecoder>,
        planes: Vec<Vec<f32>>,
        failures: u64,
    },
    Opus {
        decoder: ::opus::Decoder,
        buffer: Vec<f32>,
        /// Output samples of pre-skip still to drop.
        skip: usize,
    },
}

impl Decoder {
    pub fn new(demuxer: &Demuxer, head: Option<&OpusHead>) -> Result<Self, AudioError> {
        let container = demuxer.container.name();
        if demuxer.codec == Codec::Opus {
            let head = head.ok_or_else(|| AudioError::damaged(container, "its Opus header is missing"))?;
            if head.mapping_family != 0 {
                return Err(AudioError::unsupported(format!("multichannel (surround) Opus in a {container} file")));
            }
            // A mono decoder down-mixes a stereo stream itself, and decodes at 16 kHz natively
            // (its band-limited output stage, not a resampler after it).
            let decoder = ::opus::Decoder::new(OPUS_OUTPUT_RATE, ::opus::Channels::Mono).map_err(|error| {
                AudioError::damaged(container, format!("its Opus stream cannot be decoded ({error})"))
            })?;
            let buffer = vec![0.0; OPUS_MAX_PACKET_SAMPLES];
            let skip = usize::from(head.pre_skip) / OPUS_RATE_RATIO as usize;
            return Ok(Self::Opus { decoder, buffer, skip });
        }
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&demuxer.params, &AudioDecoderOptions::default())
            .map_err(|_| {
                AudioError::unsupported(format!(
                    "{} audio in a {container} file",
                    demuxer.codec.as_str().to_uppercase()
                ))
            })?;
        Ok(Self::Symphonia { decoder, planes: Vec::new(), failures: 0 })
    }

    /// Decode one packet, appending its samples, down-mixed to mono, to `out`. `None` when the
    /// packet carried no audio (a damaged packet is skipped, as players do).
    pub fn decode(&mut self, packet: &Packet, out: &mut Vec<f32>) -> Result<Option<Decoded>, AudioError> {
        match self {
            Self::Symphonia { decoder, planes, failures } => {
                let buffer = match decoder.decode(packet) {
                    Ok(buffer) => buffer,
                    Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                        *failures += 1;
                        return Ok(None);
                    }
                    Err(error) => return Err(AudioError::damaged("audio", format!("it cannot be decoded ({error})"))),
                };
                let rate = buffer.spec().rate();
                let channels = buffer.num_planes().max(1);
                buffer.copy_to_vecs_planar::<f32>(planes);
                let frames = buffer.frames();
                let scale = 1.0 / channels as f32;
                out.reserve(frames);
                for frame in 0..frames {
                    let sum: f32 = planes.iter().map(|plane| plane.get(frame).copied().unwrap_or(0.0)).sum();
                    // A float file can hold NaN or infinity, and finite values so large the
                    // resampler's FFT overflows into them (both found by fuzzing: rubato then
                    // panics). Silence is what a player makes of the first, full scale what it
                    // makes of the second; the 16-bit WAV clips there anyway.
                    let mono = sum * scale;
                    out.push(if mono.is_finite() { mono.clamp(-1.0, 1.0) } else { 0.0 });
                }
                let samples = frames as u64 * channels as u64;
                Ok((frames > 0).then_some(Decoded { rate, channels, samples }))
            }
            Self::Opus { decoder, buffer, skip } => {
                // A packet of no audio (empty or one-byte frames) is left out, as the remux
                // leaves it out: the recording is as long as what it holds.
                if !opus::holds_audio(&packet.data) {
                    return Ok(None);
                }
                // libopus checks every packet's structure and answers a malformed one with an
                // error, never a crash. As a player would, the lost packet is concealed rather
                // than the stream shifted; a decoder that cannot even conceal is beyond use.
                let decoded = match decoder.decode_float(&packet.data, buffer, false) {
                    Ok(decoded) => decoded,
                    Err(_) => {
                        // Concealed for as long as its TOC says, which a parsed packet has.
                        let lost =
                            opus::packet_samples(&packet.data).map_or(0, |samples| samples / OPUS_RATE_RATIO as u32);
                        let lost = (lost as usize).min(buffer.len());
                        decoder
                            .decode_float(&[], &mut buffer[..lost], false)
                            .map_err(|_| AudioError::damaged("Opus", "a packet of its stream cannot be decoded"))?
                    }
                };
                let decoded = decoded.min(buffer.len());
                let dropped = decoded.min(*skip);
                *skip -= dropped;
                out.extend_from_slice(&buffer[dropped..decoded]);
                // libopus makes the mono 16 kHz samples themselves, whatever the stream's channels.
                Ok(Some(Decoded { rate: OPUS_OUTPUT_RATE, channels: 1, samples: decoded as u64 }))
            }
        }
    }

    /// Packets the decoder could not read.
    pub fn failures(&self) -> u64 {
        match self {
            Self::Symphonia { failures, .. } => *failures,
            Self::Opus { .. } => 0,
        }
    }

    /// Samples at the output rate that `samples_48k` of Opus time make (Opus only).
    pub fn opus_output_samples(samples_48k: u64) -> u64 {
        samples_48k / OPUS_RATE_RATIO
    }
}
