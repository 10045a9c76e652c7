//! The result cache in front of the upstreams: content-addressed keys, an in-process memory
//! tier, Redis (shared by instances) and a disk tier, combined as `CACHE_MODE` says.
//! See `API.md` "Cache mode". The cache never fails a request.

pub mod answer;
mod disk;
mod envelope;
mod health;
pub mod key;
mod memory;
pub mod mode;
mod redis_tier;
pub mod tiered;

pub use answer::{Answer, Kept};
pub use key::{CacheKey, CacheKeyed, CacheKind, Cacheable, KEY_NAMESPACE, answer_key};
pub use mode::{
    CacheMode, ModeSource, RequestedMode, SERVICE_ACCOUNT_DIR, UnknownCacheMode, kubernetes_detected, resolve_mode,
};
pub use tiered::{Cache, CacheConfig, DEFAULT_TTL, LeaseRef, SharedStore, Ttls};
