//! Opus as containers carry it: the identification header (`OpusHead`) however a container
//! stores it, and the length of a packet read from its table of contents.

pub mod head;
pub mod toc;

pub use head::OpusHead;
pub use toc::packet_samples;

/// Opus always counts time in 48 kHz samples, whatever rate it was recorded or is played at.
pub const RATE: u32 = 48_000;
