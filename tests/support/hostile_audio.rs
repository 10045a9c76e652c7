//! Recordings built to make a decoder work for what they claim rather than what they hold (the
//! reproductions of issue 21), byte by byte so each claim is visible here.
#![allow(dead_code)]

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len() + 8).expect("small box").to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// A full box: version, 24 bits of flags, then `rest`.
fn full_box(kind: &[u8; 4], version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![version];
    body.extend_from_slice(&flags.to_be_bytes()[1..]);
    body.extend_from_slice(rest);
    mp4_box(kind, &body)
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|value| value.to_be_bytes()).collect()
}

/// An MPEG-4 descriptor (esds): tag, one-byte length, body.
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(body.len()).expect("short descriptor")];
    out.extend_from_slice(body);
    out
}

/// An AAC-LC mono 48 kHz sound track, its sample tables empty (all samples are in fragments).
fn aac_track(id: u32) -> Vec<u8> {
    let tkhd = full_box(
        b"tkhd",
        0,
        3,
        &[words(&[0, 0, id, 0, 0, 0, 0, 0, 0x0100_0000]), words(&MATRIX), words(&[0, 0])].concat(),
    );
    let mdhd = full_box(b"mdhd", 0, 0, &[words(&[0, 0, 48_000, 0]), vec![0x55, 0xC4, 0, 0]].concat());
    let hdlr = full_box(b"hdlr", 0, 0, &[words(&[0]), b"soun".to_vec(), words(&[0, 0, 0]), vec![0]].concat());
    let smhd = full_box(b"smhd", 0, 0, &[0, 0, 0, 0]);
    let dinf = mp4_box(b"dinf", &full_box(b"dref", 0, 0, &[words(&[1]), full_box(b"url ", 0, 1, &[])].concat()));
    // AudioSpecificConfig 0x11 0x88: AAC-LC, 48 kHz, one channel.
    let decoder_config =
        descriptor(0x04, &[vec![0x40, 0x15, 0, 0, 0], words(&[0, 0]), descriptor(0x05, &[0x11, 0x88])].concat());
    let es = descriptor(0x03, &[vec![0, 1, 0], decoder_config, descriptor(0x06, &[0x02])].concat());
    let esds = full_box(b"esds", 0, 0, &es);
    let mp4a = mp4_box(
        b"mp4a",
        &[vec![0, 0, 0, 0, 0, 0, 0, 1], vec![0; 8], vec![0, 1, 0, 16, 0, 0, 0, 0], words(&[48_000 << 16]), esds]
            .concat(),
    );
    let stsd = full_box(b"stsd", 0, 0, &[words(&[1]), mp4a].concat());
    let empty = |kind| full_box(kind, 0, 0, &words(&[0]));
    let stsz = full_box(b"stsz", 0, 0, &words(&[0, 0]));
    let stbl = mp4_box(b"stbl", &[stsd, empty(b"stts"), empty(b"stsc"), stsz, empty(b"stco")].concat());
    let minf = mp4_box(b"minf", &[smhd, dinf, stbl].concat());
    let mdia = mp4_box(b"mdia", &[mdhd, hdlr, minf].concat());
    mp4_box(b"trak", &[tkhd, mdia].concat())
}

/// A fragmented MP4 (MediaRecorder's shape) whose one fragment's `trun` claims 2^32-1 samples
/// of size 0, in well under a kilobyte. `run_track` is the track the fragment belongs to: 1,
/// the audio track read, or 2, a second track whose packets the reader skips.
pub fn mp4_endless_run(run_track: u32) -> Vec<u8> {
    let ftyp = mp4_box(b"ftyp", &[b"iso6".to_vec(), words(&[0]), b"iso6mp41".to_vec()].concat());
    let mvhd = full_box(
        b"mvhd",
        0,
        0,
        &[
            words(&[0, 0, 1000, 0, 0x0001_0000]),
            vec![1, 0, 0, 0],
            words(&[0, 0]),
            words(&MATRIX),
            vec![0; 24],
            words(&[3]),
        ]
        .concat(),
    );
    let trex = |id: u32| full_box(b"trex", 0, 0, &words(&[id, 1, 1024, 0, 0]));
    let mvex = mp4_box(b"mvex", &[trex(1), trex(2)].concat());
    let moov = mp4_box(b"moov", &[mvhd, aac_track(1), aac_track(2), mvex].concat());
    // tfhd: default-base-is-moof, default duration and size (0) given.
    let tfhd = full_box(b"tfhd", 0, 0x02_0018, &words(&[run_track, 1024, 0]));
    let tfdt = full_box(b"tfdt", 1, 0, &[0; 8]);
    let mfhd = full_box(b"mfhd", 0, 0, &words(&[1]));
    let moof_len = |trun: &[u8]| 8 + mfhd.len() + 8 + tfhd.len() + tfdt.len() + trun.len();
    let trun_of = |offset: u32| full_box(b"trun", 0, 0x01, &words(&[u32::MAX, offset]));
    let data_offset = u32::try_from(moof_len(&trun_of(0)) + 8).expect("small");
    let traf = mp4_box(b"traf", &[tfhd.clone(), tfdt.clone(), trun_of(data_offset)].concat());
    let moof = mp4_box(b"moof", &[mfhd.clone(), traf].concat());
    let mdat = mp4_box(b"mdat", &[]);
    [ftyp, moov, moof, mdat].concat()
}

