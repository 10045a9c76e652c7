//! RIFF/WAVE: reading the header of what was uploaded, and writing the one header Azure's
//! short-audio API documents (16 kHz, mono, 16-bit PCM).
//!
//! Read by hand rather than through the decoder because two answers come from the header alone:
//! whether the file can go to Azure exactly as it came, and where its samples really end.
//! Streaming writers (MediaRecorder polyfills, phone apps that record straight to disk) leave
//! the RIFF and `data` sizes at 0 or 0xFFFFFFFF; the samples then run to the end of the file.

use super::error::AudioError;

pub const FORMAT_PCM: u16 = 0x0001;
pub const FORMAT_IEEE_FLOAT: u16 = 0x0003;
pub const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// The length of the canonical header [`header`] writes.
pub const CANONICAL_HEADER_LEN: usize = 44;
/// Azure's rate.
pub const TARGET_RATE: u32 = 16_000;

/// What the `fmt ` chunk says and where the samples are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavInfo {
    /// The format tag, with WAVE_FORMAT_EXTENSIBLE resolved to its sub-format.
    pub format: u16,
    /// Whether the header is WAVE_FORMAT_EXTENSIBLE (Azure documents only the plain header).
    pub extensible: bool,
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    pub block_align: u16,
    /// Byte range of the sample data in the file.
    pub data: std::ops::Range<usize>,
    /// The `data` size field disagreed with the file (0, 0xFFFFFFFF or past the end).
    pub data_size_unknown: bool,
}

impl WavInfo {
    /// Exactly what Azure documents, so the file may go as it came.
    pub fn is_azure_native(&self) -> bool {
        self.format == FORMAT_PCM
            && !self.extensible
            && self.channels == 1
            && self.sample_rate == TARGET_RATE
            && self.bits_per_sample == 16
            && self.block_align == 2
    }

    /// Whole frames of sample data.
    pub fn frames(&self) -> u64 {
        (self.data.len() / usize::from(self.block_align.max(1))) as u64
    }
}

/// Parse the header of a RIFF/WAVE file. Only the structure is checked here; whether the
/// format is one the decoder knows is its business.
pub fn parse(bytes: &[u8]) -> Result<WavInfo, AudioError> {
    let damaged = |reason: &str| AudioError::damaged("WAV", reason);
    let mut at = 12usize;
    let mut fmt: Option<(u16, bool, u16, u32, u16, u16)> = None;
    while let Some(chunk) = bytes.get(at..at.saturating_add(8)) {
        let id = &chunk[..4];
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        let start = at + 8;
        if id == b"data" {
            let (format, extensible, channels, sample_rate, bits_per_sample, block_align) =
                fmt.ok_or_else(|| damaged("the sample data comes before the format (no fmt chunk)"))?;
            let declared = usize::try_from(size).unwrap_or(usize::MAX);
            let end = start.saturating_add(declared);
            let data_size_unknown = size == 0 || size == u32::MAX || end > bytes.len();
            let end = if data_size_unknown { bytes.len() } else { end };
            return Ok(WavInfo {
                format,
                extensible,
                channels,
                sample_rate,
                bits_per_sample,
                block_align,
                data: start..end,
                data_size_unknown,
            });
        }
        if id == b"fmt " {
            fmt = Some(read_fmt(bytes.get(start..start.saturating_add(size as usize)).unwrap_or_default())?);
        }
        // Chunks are padded to an even length.
        at = start.saturating_add(size as usize).saturating_add(size as usize & 1);
    }
    Err(damaged(if fmt.is_some() { "there is no data chunk" } else { "there is no fmt chunk" }))
}

fn read_fmt(chunk: &[u8]) -> Result<(u16, bool, u16, u32, u16, u16), AudioError> {
    let damaged = |reason: &str| AudioError::damaged("WAV", reason);
    if chunk.len() < 16 {
        return Err(damaged("its fmt chunk is shorter than 16 bytes"));
    }
    let u16_at = |at: usize| u16::from_le_bytes([chunk[at], chunk[at + 1]]);
    let tag = u16_at(0);
    let channels = u16_at(2);
    let sample_rate = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
    let block_align = u16_at(12);
    let bits_per_sample = u16_at(14);
    let (format, extensible) = if tag == FORMAT_EXTENSIBLE {
        // cbSize, valid bits, channel mask, then the sub-format GUID whose first two bytes are
        // the format tag it stands for.
        let sub_format = chunk.get(24..26).ok_or_else(|| damaged("its extensible fmt chunk has no sub-format"))?;
        (u16::from_le_bytes([sub_format[0], sub_format[1]]), true)
    } else {
        (tag, false)
    };
    if channels == 0 || sample_rate == 0 || block_align == 0 {
        return Err(damaged("its fmt chunk gives no channels, rate or block size"));
    }
    Ok((format, extensible, channels, sample_rate, bits_per_sample, block_align))
}

