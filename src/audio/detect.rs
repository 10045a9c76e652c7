//! What a recording is, from its first bytes. The file name and the declared type are never
//! consulted: browsers label the same bytes differently (`audio/webm`, `video/webm`,
//! `audio/x-matroska`, nothing at all), phones send `application/octet-stream`, and a label
//! costs an attacker nothing.

/// The containers (and bare streams) the service takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// RIFF/WAVE.
    Wav,
    /// Ogg: Opus, Vorbis (or FLAC) inside.
    Ogg,
    /// WebM, what Chrome, Edge and Firefox's MediaRecorder write.
    WebM,
    /// Matroska other than WebM (`.mka`).
    Matroska,
    /// ISO base media: MP4, M4A, 3GP (what Safari and phones write).
    Mp4,
    /// MPEG audio layer 3, with or without an ID3v2 tag in front.
    Mp3,
    /// A bare AAC stream in ADTS frames.
    Adts,
    /// Native FLAC.
    Flac,
}

impl Container {
    pub const ALL: [Container; 8] =
        [Self::Wav, Self::Ogg, Self::WebM, Self::Matroska, Self::Mp4, Self::Mp3, Self::Adts, Self::Flac];

    /// The `container` label of `audio_inputs_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Ogg => "ogg",
            Self::WebM => "webm",
            Self::Matroska => "matroska",
            Self::Mp4 => "mp4",
            Self::Mp3 => "mp3",
            Self::Adts => "adts",
            Self::Flac => "flac",
        }
    }

    /// How a person would name it in an error message.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wav => "WAV",
            Self::Ogg => "Ogg",
            Self::WebM => "WebM",
            Self::Matroska => "Matroska",
            Self::Mp4 => "MP4",
            Self::Mp3 => "MP3",
            Self::Adts => "AAC (ADTS)",
            Self::Flac => "FLAC",
        }
    }
}

/// What the 415 says is accepted.
pub const ACCEPTED: &str = "WAV, Ogg (Opus, Vorbis), WebM/Matroska, MP4/M4A/3GP (AAC, Opus), MP3, AAC (ADTS) or FLAC";

/// The container of `bytes`, or a description of what they are instead.
pub fn detect(bytes: &[u8]) -> Result<Container, &'static str> {
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        return Ok(Container::Wav);
    }
    if bytes.starts_with(b"OggS") {
        return Ok(Container::Ogg);
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Ok(if ebml_doc_type_is_webm(bytes) { Container::WebM } else { Container::Matroska });
    }
    if bytes.len() >= 8 && is_iso_box(&bytes[4..8]) {
        return Ok(Container::Mp4);
    }
    if bytes.starts_with(b"fLaC") {
        return Ok(Container::Flac);
    }
    if let Some(frame) = after_id3v2(bytes) {
        // A tag says nothing of what follows it: taggers put ID3v2 in front of FLAC too, whose
        // own magic comes right after the tag.
        if frame.starts_with(b"fLaC") {
            return Ok(Container::Flac);
        }
        return match frame_sync(frame) {
            Some(Sync::Adts) => Ok(Container::Adts),
            Some(Sync::Mpeg) | None => Ok(Container::Mp3),
        };
    }
    match frame_sync(bytes) {
        Some(Sync::Mpeg) => Ok(Container::Mp3),
        Some(Sync::Adts) => Ok(Container::Adts),
        None => Err(describe(bytes)),
    }
}

/// The DocType of an EBML header, looked for in its first bytes (the header is tiny and comes
/// first). Matroska and WebM differ only by it.
fn ebml_doc_type_is_webm(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64)];
    // DocType is element 0x4282, then a one-byte size for "webm" (0x84).
    head.windows(7).any(|window| window == [0x42, 0x82, 0x84, b'w', b'e', b'b', b'm'])
}

/// The box types an ISO media file (MP4, M4A, 3GP, QuickTime) starts with.
fn is_iso_box(kind: &[u8]) -> bool {
    matches!(kind, b"ftyp" | b"styp" | b"moov" | b"mdat" | b"free" | b"skip" | b"wide")
}

