//! The service's own domain, below the stacks and routes that use it.

pub mod reading;
