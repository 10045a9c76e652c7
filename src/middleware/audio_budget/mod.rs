//! The audio routes' share of memory: each request is admitted with an empty reservation of
//! `AUDIO_BYTES_IN_FLIGHT` (`audio::budget`), carried in its extensions, that grows by what the
//! request really comes to hold as its body arrives and its recording is decoded. The layer
//! keeps one handle until the answer is ready, so the bytes come back when it is sent (or, if
//! decoding or a detached upstream call outlives the client, when that ends). On `/api/transcribe` and
//! `/api/pronunciation` only, inside auth and the rate limit, so a refused or unauthenticated
//! request never takes a share.

mod future;
mod layer;
mod service;

pub use layer::AudioBudgetLayer;
pub use service::AudioBudgetService;
