//! How long the audio the simulator received lasts, and whether it is silent.

use super::{DEFAULT_WAV_BYTE_RATE, TICKS_PER_SECOND};

pub(super) struct Speech {
    pub ticks: u64,
    pub silent: bool,
}

/// Duration and silence from the RIFF chunks. The data length field is ignored, as Azure does
/// (chunked uploads send a header with length 0): the data runs to the end of the body.
pub(super) fn wav_speech(body: &[u8]) -> Speech {
    let mut byte_rate = 0u64;
    let mut bits_per_sample = 16u16;
    let mut data: &[u8] = &[];
    let mut at = 12usize;
    while let Some(chunk_header) = at.checked_add(8).and_then(|end| body.get(at..end)) {
        let id = &chunk_header[..4];
        let size = u32::from_le_bytes([chunk_header[4], chunk_header[5], chunk_header[6], chunk_header[7]]) as usize;
        let start = at + 8;
        if id == b"data" {
            data = body.get(start..).unwrap_or_default();
            break;
        }
        if id == b"fmt "
            && let Some(fmt) = start.checked_add(16).and_then(|end| body.get(start..end))
        {
            byte_rate = u32::from_le_bytes([fmt[8], fmt[9], fmt[10], fmt[11]]) as u64;
            bits_per_sample = u16::from_le_bytes([fmt[14], fmt[15]]);
        }
        // Chunks are padded to an even size.
        at = start.saturating_add(size).saturating_add(size & 1);
    }
    let byte_rate = if byte_rate == 0 { DEFAULT_WAV_BYTE_RATE } else { byte_rate };
    // 8-bit PCM is unsigned: its silence is 0x80, wider samples' silence is 0.
    let silence = if bits_per_sample == 8 { 0x80 } else { 0 };
    Speech { ticks: data.len() as u64 * TICKS_PER_SECOND / byte_rate, silent: data.iter().all(|&byte| byte == silence) }
}
