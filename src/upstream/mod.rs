//! One client per upstream, each owning its `reqwest::Client` and private wire types.

pub mod azure_speech;
pub mod connections;
pub mod error;
pub mod gemini;
pub mod openai_compat;
mod reply;
mod retry_after;

pub use error::{ErrorKind, Upstream, UpstreamError};