/// An EBML element with a one-byte size (`body` under 127 bytes) or of unknown size (`None`).
fn ebml(id: &[u8], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = id.to_vec();
    match body {
        Some(body) => {
            out.push(0x80 | u8::try_from(body.len()).expect("short element"));
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
    }
    out
}

/// A Matroska file of about `bytes` bytes with two 16-bit PCM tracks, 1 and 2, and nothing but
/// SimpleBlocks for `block_track` with fixed lacing, 256 frames each, and no data: 256 empty
/// packets per 7 bytes. Track 1 is the one read; track 2's packets are skipped.
pub fn matroska_empty_laced_blocks(block_track: u8, bytes: usize) -> Vec<u8> {
    let header = ebml(
        &[0x1A, 0x45, 0xDF, 0xA3],
        Some(
            &[ebml(&[0x42, 0x82], Some(b"matroska")), ebml(&[0x42, 0x87], Some(&[4])), ebml(&[0x42, 0x85], Some(&[2]))]
                .concat(),
        ),
    );
    let info = ebml(
        &[0x15, 0x49, 0xA9, 0x66],
        Some(
            &[
                ebml(&[0x2A, 0xD7, 0xB1], Some(&[0x0F, 0x42, 0x40])),
                ebml(&[0x4D, 0x80], Some(b"test")),
                ebml(&[0x57, 0x41], Some(b"test")),
            ]
            .concat(),
        ),
    );
    let audio = ebml(
        &[0xE1],
        Some(
            &[
                ebml(&[0xB5], Some(&48_000f32.to_be_bytes())),
                ebml(&[0x9F], Some(&[1])),
                ebml(&[0x62, 0x64], Some(&[16])),
            ]
            .concat(),
        ),
    );
    let entry = |number: u8| {
        ebml(
            &[0xAE],
            Some(
                &[
                    ebml(&[0xD7], Some(&[number])),
                    ebml(&[0x73, 0xC5], Some(&[number])),
                    ebml(&[0x83], Some(&[2])),
                    ebml(&[0x86], Some(b"A_PCM/INT/LIT")),
                    audio.clone(),
                ]
                .concat(),
            ),
        )
    };
    let tracks = ebml(&[0x16, 0x54, 0xAE, 0x6B], Some(&[entry(1), entry(2)].concat()));
    let mut file = header;
    file.extend(ebml(&[0x18, 0x53, 0x80, 0x67], None));
    file.extend(info);
    file.extend(tracks);
    file.extend(ebml(&[0x1F, 0x43, 0xB6, 0x75], None));
    file.extend(ebml(&[0xE7], Some(&[0])));
    // The track, timestamp 0, flags: keyframe + fixed-size lacing; 256 frames of nothing.
    let block = ebml(&[0xA3], Some(&[0x80 | block_track, 0, 0, 0x84, 0xFF]));
    while file.len() + block.len() <= bytes {
        file.extend_from_slice(&block);
    }
    file
}

/// An ADTS AAC stream in which each of `good`'s frames is followed by `damaged` frames the AAC
/// decoder refuses (each refusal an ERROR line from symphonia), repeated to about `bytes`.
/// `good` is a real ADTS stream; its frames are taken as they are.
pub fn adts_mostly_damaged(good: &[u8], damaged: usize, bytes: usize) -> Vec<u8> {
    let frames = adts_frames(good);
    assert!(!frames.is_empty(), "an ADTS stream");
    let mut file = Vec::with_capacity(bytes + 4096);
    'fill: loop {
        for frame in &frames {
            file.extend_from_slice(frame);
            for _ in 0..damaged {
                // The frame's own header, its payload zeroed: symphonia's AAC decoder refuses it
                // with an ERROR "check failed" line.
                let mut bad = frame[..7].to_vec();
                bad.extend(std::iter::repeat_n(0, frame.len() - 7));
                file.extend_from_slice(&bad);
            }
            if file.len() >= bytes {
                break 'fill;
            }
        }
    }
    file
}

fn adts_frames(stream: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 7 <= stream.len() && stream[at] == 0xFF && stream[at + 1] & 0xF0 == 0xF0 {
        let length = (usize::from(stream[at + 3] & 0x03) << 11)
            | (usize::from(stream[at + 4]) << 3)
            | usize::from(stream[at + 5] >> 5);
        if length < 7 || at + length > stream.len() {
            break;
        }
        frames.push(&stream[at..at + length]);
        at += length;
    }
    frames
}
