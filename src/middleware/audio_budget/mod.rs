//! The audio routes' share of memory: each request reserves the bytes its recording can come to
//! hold before its body is read (`audio::budget`), and is refused with 503 `overloaded` at once
//! when they are not free. On `/api/transcribe` and `/api/pronunciation` only, inside auth and
//! the rate limit, so a refused or unauthenticated request never takes a share.

mod future;
mod layer;
mod service;

pub use layer::AudioBudgetLayer;
pub use service::AudioBudgetService;
