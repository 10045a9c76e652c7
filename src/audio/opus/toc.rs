//! How many 48 kHz samples an Opus packet holds, from its first bytes (RFC 6716, section 3.1).
//! Durations of Opus audio come from here, never from a container's claims: the container may
//! say nothing (MediaRecorder's live WebM has no Duration) or something wrong.

/// Samples at 48 kHz in one packet, or `None` for a packet RFC 6716 forbids (empty, a frame
/// count of zero, more than 120 ms).
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    let samples = frames * frame_samples(toc >> 3);
    // A packet carries at most 120 ms (5760 samples), and at least one frame.
    (frames > 0 && samples <= 5760).then_some(samples)
}

/// Whether a packet holds any audio: some frame of at least two bytes. libopus decodes a frame
/// of zero or one byte as a lost one (DTX, or the gap a sender left), concealing it, so a
/// stream of them plays for as long as its TOCs claim while holding nothing: 600 s of such
/// packets fit in 15 KB. The frames are found by libopus's own parser (RFC 6716, 3.2); a
/// packet it cannot parse holds nothing either.
pub fn holds_audio(packet: &[u8]) -> bool {
    ::opus::packet::parse(packet).is_ok_and(|parsed| parsed.frames.iter().any(|frame| frame.len() > 1))
}

/// Samples per frame of a TOC configuration number (RFC 6716, table 2).
fn frame_samples(config: u8) -> u32 {
    match config {
        // SILK-only: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms.
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_packets_last_their_configurations_frame() {
        // Config 1 (SILK NB 20 ms), code 0: what libopus sends for 20 ms speech at low rates.
        assert_eq!(packet_samples(&[0x08]), Some(960));
        // Config 31 (CELT FB 20 ms), code 0.
        assert_eq!(packet_samples(&[0xF8, 0xFF]), Some(960));
        // Config 16 (CELT NB 2.5 ms).
        assert_eq!(packet_samples(&[0x80]), Some(120));
        // Config 3 (SILK NB 60 ms).
        assert_eq!(packet_samples(&[0x18]), Some(2880));
    }

    #[test]
    fn two_frame_and_counted_packets_multiply() {
        assert_eq!(packet_samples(&[0x09]), Some(1920), "code 1: two equal frames");
        assert_eq!(packet_samples(&[0x0A, 0x10]), Some(1920), "code 2: two frames of any size");
        assert_eq!(packet_samples(&[0x0B, 0x03]), Some(2880), "code 3: three 20 ms frames");
        assert_eq!(packet_samples(&[0x1B, 0x02]), Some(5760), "two 60 ms frames: the 120 ms maximum");
    }

    #[test]
    fn only_frames_of_two_bytes_or_more_hold_audio() {
        assert!(holds_audio(&[0xF8, 0x01, 0x02]), "one 2-byte CELT frame");
        assert!(!holds_audio(&[0xF8]), "a TOC alone: DTX");
        assert!(!holds_audio(&[0xF8, 0x01]), "a 1-byte frame is concealed as lost");
        assert!(!holds_audio(&[0xFB, 0x06]), "six empty frames: 120 ms claimed by two bytes");
        assert!(holds_audio(&[0xFB, 0x02, 0x01, 0x02, 0x03, 0x04]), "two frames of two bytes");
        assert!(!holds_audio(&[0xFB, 0x00]), "no frames");
        assert!(!holds_audio(&[]));
    }

    #[test]
    fn packets_rfc_6716_forbids_have_no_length() {
        assert_eq!(packet_samples(&[]), None);
        assert_eq!(packet_samples(&[0x0B]), None, "code 3 without its count byte");
        assert_eq!(packet_samples(&[0x0B, 0x00]), None, "zero frames");
        assert_eq!(packet_samples(&[0x0B, 0x07]), None, "7 x 20 ms is over 120 ms");
    }
}
