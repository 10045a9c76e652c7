//! Writing Opus packets into an Ogg Opus stream (RFC 7845) as Azure's short-audio API takes
//! it, without re-encoding: the packets go out byte for byte as the browser's encoder made them.
//!
//! The stream is laid out as the RFC asks and strict readers check: `OpusHead` alone on the
//! first page, `OpusTags` alone on the second, then audio pages of at most one second, each
//! carrying the granule position (48 kHz samples, pre-skip included) at the end of its last
//! complete packet, summed from the packets' own TOC durations; the last page is flagged end of
//! stream and its granule trimmed by the source's end padding when the source said what it was.
//! Pages, lacing and CRCs are the `ogg` crate's (the Xiph format's reference Rust
//! implementation), whose reader checks what this writes in the tests.

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::error::AudioError;
use super::opus::{self, OpusHead, head::opus_tags};

/// The stream's serial number. Fixed, so the same recording always gives the same bytes.
const SERIAL: u32 = 0x6261_6961;
/// Longest a page may run before it is closed (opusenc's default, too).
const PAGE_SAMPLES: u64 = opus::RATE as u64;

/// An Ogg Opus file and how long it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggOpus {
    pub bytes: Vec<u8>,
    /// 48 kHz samples a player outputs: the final granule position less the pre-skip.
    pub played_samples: u64,
}

/// Writes packets as they are demuxed. One packet is held back, because only at the end is it
/// known which one is last (its page is flagged end of stream and its granule trimmed).
pub struct Writer {
    pages: PacketWriter<'static, Vec<u8>>,
    container: &'static str,
    pre_skip: u64,
    held: Option<Vec<u8>>,
    /// 48 kHz samples up to and including the held packet, and in the held packet.
    granule: u64,
    held_samples: u64,
    page_started_at: u64,
    last_page_granule: u64,
}

impl Writer {
    pub fn new(head: &OpusHead, container: &'static str) -> Result<Self, AudioError> {
        let mut pages = PacketWriter::new(Vec::new());
        pages.write_packet(head.to_bytes(), SERIAL, PacketWriteEndInfo::EndPage, 0).map_err(io(container))?;
        pages.write_packet(opus_tags(), SERIAL, PacketWriteEndInfo::EndPage, 0).map_err(io(container))?;
        Ok(Self {
            pages,
            container,
            pre_skip: u64::from(head.pre_skip),
            held: None,
            granule: 0,
            held_samples: 0,
            page_started_at: 0,
            last_page_granule: 0,
        })
    }

    /// 48 kHz samples of the packets pushed so far.
    pub fn samples(&self) -> u64 {
        self.granule
    }

