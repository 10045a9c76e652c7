//! Whether this instance wants traffic. Flipped once, at the start of shutdown, so Kubernetes
//! takes the pod out of its Service before the listener closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn new() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn shutting_down(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}
