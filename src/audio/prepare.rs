//! Normalising recordings off the async workers.
//!
//! Decoding and resampling is CPU work measured in milliseconds to seconds; on a Tokio worker it
//! would stall every other request that worker serves, `/health` and cached answers included.
//! Each recording is normalised on the blocking pool, and at most `AUDIO_WORKERS` at once (by
//! default one per core), so a burst of uploads queues here instead of spawning a thread each.
//! The permit travels with the work: a client that goes away does not free its slot before
//! the CPU it started is spent.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::budget::{Output, Reservation};
use super::detect;
use super::error::AudioError;
use super::normalise::{self, Action, Policy, Purpose, Rejected};
use super::recording::Audio;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Preparer {
    permits: Arc<Semaphore>,
    policy: Policy,
    metrics: Metrics,
}

impl Preparer {
    pub fn new(workers: usize, policy: Policy, metrics: Metrics) -> Self {
        Self { permits: Arc::new(Semaphore::new(workers.max(1))), policy, metrics }
    }

    /// What normalising makes is held in `reservation` before it is allocated.
    pub async fn prepare(&self, bytes: Bytes, purpose: Purpose, reservation: Reservation) -> Result<Audio, AudioError> {
        let mut output = Output::within(reservation);
        // The semaphore is never closed.
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| AudioError::Missing("shutting down".into()))?;
        let policy = self.policy;
        let work = bytes.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            normalise::normalise_counted(work, purpose, policy, &mut output)
        })
        .await;
        let outcome = outcome.unwrap_or_else(|panic| {
            // A decoder bug, not the learner's fault; but to the learner the file is unreadable.
            let container = detect::detect(&bytes).ok();
            tracing::error!(container = container.map(|c| c.as_str()), error = %panic, "audio decoder panicked");
            Err(Rejected {
                error: AudioError::damaged(container.map_or("audio", |c| c.name()), "it could not be decoded"),
                container,
                codec: None,
            })
        });
        match outcome {
            Ok(normalised) => {
                self.count(normalised.container.as_str(), normalised.codec.as_str(), normalised.action);
                Ok(Audio::new(bytes, normalised, policy.send))
            }
            Err(rejected) => {
                let container = rejected.container.map_or("unknown", |container| container.as_str());
                let codec = rejected.codec.map_or("unknown", |codec| codec.as_str());
                self.count(container, codec, Action::Rejected);
                Err(rejected.error)
            }
        }
    }

    fn count(&self, container: &str, codec: &str, action: Action) {
        self.metrics.audio_inputs_total.with_label_values(&[container, codec, action.as_str()]).inc();
    }
}