/// The bytes after an ID3v2 tag, when there is one.
fn after_id3v2(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 10 || &bytes[0..3] != b"ID3" {
        return None;
    }
    // The size is "syncsafe": 7 bits per byte; a footer adds 10 bytes.
    let size = bytes[6..10].iter().fold(0usize, |size, &byte| (size << 7) | usize::from(byte & 0x7F));
    let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
    Some(bytes.get(10 + size + footer..).unwrap_or_default())
}

enum Sync {
    /// An MPEG-1/2/2.5 audio frame header (layer I, II or III).
    Mpeg,
    /// An ADTS header (AAC): the same sync word, layer bits 00.
    Adts,
}

/// An MPEG audio or ADTS frame header at the very start, checked beyond its sync word so that
/// arbitrary binary data starting with `FF Fx` is not taken for audio: a second header must
/// follow where the first one's length says.
fn frame_sync(bytes: &[u8]) -> Option<Sync> {
    let header = bytes.get(..4)?;
    if header[0] != 0xFF || header[1] & 0xE0 != 0xE0 {
        return None;
    }
    if header[1] & 0xF6 == 0xF0 {
        // ADTS: 12 sync bits, layer 00; the frame length is 13 bits from byte 3.
        let length = (usize::from(bytes.get(3)? & 0x03) << 11)
            | (usize::from(*bytes.get(4)?) << 3)
            | usize::from(bytes.get(5)? >> 5);
        let sampling_index = (header[2] >> 2) & 0x0F;
        if length < 7 || sampling_index > 12 {
            return None;
        }
        return followed_by_sync(bytes, length).then_some(Sync::Adts);
    }
    let version = (header[1] >> 3) & 0x03; // 00 MPEG-2.5, 01 reserved, 10 MPEG-2, 11 MPEG-1
    let layer = (header[1] >> 1) & 0x03; // 01 layer III, 10 layer II, 11 layer I, 00 reserved
    let bitrate_index = header[2] >> 4;
    let rate_index = (header[2] >> 2) & 0x03;
    if version == 0x01 || layer == 0x00 || bitrate_index == 0x0F || bitrate_index == 0 || rate_index == 0x03 {
        return None;
    }
    let length = mpeg_frame_length(version, layer, bitrate_index, rate_index, header[2] & 0x02 != 0)?;
    followed_by_sync(bytes, length).then_some(Sync::Mpeg)
}

/// True when `bytes` end at `length` or carry another sync word there.
fn followed_by_sync(bytes: &[u8], length: usize) -> bool {
    match bytes.get(length..length + 2) {
        Some(next) => next[0] == 0xFF && next[1] & 0xE0 == 0xE0,
        // A single frame (or one cut short) is still that kind of stream.
        None => bytes.len() <= length + 1,
    }
}

