//! Answer a job from the cache when it can; otherwise call the inner service and store a
//! successful, cacheable result before answering (so that by the time the caller, or a
//! single-flight lease holder above, sees the answer, other instances can read it).

mod layer;
mod service;

pub use layer::CacheLayer;
pub use service::CacheService;
