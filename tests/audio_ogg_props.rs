//! The Ogg/Opus writer against any packets: every packet that holds audio comes out, in order
//! and unchanged, and the others (frames of 0 or 1 byte, or framing libopus refuses) are left out,
//! with valid CRCs (recomputed by hand), headers alone on their pages, granule positions that
//! never go back and a final one that is the kept packets' length less the trim. A stream with no
//! packet that holds audio is refused.

#[path = "support/audio_checks.rs"]
mod checks;

use backend_ai::audio::ogg_opus;
use backend_ai::audio::opus::{OpusHead, holds_audio, packet_samples};
use proptest::prelude::*;

/// An Opus packet: a valid TOC byte (any configuration, one or two frames) and any payload,
/// now and then longer than one page's 255 x 255 bytes.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    let toc = (0u8..32, 0u8..3).prop_map(|(config, code)| (config << 3) | code);
    let length = prop_oneof![8 => 0usize..1500, 1 => 60_000usize..70_000];
    (toc, length, any::<u8>()).prop_map(|(toc, length, seed)| {
        std::iter::once(toc).chain((0..length).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn packets_round_trip_and_granules_never_go_back(
        packets in proptest::collection::vec(packet(), 1..120),
        pre_skip in 0u16..4000,
        trim in 0u64..2000,
    ) {
        let head = OpusHead { channels: 1, pre_skip, input_rate: 48_000, output_gain: 0, mapping_family: 0, mapping: vec![] };
        let written = ogg_opus::write(&head, packets.iter().map(Vec::as_slice), trim, "test");
        let packets: Vec<Vec<u8>> = packets.into_iter().filter(|packet| holds_audio(packet)).collect();
        if packets.is_empty() {
            prop_assert!(written.is_err(), "a stream of packets without audio is refused");
            return Ok(());
        }
        let ogg = written.expect("written");
        let sent = checks::ogg_packets(&ogg.bytes).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&sent.packets, &packets);
        prop_assert_eq!(sent.pre_skip, pre_skip);
        let total: u64 = packets.iter().map(|packet| u64::from(packet_samples(packet).expect("valid TOC"))).sum();
        // The trim cuts into the last packet only, and never ends before the pre-skip.
        let before_last = total - u64::from(packet_samples(packets.last().expect("one")).expect("valid"));
        let expected = total.saturating_sub(trim).max(before_last).max(u64::from(pre_skip));
        prop_assert_eq!(sent.final_granule, expected);
        prop_assert_eq!(ogg.played_samples, sent.final_granule - u64::from(pre_skip));
    }
}