/// The byte length of an MPEG audio frame (ISO 11172-3 / 13818-3).
fn mpeg_frame_length(version: u8, layer: u8, bitrate_index: u8, rate_index: u8, padded: bool) -> Option<usize> {
    const RATES: [[u32; 3]; 4] =
        [[11_025, 12_000, 8_000], [0, 0, 0], [22_050, 24_000, 16_000], [44_100, 48_000, 32_000]];
    // kbit/s by [mpeg-1?][layer I, II, III][index]
    const V1: [[u32; 15]; 3] = [
        [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
        [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
        [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
    ];
    const V2: [[u32; 15]; 3] = [
        [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let layer_row = usize::from(3 - layer); // I, II, III
    let mpeg1 = version == 0x03;
    let kbps = if mpeg1 { V1[layer_row] } else { V2[layer_row] }[usize::from(bitrate_index)];
    let rate = RATES[usize::from(version)][usize::from(rate_index)];
    if rate == 0 {
        return None;
    }
    let padding = u32::from(padded);
    let length = match layer_row {
        0 => (12 * kbps * 1000 / rate + padding) * 4,
        2 if !mpeg1 => 72 * kbps * 1000 / rate + padding,
        _ => 144 * kbps * 1000 / rate + padding,
    };
    usize::try_from(length).ok()
}

/// A few things people upload by mistake, named so the 415 can say what it found.
fn describe(bytes: &[u8]) -> &'static str {
    const KNOWN: [(&[u8], &str); 12] = [
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
        (b"\x1F\x8B", "gzip-compressed data"),
        (b"FORM", "an AIFF or IFF file"),
        (b"RF64", "an RF64 (64-bit WAV) file"),
        (b"#!AMR", "AMR audio"),
        (b"caff", "Core Audio (CAF) audio"),
        (b"MThd", "a MIDI file"),
        (b"\x30\x26\xB2\x75", "Windows Media (ASF/WMA) audio"),
    ];
    if bytes.is_empty() {
        return "no bytes at all";
    }
    if let Some((_, what)) = KNOWN.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return what;
    }
    let head = &bytes[..bytes.len().min(512)];
    match std::str::from_utf8(head) {
        Ok(text) if text.trim_start().starts_with(['{', '[']) => "JSON text",
        Ok(text) if text.trim_start().starts_with('<') => "HTML or XML text",
        Ok(_) => "plain text",
        Err(_) => "data of no audio format it knows",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp3_frame() -> Vec<u8> {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 417 bytes.
        let mut frame = vec![0xFF, 0xFB, 0x90, 0x64];
        frame.resize(417, 0);
        frame
    }

    #[test]
    fn containers_are_told_by_their_magic_bytes() {
        assert_eq!(detect(b"RIFF\x24\0\0\0WAVEfmt "), Ok(Container::Wav));
        assert_eq!(detect(b"OggS\0\x02"), Ok(Container::Ogg));
        assert_eq!(detect(b"fLaC\0\0\0\x22"), Ok(Container::Flac));
        assert_eq!(detect(b"\0\0\0\x20ftypM4A \0\0\0\0"), Ok(Container::Mp4));
        assert_eq!(detect(b"\0\0\0\x18ftyp3gp4\0\0\0\0"), Ok(Container::Mp4));
        let webm = b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\x82\x84webm\x42\x87";
        assert_eq!(detect(webm), Ok(Container::WebM));
        let mka = b"\x1A\x45\xDF\xA3\xA3\x42\x86\x81\x01\x42\x82\x88matroska";
        assert_eq!(detect(mka), Ok(Container::Matroska));
    }

    #[test]
    fn mpeg_audio_is_told_from_adts_by_its_layer_bits() {
        let mut two = mp3_frame();
        two.extend(mp3_frame());
        assert_eq!(detect(&two), Ok(Container::Mp3));
        // ADTS, 48 kHz, a 10-byte frame, then another sync word.
        let adts = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0, 0, 0, 0xFF, 0xF1, 0x4C, 0x80];
        assert_eq!(detect(&adts), Ok(Container::Adts));
    }

    #[test]
    fn an_id3v2_tag_in_front_is_skipped() {
        let mut tagged = b"ID3\x03\x00\x00\x00\x00\x00\x05hello".to_vec();
        tagged.extend(mp3_frame());
        tagged.extend(mp3_frame());
        assert_eq!(detect(&tagged), Ok(Container::Mp3));
    }

    #[test]
    fn a_flac_behind_an_id3v2_tag_is_flac() {
        let tagged = b"ID3\x04\x00\x00\x00\x00\x00\x05hellofLaC\x00\x00\x00\x22";
        assert_eq!(detect(tagged), Ok(Container::Flac));
    }

    #[test]
    fn binary_that_merely_starts_like_a_frame_is_not_audio() {
        let mut junk = vec![0xFF, 0xFB, 0x90, 0x64];
        junk.extend(std::iter::repeat_n(0x11, 2000));
        assert!(detect(&junk).is_err());
    }

    #[test]
    fn what_is_not_audio_is_named() {
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n"), Err("a PNG image"));
        assert_eq!(detect(b"%PDF-1.7"), Err("a PDF document"));
        assert_eq!(detect(b"  {\"audio\": 1}"), Err("JSON text"));
        assert_eq!(detect(b"hello"), Err("plain text"));
        assert_eq!(detect(b""), Err("no bytes at all"));
        assert_eq!(detect(&[0x00, 0x9F, 0x92, 0x96]), Err("data of no audio format it knows"));
    }
}
