//! Stereo 48 kHz Ogg/Opus recordings of any length, encoded here by libopus from the speech
//! fixture (the right channel 6 dB quieter), so no long recording needs to be committed.
#![allow(dead_code)] // each test binary uses a different part of this

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

const SERIAL: u32 = 0x7465_7374;
/// 20 ms at 48 kHz.
const FRAME: usize = 960;
const PRE_SKIP: u16 = 312;

/// `seconds` of the speech fixture, over and over, as stereo Opus at `kbps` in Ogg (RFC 7845):
/// the final granule position trims the last packet so that it plays for exactly that long.
pub fn stereo_ogg_opus(seconds: f64, kbps: i32) -> Vec<u8> {
    let played = (seconds * 48_000.0).round() as u64;
    let last_granule = played + u64::from(PRE_SKIP);
    let speech = speech_48k();
    let mut encoder = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Voip).expect("encoder");
    encoder.set_bitrate(opus::Bitrate::Bits(kbps * 1000)).expect("bitrate");
    let frames = last_granule.div_ceil(FRAME as u64) as usize;
    let mut pages = PacketWriter::new(Vec::new());
    let mut head = b"OpusHead\x01\x02".to_vec();
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    pages.write_packet(head, SERIAL, PacketWriteEndInfo::EndPage, 0).expect("head");
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&4u32.to_le_bytes());
    tags.extend_from_slice(b"test");
    tags.extend_from_slice(&0u32.to_le_bytes());
    pages.write_packet(tags, SERIAL, PacketWriteEndInfo::EndPage, 0).expect("tags");
    let mut input = vec![0i16; FRAME * 2];
    let mut packet = vec![0u8; 4000];
    for frame in 0..frames {
        for (i, pair) in input.chunks_exact_mut(2).enumerate() {
            let sample = speech[(frame * FRAME + i) % speech.len()];
            pair[0] = sample;
            pair[1] = sample / 2;
        }
        let size = encoder.encode(&input, &mut packet).expect("encoded");
        let end = if frame + 1 == frames {
            PacketWriteEndInfo::EndStream
        } else if frame % 50 == 49 {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        let granule = (((frame + 1) * FRAME) as u64).min(last_granule);
        pages.write_packet(packet[..size].to_vec(), SERIAL, end, granule).expect("packet");
    }
    pages.into_inner()
}

/// The samples of `speech-48k.wav` (48 kHz mono 16-bit).
fn speech_48k() -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio/speech-48k.wav");
    let wav = std::fs::read(&path).expect("speech-48k.wav");
    let data = wav.windows(4).position(|window| window == b"data").expect("a data chunk") + 8;
    wav[data..].chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect()
}
