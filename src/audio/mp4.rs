//! The two things read from MP4/M4A boxes by hand: the audio track's edit list, and how many
//! samples the fragments claim.
//!
//! AAC encoders put 1024 (Apple: 2112) samples of priming in front of the audio and pad the
//! last frame; the edit list (`moov/trak/edts/elst`) says where the real audio starts and how
//! long it plays. symphonia decodes the priming and the padding too, which would make an M4A
//! about 25 ms longer than what the learner said and shift every word's offset by the priming.
//! Fragmented files (MediaRecorder's) usually carry no edit list; then nothing is trimmed.

/// Where a track's playable audio starts and how long it lasts, in its media time scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditList {
    /// Samples to skip at the start (the priming).
    pub skip: u64,
    /// Samples that play, when the edit says.
    pub play: Option<u64>,
    /// Samples per second of `skip` and `play`.
    pub timescale: u32,
}

impl EditList {
    /// `skip` and `play` at `rate` (the decoder's, which can differ from the track's).
    pub fn at_rate(&self, rate: u32) -> (u64, Option<u64>) {
        let convert = |samples: u64| {
            u64::try_from(u128::from(samples) * u128::from(rate) / u128::from(self.timescale.max(1)))
                .unwrap_or(u64::MAX)
        };
        (convert(self.skip), self.play.map(convert))
    }
}

/// The first sound track's edit list, if the file has a readable one.
pub fn edit_list(bytes: &[u8]) -> Option<EditList> {
    let moov = children(bytes).find(|(kind, _)| kind == b"moov")?.1;
    let movie_timescale = children(moov).find(|(kind, _)| kind == b"mvhd").and_then(|(_, body)| timescale(body))?;
    children(moov).filter(|(kind, _)| kind == b"trak").find_map(|(_, trak)| {
        let mdia = children(trak).find(|(kind, _)| kind == b"mdia")?.1;
        let handler = children(mdia).find(|(kind, _)| kind == b"hdlr")?.1;
        if handler.get(8..12)? != b"soun" {
            return None;
        }
        let media_timescale = children(mdia).find(|(kind, _)| kind == b"mdhd").and_then(|(_, body)| timescale(body))?;
        let edts = children(trak).find(|(kind, _)| kind == b"edts")?.1;
        let elst = children(edts).find(|(kind, _)| kind == b"elst")?.1;
        let (duration, media_time) = first_edit(elst)?;
        let play = u128::from(duration) * u128::from(media_timescale) / u128::from(movie_timescale.max(1));
        Some(EditList {
            skip: media_time,
            play: (duration > 0).then(|| u64::try_from(play).unwrap_or(u64::MAX)),
            timescale: media_timescale,
        })
    })
}

/// Samples the track fragment runs (`moof/traf/trun`) claim, all tracks together.
///
/// Checked before the demuxer sees the file: symphonia reads a `trun` by looping once per
/// claimed sample even when no per-sample field is stored, so 2^32-1 claimed samples cost it
/// tens of seconds before it yields a first packet, in a box of 20 bytes.
pub fn fragment_samples(bytes: &[u8]) -> u64 {
    children(bytes)
        .filter(|(kind, _)| kind == b"moof")
        .flat_map(|(_, moof)| children(moof).filter(|(kind, _)| kind == b"traf"))
        .flat_map(|(_, traf)| children(traf).filter(|(kind, _)| kind == b"trun"))
        .filter_map(|(_, trun)| Some(u64::from(u32::from_be_bytes(trun.get(4..8)?.try_into().ok()?))))
        .sum()
}

/// The boxes inside `bytes`, as (type, body). Stops at the first malformed size.
fn children(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = bytes.get(at..at.checked_add(8)?)?;
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        let (body_start, size) = match size {
            0 => (at + 8, bytes.len() - at),
            1 => {
                let large = bytes.get(at + 8..at + 16)?;
                let size = u64::from_be_bytes(large.try_into().ok()?);
                (at + 16, usize::try_from(size).ok()?)
            }
            size => (at + 8, size),
        };
        let end = at.checked_add(size)?;
        let body = bytes.get(body_start..end)?;
        at = end;
        Some((kind, body))
    })
}

/// The time scale of an `mvhd` or `mdhd` body (a full box: version, flags, then times).
fn timescale(body: &[u8]) -> Option<u32> {
    let at = if *body.first()? == 1 { 20 } else { 12 };
    let bytes = body.get(at..at + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?)).filter(|&scale| scale > 0)
}

