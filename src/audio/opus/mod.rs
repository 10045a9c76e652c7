//! Opus as containers carry it: the identification header (`OpusHead`) however a container
//! stores it, the length of a packet read from its table of contents, and whether it holds audio.

pub mod head;
pub mod toc;

pub use head::OpusHead;
pub use toc::{holds_audio, packet_samples};

/// Opus always counts time in 48 kHz samples, whatever rate it was recorded or is played at.
pub const RATE: u32 = 48_000;
