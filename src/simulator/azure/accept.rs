//! What Azure's short-audio API accepts, checked as strictly as its documentation reads, and how
//! long what it accepted lasts.
//!
//! The documentation names two formats only: WAV, 16 kHz mono 16-bit PCM, and Ogg/Opus. The
//! simulator refuses anything else with a 400, and measures what it takes from the audio itself
//! (WAV: its samples; Ogg: the final granule position less the pre-skip), so that a recording
//! the service converted wrongly (a 44.1 kHz WAV sent as 16 kHz, an Ogg stream with broken
//! CRCs or granules, 90 s sent to short audio) fails the project's own tests. The checks are
//! written here, apart from the service's `audio` module, so that a bug in one is not hidden by
//! the same bug in the other; only the `ogg` crate's page reader (which verifies CRCs) is shared.

use std::io::Cursor;

use super::TICKS_PER_SECOND;

/// Azure's short-audio API takes at most this much.
pub(super) const MAX_SECONDS: u64 = 60;

pub(super) struct Speech {
    pub ticks: u64,
    pub silent: bool,
}

/// Check `body` against its `Content-Type` as Azure would; the 400's message when it fails.
pub(super) fn short_audio(content_type: Option<&str>, body: &[u8]) -> Result<Speech, String> {
    let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    let parameters: Vec<(&str, &str)> = parts.filter_map(|part| part.split_once('=')).collect();
    let speech = match essence {
        "audio/wav" => {
            let declared = parameters.iter().find(|(name, _)| *name == "samplerate").map(|(_, rate)| *rate);
            wav(body, declared)?
        }
        "audio/ogg" => ogg_opus(body)?,
        _ => return Err("Unsupported audio format: use audio/wav or audio/ogg; codecs=opus".to_string()),
    };
    if speech.ticks > MAX_SECONDS * TICKS_PER_SECOND {
        return Err(format!(
            "Audio longer than {MAX_SECONDS} seconds: {:.1} s (use fast or batch transcription)",
            speech.ticks as f64 / TICKS_PER_SECOND as f64
        ));
    }
    Ok(speech)
}

/// A RIFF/WAVE of 16 kHz mono 16-bit PCM. The data length field is ignored, as Azure does
/// (chunked uploads send a header with length 0): the data runs to the end of the body.
fn wav(body: &[u8], declared_rate: Option<&str>) -> Result<Speech, String> {
    if body.len() < 12 || &body[0..4] != b"RIFF" || &body[8..12] != b"WAVE" {
        return Err("Invalid audio: the body is not a RIFF/WAVE file".to_string());
    }
    let mut fmt: Option<[u8; 16]> = None;
    let mut at = 12usize;
    while let Some(chunk_header) = at.checked_add(8).and_then(|end| body.get(at..end)) {
        let id = &chunk_header[..4];
        let size = u32::from_le_bytes([chunk_header[4], chunk_header[5], chunk_header[6], chunk_header[7]]) as usize;
        let start = at + 8;
        if id == b"data" {
            let fmt = fmt.ok_or("Invalid audio: no fmt chunk before the data")?;
            let field = |at: usize| u16::from_le_bytes([fmt[at], fmt[at + 1]]);
            let (tag, channels, bits) = (field(0), field(2), field(14));
            let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
            if (tag, channels, rate, bits) != (1, 1, 16_000, 16) {
                return Err(format!(
                    "Unsupported audio format: WAV must be 16 kHz mono 16-bit PCM (got format {tag}, {channels} channel(s), {rate} Hz, {bits} bits)"
                ));
            }
            if declared_rate.is_some_and(|declared| declared != "16000") {
                return Err("Invalid audio: the samplerate in Content-Type disagrees with the WAV header".to_string());
            }
            let data = body.get(start..).unwrap_or_default();
            let samples = data.len() as u64 / 2;
            return Ok(Speech {
                ticks: samples * TICKS_PER_SECOND / 16_000,
                silent: data.iter().all(|&byte| byte == 0),
            });
        }
        if id == b"fmt " {
            let chunk = body.get(start..start.saturating_add(16)).ok_or("Invalid audio: the fmt chunk is cut short")?;
            fmt = Some(chunk.try_into().map_err(|_| "Invalid audio: the fmt chunk is cut short")?);
        }
        // Chunks are padded to an even size.
        at = start.saturating_add(size).saturating_add(size & 1);
    }
    Err("Invalid audio: the WAV has no data chunk".to_string())
}

/// An Ogg Opus stream as RFC 7845 lays it out: pages with valid CRCs, `OpusHead` alone on the
/// first, `OpusTags` alone on the second, granule positions that never go back, the last page
/// flagged end of stream, and a final granule no later than the packets' own length.
fn ogg_opus(body: &[u8]) -> Result<Speech, String> {
    let broken = |why: &str| format!("Invalid audio: broken Ogg/Opus stream ({why})");
    let mut reader = ogg::PacketReader::new(Cursor::new(body));
    let mut index = 0usize;
    let (mut pre_skip, mut granule, mut samples, mut ended) = (0u64, 0u64, 0u64, false);
    loop {
        let packet = match reader.read_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(error) => return Err(broken(&error.to_string())),
        };
        if ended {
            return Err(broken("data after the end of the stream"));
        }
        match index {
            0 => {
                let head = &packet.data;
                if head.len() < 19 || &head[..8] != b"OpusHead" || head[8] == 0 || head[8] > 15 {
                    return Err(broken("the first packet is not an OpusHead"));
                }
                if !packet.last_in_page() || !packet.first_in_page() {
                    return Err(broken("OpusHead does not stand alone on its page"));
                }
                pre_skip = u64::from(u16::from_le_bytes([head[10], head[11]]));
            }
            1 => {
                if !packet.data.starts_with(b"OpusTags") || !packet.last_in_page() || !packet.first_in_page() {
                    return Err(broken("the second page is not OpusTags alone"));
                }
            }
            _ => {
                samples += toc_samples(&packet.data).ok_or_else(|| broken("an audio packet has an invalid TOC"))?;
                if packet.last_in_page() {
                    let position = packet.absgp_page();
                    if position < granule {
                        return Err(broken("a granule position goes back"));
                    }
                    granule = position;
                }
                ended = packet.last_in_stream();
            }
        }
        index += 1;
    }
    if index < 3 {
        return Err(broken("no audio packets"));
    }
    if !ended {
        return Err(broken("the last page is not flagged end of stream"));
    }
    if granule > samples {
        return Err(broken("the final granule position promises more audio than the packets hold"));
    }
    let played = granule.saturating_sub(pre_skip);
    Ok(Speech { ticks: played * TICKS_PER_SECOND / 48_000, silent: false })
}

/// 48 kHz samples in one Opus packet (RFC 6716 3.1), written out again here on purpose.
fn toc_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let frames: u64 = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3F),
    };
    (frames > 0 && frames * per_frame <= 5760).then_some(frames * per_frame)
}
