//! The Opus identification header (RFC 7845, section 5.1) and the comment header that must
//! follow it in an Ogg stream.
//!
//! Containers hand it over in two shapes. WebM's CodecPrivate and Ogg's first packet are the
//! header itself, little-endian. MP4 stores a `dOps` box instead (the Opus-in-ISOBMFF
//! encapsulation): the same fields, version 0, and **big-endian**. The demuxer puts the box's
//! body behind an `OpusHead` magic without converting it, so a pre-skip of 312 read naively
//! comes out as 14337 and the learner's first 300 ms vanish. The version byte tells the two
//! apart: 0 in `dOps`, 1 in `OpusHead`.

use crate::audio::error::AudioError;

const MAGIC: &[u8; 8] = b"OpusHead";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    /// 48 kHz samples to drop at the start of decoding.
    pub pre_skip: u16,
    /// The rate the encoder was fed: informational only, Opus always decodes at 48 kHz.
    pub input_rate: u32,
    /// Q7.8 dB.
    pub output_gain: i16,
    pub mapping_family: u8,
    /// Stream count, coupled count and channel mapping, for mapping families other than 0.
    pub mapping: Vec<u8>,
}

impl OpusHead {
    /// Read what a demuxer calls the codec's extra data (`OpusHead`, or `OpusHead` + `dOps`).
    pub fn parse(extra: &[u8], container: &'static str) -> Result<Self, AudioError> {
        let damaged = |reason: &str| AudioError::damaged(container, reason);
        let body = extra.strip_prefix(MAGIC.as_slice()).ok_or_else(|| damaged("its Opus header is missing"))?;
        if body.len() < 11 {
            return Err(damaged("its Opus header is cut short"));
        }
        let version = body[0];
        let big_endian = version == 0;
        let u16_at = |at: usize| {
            let pair = [body[at], body[at + 1]];
            if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
        };
        let rate = [body[4], body[5], body[6], body[7]];
        let head = Self {
            channels: body[1],
            pre_skip: u16_at(2),
            input_rate: if big_endian { u32::from_be_bytes(rate) } else { u32::from_le_bytes(rate) },
            output_gain: u16_at(8) as i16,
            mapping_family: body[10],
            mapping: body[11..].to_vec(),
        };
        // Versions 1 to 15 are compatible with this layout (RFC 7845 5.1, "version").
        if version > 15 {
            return Err(damaged("its Opus header has an unknown version"));
        }
        if head.channels == 0 {
            return Err(damaged("its Opus header gives no channels"));
        }
        if head.mapping_family != 0 && head.mapping.len() < 2 + usize::from(head.channels) {
            return Err(damaged("its Opus channel mapping is cut short"));
        }
        Ok(head)
    }

    /// The header as the first packet of an Ogg Opus stream (RFC 7845: little-endian, version 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(19 + self.mapping.len());
        bytes.extend_from_slice(MAGIC);
        bytes.push(1);
        bytes.push(self.channels);
        bytes.extend_from_slice(&self.pre_skip.to_le_bytes());
        bytes.extend_from_slice(&self.input_rate.to_le_bytes());
        bytes.extend_from_slice(&self.output_gain.to_le_bytes());
        bytes.push(self.mapping_family);
        if self.mapping_family != 0 {
            bytes.extend_from_slice(&self.mapping);
        }
        bytes
    }
}

/// The comment header (RFC 7845, section 5.2): a vendor string and no comments. The learner's
/// device name or app, which the source's tags may carry, stays here.
pub fn opus_tags() -> Vec<u8> {
    const VENDOR: &[u8] = concat!("backend-ai ", env!("CARGO_PKG_VERSION")).as_bytes();
    let mut bytes = Vec::with_capacity(16 + VENDOR.len());
    bytes.extend_from_slice(b"OpusTags");
    bytes.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    bytes.extend_from_slice(VENDOR);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webm_and_ogg_headers_are_read_little_endian() {
        // What ffmpeg and Chrome write: version 1, mono, pre-skip 312, 48 kHz.
        let extra = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
        let head = OpusHead::parse(extra, "WebM").expect("valid");
        assert_eq!((head.channels, head.pre_skip, head.input_rate), (1, 312, 48_000));
        assert_eq!(head.to_bytes(), extra.to_vec());
    }

    #[test]
    fn an_mp4_dops_box_is_read_big_endian() {
        // ffmpeg's `-f mp4` Opus, as the demuxer hands it over: OpusHead + the dOps body.
        let extra = b"OpusHead\x00\x01\x01\x38\x00\x00\xbb\x80\x00\x00\x00";
        let head = OpusHead::parse(extra, "MP4").expect("valid");
        assert_eq!((head.channels, head.pre_skip, head.input_rate), (1, 312, 48_000));
        // Re-written as RFC 7845 wants it in Ogg.
        assert_eq!(head.to_bytes(), b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00".to_vec());
    }

    #[test]
    fn broken_headers_are_damage_not_a_panic() {
        for extra in [
            &b""[..],
            b"OpusHead",
            b"OpusHead\x01\x01\x38",
            b"NotOpus!\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
            b"OpusHead\x01\x00\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
            b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x01",
            b"OpusHead\x20\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
        ] {
            assert!(OpusHead::parse(extra, "WebM").is_err(), "{extra:?}");
        }
    }

    #[test]
    fn the_comment_header_has_a_vendor_and_no_comments() {
        let tags = opus_tags();
        assert!(tags.starts_with(b"OpusTags"));
        let vendor_len = u32::from_le_bytes([tags[8], tags[9], tags[10], tags[11]]) as usize;
        assert_eq!(&tags[12 + vendor_len..], &[0, 0, 0, 0]);
    }
}
