//! Azure Speech: short-audio REST recognition and pronunciation assessment, and fast
//! transcription for recordings over 60 s (UPSTREAMS.md section 1). The wire types are private;
//! callers see only the contract's `speech::Transcription` / `speech::Pronunciation` and
//! `UpstreamError`.

mod client;
mod fast;
mod results;
mod status;
mod wire;

pub use client::{AzureSpeechClient, AzureSpeechConfig, MAX_REPLY_BYTES};
pub use fast::MAX_REPLY_BYTES as MAX_FAST_REPLY_BYTES;
pub(crate) use fast::lexical;

use crate::upstream::Upstream;

/// Every error and metric of these modules is about this upstream.
const UPSTREAM: Upstream = Upstream::AzureSpeech;
