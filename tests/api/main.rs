//! HTTP-level tests of the whole service: the real router on a real socket, upstreams faked with
//! wiremock or served by the built-in simulator, Redis a private `redis-server`.

mod helpers;

mod admission;
mod analysis_chain;
mod analysis_fields;
mod audio;
mod audio_edges;
mod audio_key;
mod cache;
mod connection_slots;
mod decode_bounds;
mod detached;
mod disk_bound;
mod errors;
mod fair_limits;
mod hardening;
mod health;
mod health_cost;
mod limit_leases;
mod limits;
mod pages;
mod readings;
mod redis_cluster;
mod redis_garbage;
mod redis_rounds;
mod redis_sentinel;
mod redis_tls;
mod resilience;
mod shared_state;
mod ssrf;
mod store_after_answer;
mod upstream_calls;
mod upstream_replies;
mod usage;
