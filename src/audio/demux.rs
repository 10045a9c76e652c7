//! Reading the audio track's packets out of a container, with symphonia's demuxers (WebM and
//! Matroska, MP4/M4A/3GP, Ogg, MP3, ADTS, FLAC, WAV).
//!
//! Recordings arrive cut short: a tab closed while MediaRecorder was writing, an upload that
//! lost its tail. A read error after the first packet therefore ends the track where it broke
//! instead of refusing it, so the learner's words up to the cut are still transcribed; an error
//! before any packet means the bytes behind the magic number are not that container at all.

use std::io::Cursor;

use bytes::Bytes;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::AudioCodecParameters;
use symphonia::core::codecs::audio::well_known as codec;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;

use super::allowance::{Allowance, Cancel, Decoded};
use super::detect::Container;
use super::error::AudioError;
use super::matroska;
use super::mp4::{self, EditList, edit_list};

/// The codecs, as `audio_inputs_total{codec}` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Aac,
    Mp3,
    Flac,
    Vorbis,
    Pcm,
    Alac,
    Adpcm,
}

impl Codec {
    pub const ALL: [Codec; 8] =
        [Self::Opus, Self::Aac, Self::Mp3, Self::Flac, Self::Vorbis, Self::Pcm, Self::Alac, Self::Adpcm];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Aac => "aac",
            Self::Mp3 => "mp3",
            Self::Flac => "flac",
            Self::Vorbis => "vorbis",
            Self::Pcm => "pcm",
            Self::Alac => "alac",
            Self::Adpcm => "adpcm",
        }
    }

    /// Ours, or the name of one people meet that the service does not decode.
    fn of(params: &AudioCodecParameters) -> Result<Self, &'static str> {
        let id = params.codec;
        let pcm = [
            codec::CODEC_ID_PCM_S16LE,
            codec::CODEC_ID_PCM_S16BE,
            codec::CODEC_ID_PCM_S24LE,
            codec::CODEC_ID_PCM_S24BE,
            codec::CODEC_ID_PCM_S32LE,
            codec::CODEC_ID_PCM_S32BE,
            codec::CODEC_ID_PCM_U8,
            codec::CODEC_ID_PCM_S8,
            codec::CODEC_ID_PCM_F32LE,
            codec::CODEC_ID_PCM_F32BE,
            codec::CODEC_ID_PCM_F64LE,
            codec::CODEC_ID_PCM_F64BE,
            codec::CODEC_ID_PCM_ALAW,
            codec::CODEC_ID_PCM_MULAW,
        ];
        Ok(match id {
            _ if id == codec::CODEC_ID_OPUS => Self::Opus,
            _ if id == codec::CODEC_ID_AAC => Self::Aac,
            _ if id == codec::CODEC_ID_MP3 || id == codec::CODEC_ID_MP2 || id == codec::CODEC_ID_MP1 => Self::Mp3,
            _ if id == codec::CODEC_ID_FLAC => Self::Flac,
            _ if id == codec::CODEC_ID_VORBIS => Self::Vorbis,
            _ if id == codec::CODEC_ID_ALAC => Self::Alac,
            _ if id == codec::CODEC_ID_ADPCM_IMA_WAV || id == codec::CODEC_ID_ADPCM_MS => Self::Adpcm,
            _ if pcm.contains(&id) => Self::Pcm,
            _ if id == codec::CODEC_ID_AC3 || id == codec::CODEC_ID_EAC3 => return Err("Dolby (AC-3) audio"),
            _ if id == codec::CODEC_ID_DCA => return Err("DTS audio"),
            _ if id == codec::CODEC_ID_WMA => return Err("Windows Media audio"),
            _ if id == codec::CODEC_ID_SPEEX => return Err("Speex audio"),
            _ => return Err("audio in a codec it cannot decode"),
        })
    }
}

