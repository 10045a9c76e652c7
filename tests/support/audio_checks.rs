//! Reading the audio fixtures, and judging what the service would send Azure for them. The
//! checks are written here, not taken from the service's `audio` module, so a bug there is not
//! hidden by the same bug in the check; the Ogg page reader (the `ogg` crate) and the Opus
//! decoder are shared, the CRC is recomputed here.
#![allow(dead_code)] // each test binary uses a different part of this

use std::io::Cursor;
use std::path::PathBuf;

use bytes::Bytes;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

pub fn read_fixture(name: &str) -> Bytes {
    let path = fixture_dir().join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display())))
}

/// One row of `fixtures.json`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub file: String,
    pub codec: String,
    pub channels: u64,
    pub duration_ms: f64,
    pub tolerance_ms: f64,
    source: String,
    span: Option<(f64, f64)>,
}

impl Fixture {
    /// The stretch of `speech-16k.wav` this recording holds, when it was made from it.
    pub fn reference_span(&self) -> Option<(f64, f64)> {
        if !(self.source.starts_with("speech-") || self.source == "espeak-ng") {
            return None;
        }
        // The browser recordings hold the whole speech, a little late and with silence after.
        Some(self.span.unwrap_or((0.0, 2800.0)))
    }
}

pub fn fixtures() -> Vec<Fixture> {
    let text = std::fs::read_to_string(fixture_dir().join("fixtures.json")).expect("fixtures.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixtures.json is JSON");
    json["fixtures"]
        .as_array()
        .expect("a fixtures array")
        .iter()
        .map(|row| Fixture {
            file: row["file"].as_str().expect("file").to_string(),
            codec: row["codec"].as_str().expect("codec").to_string(),
            channels: row["channels"].as_u64().expect("channels"),
            duration_ms: row["duration_ms"].as_f64().expect("duration_ms"),
            tolerance_ms: row["tolerance_ms"].as_f64().expect("tolerance_ms"),
            source: row["source"].as_str().unwrap_or_default().to_string(),
            span: row["source_span_ms"]
                .as_array()
                .map(|span| (span[0].as_f64().unwrap_or(0.0), span[1].as_f64().unwrap_or(0.0))),
        })
        .collect()
}

/// The samples of a WAV that is exactly what Azure documents: canonical 44-byte header, PCM,
/// mono, 16 kHz, 16-bit, and size fields that match the file.
pub fn wav_16k_mono_samples(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if bytes.len() < 44 || &bytes[0..4] != b"RIFF" || &bytes[8..16] != b"WAVEfmt " || &bytes[36..40] != b"data" {
        return Err("not a canonical RIFF/WAVE header".into());
    }
    let fmt = (u32_at(16), u16_at(20), u16_at(22), u32_at(24), u32_at(28), u16_at(32), u16_at(34));
    if fmt != (16, 1, 1, 16_000, 32_000, 2, 16) {
        return Err(format!("fmt is not 16 kHz mono 16-bit PCM: {fmt:?}"));
    }
    if u32_at(4) as usize != bytes.len() - 8 || u32_at(40) as usize != bytes.len() - 44 {
        return Err("the size fields disagree with the file".into());
    }
    Ok(bytes[44..].chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect())
}

/// An Ogg Opus stream as sent, after checking its layout.
pub struct SentOgg {
    pub packets: Vec<Vec<u8>>,
    pub pre_skip: u16,
    pub channels: u8,
    pub final_granule: u64,
}

pub fn ogg_packets(bytes: &[u8]) -> Result<SentOgg, String> {
    check_page_crcs(bytes)?;
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let mut all = Vec::new();
    while let Some(packet) = reader.read_packet().map_err(|error| format!("unreadable Ogg: {error}"))? {
        all.push(packet);
    }
    if all.len() < 3 {
        return Err("fewer than three packets".into());
    }
    let (head, tags) = (&all[0], &all[1]);
    if !head.data.starts_with(b"OpusHead") || head.data[8] != 1 || !(head.first_in_page() && head.last_in_page()) {
        return Err("OpusHead is not a version-1 header alone on the first page".into());
    }
    if !(tags.data.starts_with(b"OpusTags") && tags.first_in_page() && tags.last_in_page()) {
        return Err("OpusTags is not alone on the second page".into());
    }
    let mut granule = 0;
    for packet in all[2..].iter().filter(|packet| packet.last_in_page()) {
        if packet.absgp_page() < granule {
            return Err("a granule position goes back".into());
        }
        granule = packet.absgp_page();
    }
    if !all.last().is_some_and(|last| last.last_in_stream()) {
        return Err("the last page is not flagged end of stream".into());
    }
    Ok(SentOgg {
        pre_skip: u16::from_le_bytes([head.data[10], head.data[11]]),
        channels: head.data[9],
        final_granule: granule,
        packets: all[2..].iter().map(|packet| packet.data.clone()).collect(),
    })
}

/// Every page's CRC-32 (polynomial 0x04C11DB7, not reflected, as RFC 3533 says), by hand.
fn check_page_crcs(bytes: &[u8]) -> Result<(), String> {
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + 27).ok_or("a page header is cut short")?;
        if &header[..4] != b"OggS" {
            return Err(format!("no page at byte {at}"));
        }
        let segments = usize::from(header[26]);
        let table = bytes.get(at + 27..at + 27 + segments).ok_or("a segment table is cut short")?;
        let length = 27 + segments + table.iter().map(|&size| usize::from(size)).sum::<usize>();
        let page = bytes.get(at..at + length).ok_or("a page is cut short")?;
        let stored = u32::from_le_bytes([page[22], page[23], page[24], page[25]]);
        let mut zeroed = page.to_vec();
        zeroed[22..26].fill(0);
        let computed = zeroed.iter().fold(0u32, |crc, &byte| {
            let mut crc = crc ^ (u32::from(byte) << 24);
            for _ in 0..8 {
                crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
            }
            crc
        });
        if computed != stored {
            return Err(format!("page at byte {at}: CRC {stored:#x}, computed {computed:#x}"));
        }
        at += length;
    }
    Ok(())
}

