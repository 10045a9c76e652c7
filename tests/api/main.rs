//! HTTP-level tests of the whole service: the real router on a real socket, upstreams faked with
//! wiremock or served by the built-in simulator, Redis a private `redis-server`.

mod helpers;

mod analysis_fields;
mod audio;
mod cache;
mod decode_bounds;
mod errors;
mod health;
mod limits;
mod pages;
mod redis_cluster;
mod redis_rounds;
mod redis_sentinel;
mod redis_tls;
mod resilience;
mod shared_state;
mod ssrf;
mod upstream_calls;
