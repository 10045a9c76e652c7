//! backend-ai: Englivo's speech and writing analysis service.
pub mod analysis;
pub mod audio;
pub mod metrics;
pub mod speech;
pub mod upstream;
