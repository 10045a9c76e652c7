//! Recordings that need no decoding: a native WAV as it came (or with its size fields made
//! true), and mono Opus re-packaged into Ogg packet for packet.

use std::time::Duration;

use bytes::Bytes;

use super::{Action, Limits, Normalised, OGG_OPUS_CONTENT_TYPE, OVERRUN, Payload, opus_end_trim, wav_payload};
use crate::audio::demux::{Codec, Demuxer};
use crate::audio::detect::Container;
use crate::audio::error::AudioError;
use crate::audio::ogg_opus;
use crate::audio::opus::{self, OpusHead};
use crate::audio::wav::{self, TARGET_RATE, WavInfo};

/// Already what Azure documents: as it came, or with its size fields made true.
pub(super) fn native_wav(bytes: Bytes, info: &WavInfo, limits: &Limits) -> Result<Normalised, AudioError> {
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
pub(super) fn with_sizes(bytes: &Bytes, info: &WavInfo) -> Bytes {
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

/// Mono Opus, packet for packet, into Ogg.
pub(super) fn remux(mut demuxer: Demuxer, head: &OpusHead, limits: &Limits) -> Result<Normalised, AudioError> {
    let container = demuxer.container;
    let mut writer = ogg_opus::Writer::new(head, container.name())?;
    let mut end_trim = 0;
    while let Some(packet) = demuxer.next_packet()? {
        writer.push(&packet.data)?;
        end_trim = packet.trim_end.get();
        let so_far =
            Duration::from_secs_f64(writer.samples().saturating_sub(u64::from(head.pre_skip)) as f64 / 48_000.0);
        if so_far > limits.max + OVERRUN {
            return Err(limits.too_long(None));
        }
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
