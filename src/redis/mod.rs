//! Redis, shared by the cache, the cross-instance single-flight and the distributed rate
//! limiter: the link (timeouts, health, back-off) and the rules it keeps.

mod backoff;
mod link;

pub use link::{LinkOptions, RedisLink, RedisLinkError};