/// One container's audio track, read packet by packet.
pub struct Demuxer {
    reader: Box<dyn FormatReader + 'static>,
    track_id: u32,
    pub container: Container,
    pub codec: Codec,
    pub params: AudioCodecParameters,
    /// An MP4's edit list: where its audio really starts and how long it plays.
    pub edits: Option<EditList>,
    /// A WebM/Matroska's `DiscardPadding` on its last block, in 48 kHz samples.
    pub end_padding: Option<u64>,
    packets: u64,
    /// Spent on every packet the container yields, whichever track it belongs to.
    allowance: Allowance,
    /// The track ended at a read error rather than at its end.
    pub truncated: bool,
}

impl Demuxer {
    /// The recording's audio track; `cancel` stops the reading of its packets.
    pub fn open(bytes: Bytes, container: Container, cancel: Cancel) -> Result<Self, AudioError> {
        let name = container.name();
        let allowance = Allowance::new(bytes.len(), cancel);
        if container == Container::Mp4 && mp4::fragment_samples(&bytes) > allowance.packets() {
            return Err(AudioError::damaged(name, "its fragments claim more samples than its bytes can hold"));
        }
        let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.clone())), Default::default());
        let reader = symphonia::default::get_probe()
            .probe(&Hint::new(), source, FormatOptions::default(), MetadataOptions::default())
            .map_err(|error| AudioError::damaged(name, describe(&error)))?;
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| AudioError::unsupported(format!("a {name} file without an audio track")))?;
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err(AudioError::unsupported(format!("a {name} file without an audio track")));
        };
        let codec = Codec::of(params).map_err(|what| AudioError::unsupported(format!("{what} in a {name} file")))?;
        let (track_id, params) = (track.id, params.clone());
        let edits = if container == Container::Mp4 { edit_list(&bytes) } else { None };
        let end_padding = match container {
            Container::WebM | Container::Matroska => matroska::end_padding(&bytes),
            _ => None,
        };
        Ok(Self {
            reader,
            track_id,
            container,
            codec,
            params,
            edits,
            end_padding,
            packets: 0,
            allowance,
            truncated: false,
        })
    }

    /// Decode at most as many samples as `longest` of stereo 48 kHz holds (see `allowance`).
    pub fn limit_decoding(&mut self, longest: std::time::Duration) {
        self.allowance.limit_decoding(longest);
    }

    /// Account for what one packet decoded to.
    pub fn spend_decoded(&mut self, decoded: &Decoded) -> Result<(), AudioError> {
        self.allowance.spend_decoded(self.container, decoded)
    }

    /// The next packet of the audio track; `None` at its end or where the data broke off.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, AudioError> {
        loop {
            let next = self.reader.next_packet();
            if let Ok(Some(packet)) = &next {
                self.allowance.spend(self.container, packet.data.len())?;
            }
            match next {
                Ok(Some(packet)) if packet.track_id != self.track_id => continue,
                Ok(Some(packet)) => {
                    self.packets += 1;
                    return Ok(Some(packet));
                }
                Ok(None) | Err(SymphoniaError::ResetRequired) => return Ok(None),
                Err(error) if self.packets > 0 => {
                    tracing::debug!(container = self.container.as_str(), %error, "recording cut short; keeping what came before");
                    self.truncated = true;
                    return Ok(None);
                }
                Err(error) => return Err(AudioError::damaged(self.container.name(), describe(&error))),
            }
        }
    }
}

/// symphonia's words for a failure, without its module prefixes ("mkv: ", "isomp4 (opus): ").
fn describe(error: &SymphoniaError) -> String {
    match error {
        SymphoniaError::IoError(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            "it ends before its first audio".to_string()
        }
        SymphoniaError::IoError(_) => "it could not be read".to_string(),
        SymphoniaError::DecodeError(message)
        | SymphoniaError::Unsupported(message)
        | SymphoniaError::LimitError(message) => {
            let message = message.rsplit(": ").next().unwrap_or(message);
            format!("it could not be read ({message})")
        }
        _ => "it could not be read".to_string(),
    }
}