/// The first edit that maps media (an empty edit, media time -1, only delays playback).
fn first_edit(elst: &[u8]) -> Option<(u64, u64)> {
    let version = *elst.first()?;
    let count = u32::from_be_bytes(elst.get(4..8)?.try_into().ok()?) as usize;
    let entry_len = if version == 1 { 20 } else { 12 };
    (0..count.min(64)).find_map(|index| {
        let entry = elst.get(8 + index * entry_len..8 + (index + 1) * entry_len)?;
        let (duration, media_time) = if version == 1 {
            (u64::from_be_bytes(entry[0..8].try_into().ok()?), i64::from_be_bytes(entry[8..16].try_into().ok()?))
        } else {
            (
                u64::from(u32::from_be_bytes(entry[0..4].try_into().ok()?)),
                i64::from(i32::from_be_bytes(entry[4..8].try_into().ok()?)),
            )
        };
        u64::try_from(media_time).ok().map(|media_time| (duration, media_time))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn full(version: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        body.extend_from_slice(rest);
        body
    }

    /// moov with a 1000 Hz movie time scale and one sound track at 48 kHz editing `elst`.
    fn file(elst: Vec<u8>) -> Vec<u8> {
        let mvhd = boxed(b"mvhd", &full(0, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xE8, 0, 0, 0, 0]));
        let mdhd = boxed(b"mdhd", &full(0, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBB, 0x80, 0, 0, 0, 0]));
        let hdlr = boxed(b"hdlr", &full(0, b"\0\0\0\0soun\0\0\0\0\0\0\0\0\0\0\0\0\0"));
        let mdia = boxed(b"mdia", &[mdhd, hdlr].concat());
        let edts = boxed(b"edts", &boxed(b"elst", &elst));
        let trak = boxed(b"trak", &[edts, mdia].concat());
        let mut out = boxed(b"ftyp", b"M4A \0\0\0\0");
        out.extend(boxed(b"moov", &[mvhd, trak].concat()));
        out
    }

    #[test]
    fn an_aac_priming_edit_says_where_the_audio_starts_and_how_long_it_plays() {
        // What ffmpeg writes for a 2.812 s M4A: skip 1024, play 2812 ms.
        let mut elst = full(0, &1u32.to_be_bytes());
        elst.extend_from_slice(&2812u32.to_be_bytes());
        elst.extend_from_slice(&1024i32.to_be_bytes());
        elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        let edits = edit_list(&file(elst)).expect("an edit list");
        assert_eq!(edits, EditList { skip: 1024, play: Some(134_976), timescale: 48_000 });
        // HE-AAC decoded at half rate: the same edit in the decoder's samples.
        assert_eq!(edits.at_rate(24_000), (512, Some(67_488)));
    }

    #[test]
    fn an_empty_edit_in_front_is_passed_over() {
        let mut elst = full(1, &2u32.to_be_bytes());
        elst.extend_from_slice(&500u64.to_be_bytes());
        elst.extend_from_slice(&(-1i64).to_be_bytes());
        elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        elst.extend_from_slice(&1000u64.to_be_bytes());
        elst.extend_from_slice(&2112i64.to_be_bytes());
        elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        let edits = edit_list(&file(elst)).expect("an edit list");
        assert_eq!((edits.skip, edits.play), (2112, Some(48_000)));
    }

    #[test]
    fn the_samples_fragments_claim_are_counted_without_reading_them() {
        let trun = |count: u32| boxed(b"trun", &full(0, &count.to_be_bytes()));
        let moof =
            |runs: Vec<u8>| boxed(b"moof", &[boxed(b"mfhd", &full(0, &[0, 0, 0, 1])), boxed(b"traf", &runs)].concat());
        let mut file = file(full(0, &0u32.to_be_bytes()));
        assert_eq!(fragment_samples(&file), 0);
        file.extend(moof([trun(10), trun(u32::MAX)].concat()));
        file.extend(boxed(b"mdat", &[]));
        file.extend(moof(trun(5)));
        assert_eq!(fragment_samples(&file), 15 + u64::from(u32::MAX));
    }

    #[test]
    fn files_without_a_readable_edit_list_have_none() {
        assert_eq!(edit_list(b""), None);
        assert_eq!(edit_list(&boxed(b"ftyp", b"isom")), None);
        let mut truncated = file(full(0, &1u32.to_be_bytes()));
        truncated.truncate(truncated.len() - 3);
        assert_eq!(edit_list(&truncated), None);
        assert_eq!(edit_list(&[0, 0, 0, 1, b'm', b'o', b'o', b'v', 0xFF, 0xFF]), None);
    }
}