    /// A packet that holds no audio is left out: the stream's length is what it really holds,
    /// never what empty packets claim (Azure bills, and fast transcription takes, the length).
    pub fn push(&mut self, packet: &[u8]) -> Result<(), AudioError> {
        let samples = opus::packet_samples(packet)
            .ok_or_else(|| AudioError::damaged(self.container, "an Opus packet has an invalid table of contents"))?;
        if !opus::holds_audio(packet) {
            return Ok(());
        }
        if let Some(previous) = self.held.take() {
            let end = if self.granule - self.page_started_at >= PAGE_SAMPLES {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.write(previous, end, self.granule)?;
        }
        self.held = Some(packet.to_vec());
        self.held_samples = u64::from(samples);
        self.granule += u64::from(samples);
        Ok(())
    }

    /// `end_trim`: 48 kHz samples of encoder padding at the end, when the source said (else 0).
    pub fn finish(mut self, end_trim: u64) -> Result<OggOpus, AudioError> {
        let last = self.held.take().ok_or_else(|| AudioError::damaged(self.container, "it holds no audio"))?;
        // Trimming cuts into the last packet only: the end may not come before the packets
        // already complete (a page the Ogg writer closed when it filled up carries their
        // granule, and granules never go back), nor before the pre-skip (RFC 7845 4).
        let floor = self.granule - self.held_samples;
        let position = self.granule.saturating_sub(end_trim).max(floor).max(self.last_page_granule).max(self.pre_skip);
        self.write(last, PacketWriteEndInfo::EndStream, position)?;
        Ok(OggOpus { bytes: self.pages.into_inner(), played_samples: position.saturating_sub(self.pre_skip) })
    }

    fn write(&mut self, packet: Vec<u8>, end: PacketWriteEndInfo, position: u64) -> Result<(), AudioError> {
        self.pages.write_packet(packet, SERIAL, end, position).map_err(io(self.container))?;
        if end != PacketWriteEndInfo::NormalPacket {
            self.page_started_at = self.granule;
            self.last_page_granule = position;
        }
        Ok(())
    }
}

fn io(container: &'static str) -> impl Fn(std::io::Error) -> AudioError {
    move |error| AudioError::damaged(container, format!("could not be re-packaged: {error}"))
}

/// All of `packets` behind `head`, at once.
pub fn write<'p>(
    head: &OpusHead,
    packets: impl IntoIterator<Item = &'p [u8]>,
    end_trim: u64,
    container: &'static str,
) -> Result<OggOpus, AudioError> {
    let mut writer = Writer::new(head, container)?;
    for packet in packets {
        writer.push(packet)?;
    }
    writer.finish(end_trim)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn mono_head() -> OpusHead {
        OpusHead { channels: 1, pre_skip: 312, input_rate: 48_000, output_gain: 0, mapping_family: 0, mapping: vec![] }
    }

    /// 20 ms CELT packets of various sizes (at least 2 bytes of frame: less holds no audio).
    fn packets(count: usize) -> Vec<Vec<u8>> {
        (0..count).map(|i| std::iter::once(0xF8).chain((0..(i % 200 + 2) as u8).map(|b| b ^ 0x5A)).collect()).collect()
    }

    fn read_back(bytes: &[u8]) -> Vec<ogg::Packet> {
        let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
        let mut out = Vec::new();
        while let Some(packet) = reader.read_packet().expect("valid Ogg with right CRCs") {
            out.push(packet);
        }
        out
    }

    #[test]
    fn headers_stand_alone_and_the_packets_come_back_unchanged() {
        let source = packets(120);
        let ogg = write(&mono_head(), source.iter().map(Vec::as_slice), 0, "WebM").expect("written");
        let read = read_back(&ogg.bytes);
        assert_eq!(read.len(), 122);
        assert!(read[0].data.starts_with(b"OpusHead") && read[0].last_in_page());
        assert!(read[1].data.starts_with(b"OpusTags") && read[1].last_in_page());
        assert_ne!(read[0].absgp_page(), u64::MAX);
        for (written, original) in read[2..].iter().zip(&source) {
            assert_eq!(&written.data, original);
        }
        assert!(read.last().is_some_and(|last| last.last_in_stream()));
        assert_eq!(ogg.played_samples, 120 * 960 - 312);
    }

    #[test]
    fn pages_last_at_most_a_second_and_their_granules_rise() {
        let source = packets(200);
        let ogg = write(&mono_head(), source.iter().map(Vec::as_slice), 0, "WebM").expect("written");
        let mut previous = 0;
        let mut closed = 0;
        for packet in read_back(&ogg.bytes).iter().skip(2).filter(|packet| packet.last_in_page()) {
            assert!(packet.absgp_page() >= previous);
            assert!(packet.absgp_page() - previous <= 48_000);
            previous = packet.absgp_page();
            closed += 1;
        }
        assert!(closed >= 4, "200 x 20 ms needs at least 4 one-second pages");
        assert_eq!(previous, 200 * 960);
    }

    #[test]
    fn end_padding_the_source_declared_is_trimmed_from_the_final_granule() {
        let source = packets(10);
        let ogg = write(&mono_head(), source.iter().map(Vec::as_slice), 41, "Ogg").expect("written");
        assert_eq!(ogg.played_samples, 10 * 960 - 41 - 312);
        let last = read_back(&ogg.bytes).pop().expect("packets");
        assert_eq!(last.absgp_page(), 10 * 960 - 41);
    }

    #[test]
    fn packets_that_hold_no_audio_are_left_out_and_not_counted() {
        let mut source = packets(10);
        source.insert(3, vec![0xFB, 0x06]);
        source.insert(7, vec![0xF8]);
        let ogg = write(&mono_head(), source.iter().map(Vec::as_slice), 0, "WebM").expect("written");
        assert_eq!(read_back(&ogg.bytes).len(), 12);
        assert_eq!(ogg.played_samples, 10 * 960 - 312);
        let claims: Vec<&[u8]> = vec![&[0xFB, 0x06]; 5000];
        assert!(write(&mono_head(), claims, 0, "Ogg").is_err(), "600 s claimed, nothing held");
    }

    #[test]
    fn a_stream_without_audio_or_with_a_broken_packet_is_damaged() {
        assert!(write(&mono_head(), std::iter::empty(), 0, "WebM").is_err());
        let broken: [&[u8]; 2] = [&[0xF8, 1], &[0x0B, 0x00]];
        assert!(write(&mono_head(), broken, 0, "WebM").is_err());
    }
}