/// The packets of a recording's audio track, as its container holds them.
pub fn source_packets(bytes: &Bytes) -> Vec<Vec<u8>> {
    let (mut reader, track) = open(bytes);
    let mut packets = Vec::new();
    while let Ok(Some(packet)) = reader.next_packet() {
        if packet.track_id == track {
            packets.push(packet.data.to_vec());
        }
    }
    packets
}

fn open(bytes: &Bytes) -> (Box<dyn symphonia::core::formats::FormatReader>, u32) {
    use symphonia::core::formats::probe::Hint;
    let source = symphonia::core::io::MediaSourceStream::new(Box::new(Cursor::new(bytes.clone())), Default::default());
    let reader = symphonia::default::get_probe()
        .probe(&Hint::new(), source, Default::default(), Default::default())
        .expect("a readable container");
    let track = reader.default_track(symphonia::core::formats::TrackType::Audio).expect("an audio track").id;
    (reader, track)
}

/// 16 kHz mono samples of a sent Ogg Opus stream, as a player outputs them.
pub fn decode_opus(sent: &SentOgg) -> Vec<i16> {
    let mut decoder = opus::Decoder::new(16_000, opus::Channels::Mono).expect("decoder");
    let mut out = Vec::new();
    let mut buffer = vec![0i16; 1920];
    for packet in &sent.packets {
        let decoded = decoder.decode(packet, &mut buffer, false).expect("a decodable packet");
        out.extend_from_slice(&buffer[..decoded]);
    }
    let start = usize::from(sent.pre_skip) / 3;
    let end = (sent.final_granule / 3) as usize;
    out[start.min(out.len())..end.min(out.len())].to_vec()
}

/// Loudness, 20 ms at a time, of `speech-16k.wav`.
pub fn reference_envelope() -> Vec<f64> {
    envelope(&wav_16k_mono_samples(&read_fixture("speech-16k.wav")).expect("the reference"))
}

fn envelope(samples: &[i16]) -> Vec<f64> {
    samples
        .chunks(320)
        .map(|window| (window.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 320.0).sqrt())
        .collect()
}

/// How well the loudness of `samples` follows `reference` over `span` (ms): the best Pearson
/// correlation over shifts of up to 100 ms either way (codecs and microphones add delay).
pub fn envelope_correlation(reference: &[f64], span: (f64, f64), samples: &[i16]) -> f64 {
    let (start, end) = ((span.0 / 20.0) as usize, ((span.1 / 20.0) as usize).min(reference.len()));
    let reference = &reference[start..end];
    let sent = envelope(samples);
    (-5i64..=5)
        .filter_map(|shift| {
            let pairs: Vec<(f64, f64)> = (0..reference.len())
                .filter_map(|index| {
                    let other = usize::try_from(index as i64 + shift).ok()?;
                    Some((reference[index], *sent.get(other)?))
                })
                .collect();
            pearson(&pairs)
        })
        .fold(f64::MIN, f64::max)
}

fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 5 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mean_a, mean_b) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
    let cov: f64 = pairs.iter().map(|(a, b)| (a - mean_a) * (b - mean_b)).sum();
    let (var_a, var_b): (f64, f64) =
        pairs.iter().fold((0.0, 0.0), |(va, vb), (a, b)| (va + (a - mean_a).powi(2), vb + (b - mean_b).powi(2)));
    (var_a > 0.0 && var_b > 0.0).then(|| cov / (var_a.sqrt() * var_b.sqrt()))
}

/// A recording's Opus packets `times` over, in one Ogg Opus stream.
pub fn repeat_as_ogg(webm: &Bytes, times: usize) -> Bytes {
    let (reader, _) = open(webm);
    let track = reader.default_track(symphonia::core::formats::TrackType::Audio).expect("audio");
    let Some(symphonia::core::codecs::CodecParameters::Audio(params)) = &track.codec_params else { panic!("audio") };
    let head = backend_ai::audio::opus::OpusHead::parse(params.extra_data.as_deref().expect("OpusHead"), "WebM")
        .expect("a valid head");
    let packets = source_packets(webm);
    let repeated = std::iter::repeat_n(packets.iter(), times).flatten().map(Vec::as_slice);
    Bytes::from(backend_ai::audio::ogg_opus::write(&head, repeated, 0, "WebM").expect("written").bytes)
}

/// `seconds` of a loud, changing signal as a canonical PCM WAV of any rate and channel count.
pub fn long_wav(rate: u32, channels: u16, seconds: u32) -> Bytes {
    wav_frames(rate, channels, rate * seconds)
}

/// Exactly `frames` frames of that signal: for lengths at a limit's edge, to the sample.
pub fn wav_frames(rate: u32, channels: u16, frames: u32) -> Bytes {
    let data_len = frames * u32::from(channels) * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    wav.extend_from_slice(&(channels * 2).to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for frame in 0..frames {
        let t = f64::from(frame) / f64::from(rate);
        // A 220 Hz tone whose loudness rises and falls twice a second, like syllables.
        let sample = (8000.0
            * (0.6 + 0.4 * (t * 4.0 * std::f64::consts::PI).sin())
            * (t * 440.0 * std::f64::consts::PI).sin()) as i16;
        for _ in 0..channels {
            wav.extend_from_slice(&sample.to_le_bytes());
        }
    }
    Bytes::from(wav)
}
