//! backend-ai: Englivo's speech and writing analysis service.
pub mod analysis;
pub mod audio;
pub mod cache;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod redis_link;
pub mod served;
pub mod simulator;
pub mod speech;
pub mod upstream;