/// The canonical 44-byte header of a 16 kHz, mono, 16-bit PCM file with `frames` samples.
pub fn header(frames: usize) -> [u8; CANONICAL_HEADER_LEN] {
    let data_len = u32::try_from(frames.saturating_mul(2)).unwrap_or(u32::MAX - 36);
    let mut header = [0u8; CANONICAL_HEADER_LEN];
    header[0..4].copy_from_slice(b"RIFF");
    header[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    header[8..16].copy_from_slice(b"WAVEfmt ");
    header[16..20].copy_from_slice(&16u32.to_le_bytes());
    header[20..22].copy_from_slice(&FORMAT_PCM.to_le_bytes());
    header[22..24].copy_from_slice(&1u16.to_le_bytes());
    header[24..28].copy_from_slice(&TARGET_RATE.to_le_bytes());
    header[28..32].copy_from_slice(&(TARGET_RATE * 2).to_le_bytes());
    header[32..34].copy_from_slice(&2u16.to_le_bytes());
    header[34..36].copy_from_slice(&16u16.to_le_bytes());
    header[36..40].copy_from_slice(b"data");
    header[40..44].copy_from_slice(&data_len.to_le_bytes());
    header
}

/// A whole 16 kHz mono 16-bit PCM file of `samples`.
pub fn encode(samples: &[i16]) -> Vec<u8> {
    let mut file = Vec::with_capacity(CANONICAL_HEADER_LEN + samples.len() * 2);
    file.extend_from_slice(&header(samples.len()));
    for sample in samples {
        file.extend_from_slice(&sample.to_le_bytes());
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(samples: usize) -> Vec<u8> {
        encode(&vec![100i16; samples])
    }

    #[test]
    fn the_canonical_header_is_azure_native_and_counts_its_samples() {
        let info = parse(&canonical(1600)).expect("valid");
        assert!(info.is_azure_native());
        assert_eq!(info.frames(), 1600);
        assert_eq!(info.data, 44..44 + 3200);
        assert!(!info.data_size_unknown);
    }

    #[test]
    fn a_streaming_writers_size_fields_mean_the_samples_run_to_the_end() {
        for size in [0u32, u32::MAX] {
            let mut file = canonical(800);
            file[4..8].copy_from_slice(&size.to_le_bytes());
            file[40..44].copy_from_slice(&size.to_le_bytes());
            let info = parse(&file).expect("valid");
            assert!(info.data_size_unknown, "{size:#x}");
            assert_eq!(info.frames(), 800, "{size:#x}");
        }
    }

    #[test]
    fn an_extensible_header_resolves_to_its_sub_format_and_is_not_native() {
        let mut file = b"RIFF\0\0\0\0WAVEfmt \x28\0\0\0".to_vec();
        file.extend_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
        file.extend_from_slice(&1u16.to_le_bytes());
        file.extend_from_slice(&16_000u32.to_le_bytes());
        file.extend_from_slice(&32_000u32.to_le_bytes());
        file.extend_from_slice(&2u16.to_le_bytes());
        file.extend_from_slice(&16u16.to_le_bytes());
        file.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        file.extend_from_slice(&16u16.to_le_bytes()); // valid bits
        file.extend_from_slice(&4u32.to_le_bytes()); // channel mask
        file.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
        file.extend_from_slice(b"data\x04\0\0\0\x01\0\x02\0");
        let info = parse(&file).expect("valid");
        assert_eq!(info.format, FORMAT_PCM);
        assert!(info.extensible && !info.is_azure_native());
        assert_eq!(info.frames(), 2);
    }

    #[test]
    fn other_rates_widths_and_channel_counts_are_not_native() {
        for (at, value) in [(22usize, 2u16), (34, 24), (34, 8)] {
            let mut file = canonical(10);
            file[at..at + 2].copy_from_slice(&value.to_le_bytes());
            assert!(!parse(&file).expect("valid").is_azure_native(), "byte {at} = {value}");
        }
        let mut file = canonical(10);
        file[24..28].copy_from_slice(&44_100u32.to_le_bytes());
        assert!(!parse(&file).expect("valid").is_azure_native());
    }

    #[test]
    fn a_header_without_format_or_data_is_damaged() {
        assert!(parse(b"RIFF\0\0\0\0WAVE").is_err());
        assert!(parse(b"RIFF\0\0\0\0WAVEdata\x02\0\0\0\0\0").is_err());
        let mut no_data = canonical(4);
        no_data.truncate(36);
        assert!(parse(&no_data).is_err());
        let mut zero_channels = canonical(4);
        zero_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
        assert!(parse(&zero_channels).is_err());
    }
}
