//! Redis, shared by the cache, the cross-instance single-flight and the distributed rate
//! limiter: where it is (`topology`), the connection to it whatever its shape (`connection`,
//! `sentinel`), the link that bounds and watches every operation (`link`, `health`, `backoff`),
//! the keys (`keys`) and scripts (`scripts`) the service keeps there.

mod backoff;
mod connection;
mod dial;
mod health;
mod keys;
mod link;
mod reply_bound;
mod scripts;
mod sentinel;
#[cfg(test)]
mod tests;
mod topology;

pub use connection::Connection;
pub use health::{State, slot};
pub use keys::KeySpace;
pub use link::{LinkOptions, RedisLink, RedisLinkError};
pub use scripts::Lua;
pub use topology::{DEFAULT_KEY_PREFIX, RedisTarget, Topology};
