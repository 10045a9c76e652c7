//! Learner audio: whatever a browser or phone records, made into exactly what Azure documents,
//! and fetched from a URL without letting that URL reach inside our network.
//!
//! - [`detect`]: the container, by the recording's bytes alone;
//! - [`wav`]: RIFF/WAVE headers read and written; [`opus`]: OpusHead and packet durations;
//!   [`demux`]: every other container's packets, through symphonia; [`mp4`] and
//!   [`matroska`]: the trimming they declare that the demuxer does not pass on;
//! - [`ogg_opus`]: mono Opus re-packaged as Ogg/Opus, packet for packet; [`decode`] and
//!   [`resample`]: everything else to 16 kHz mono 16-bit;
//! - [`normalise`]: the choice between passing through, re-packaging and transcoding, the exact
//!   duration, and the Azure API it goes to; [`allowance`]: the packets, time and request it
//!   may spend; [`prepare`]: running that off the async workers;
//!   [`recording`]: the result the upstream stacks carry;
//! - [`fetch`] and [`address`]: downloading `audio_url`s under the SSRF policy; [`budget`]: the
//!   bytes of recordings held at once.

pub mod address;
pub mod allowance;
pub mod budget;
pub mod decode;
pub mod demux;
pub mod detect;
pub mod error;
pub mod fetch;
pub mod matroska;
pub mod mp4;
pub mod normalise;
pub mod ogg_opus;
pub mod opus;
pub mod prepare;
pub mod recording;
pub mod resample;
pub mod wav;

pub use address::{AddressClass, classify};
pub use demux::Codec;
pub use detect::Container;
pub use error::AudioError;
pub use fetch::{AudioFetcher, FetchPolicy};
pub use normalise::{Action, Destination, NORMALISER_VERSION, Payload, Policy, Purpose, SendFormat};
pub use prepare::Preparer;
pub use recording::Audio;
