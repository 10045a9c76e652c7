//! Thin handlers: read and check the input, call the upstream stack, shape the envelope.

pub mod analyze;
pub mod envelope;
pub mod health;
pub mod input;
pub mod speech;
pub mod usage;
