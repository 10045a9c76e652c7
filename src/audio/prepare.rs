//! Normalising recordings off the async workers.
//!
//! Decoding and resampling is CPU work measured in milliseconds to seconds; on a Tokio worker it
//! would stall every other request that worker serves, `/health` and cached answers included.
//! Each recording is normalised on the blocking pool, and at most `AUDIO_WORKERS` at once (by
//! default one per core), so a burst of uploads queues here instead of spawning a thread each.
//!
//! Both ends of the queue are bounded: a recording waits at most `AUDIO_QUEUE_WAIT_SECONDS` for
//! a worker (then 503 `overloaded`, with `Retry-After`), and a job whose request is gone (the
//! client disconnected, so the handler's future was dropped) stops at its next packet and frees
//! its worker, instead of spending it on an answer nobody reads. The permit travels with the
//! work, so it is free again only when the job has really stopped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::allowance::Cancel;
use super::budget::{Output, Reservation};
use super::detect;
use super::error::AudioError;
use super::normalise::{self, Action, Normalised, Policy, Purpose, Rejected};
use super::recording::Audio;
use crate::metrics::Metrics;

/// `AUDIO_QUEUE_WAIT_SECONDS`' default: room for a class's burst queued behind one worker (a
/// real recording decodes in milliseconds to a second, a hostile one is stopped within about
/// one), short enough that a client told to come back has not already given up.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Preparer {
    permits: Arc<Semaphore>,
    queue_wait: Duration,
    policy: Policy,
    metrics: Metrics,
}

impl Preparer {
    pub fn new(workers: usize, policy: Policy, metrics: Metrics) -> Self {
        Self { permits: Arc::new(Semaphore::new(workers.max(1))), queue_wait: DEFAULT_QUEUE_WAIT, policy, metrics }
    }

    /// The longest a recording waits for a worker before it is refused.
    pub fn with_queue_wait(mut self, queue_wait: Duration) -> Self {
        self.queue_wait = queue_wait;
        self
    }

    /// What normalising makes is held in `reservation` before it is allocated.
    pub async fn prepare(&self, bytes: Bytes, purpose: Purpose, reservation: Reservation) -> Result<Audio, AudioError> {
        let mut output = Output::within(reservation);
        // The semaphore is never closed: an error is the wait running out.
        let Ok(Ok(permit)) = tokio::time::timeout(self.queue_wait, self.permits.clone().acquire_owned()).await else {
            return Err(AudioError::Overloaded);
        };
        let (policy, metrics, work) = (self.policy, self.metrics.clone(), bytes.clone());
        let cancel = Cancel::new();
        let stop_when_dropped = cancel.on_drop();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            metrics.audio_workers_busy.inc();
            let outcome = run(work, purpose, policy, &mut output, &cancel);
            metrics.audio_workers_busy.dec();
            // Counted here, not by the awaiting future: a job whose request is gone counts too.
            let action = match &outcome {
                Ok(normalised) => normalised.action,
                Err(_) if cancel.is_cancelled() => Action::Cancelled,
                Err(_) => Action::Rejected,
            };
            let (container, codec) = match &outcome {
                Ok(normalised) => (Some(normalised.container), Some(normalised.codec)),
                Err(rejected) => (rejected.container, rejected.codec),
            };
            metrics
                .audio_inputs_total
                .with_label_values(&[
                    container.map_or("unknown", |container| container.as_str()),
                    codec.map_or("unknown", |codec| codec.as_str()),
                    action.as_str(),
                ])
                .inc();
            outcome
        });
        let outcome = job.await;
        stop_when_dropped.disarm();
        match outcome {
            Ok(Ok(normalised)) => Ok(Audio::new(bytes, normalised, policy.send)),
            Ok(Err(rejected)) => Err(rejected.error),
            // `run` catches the normaliser's panics; this is the blocking pool shutting down.
            Err(_) => Err(AudioError::Overloaded),
        }
    }
}

fn run(
    bytes: Bytes,
    purpose: Purpose,
    policy: Policy,
    output: &mut Output,
    cancel: &Cancel,
) -> Result<Normalised, Rejected> {
    // symphonia logs an ERROR per damaged packet: a few tell what broke, a million fill a disk.
    let _lines = crate::telemetry::third_party_lines();
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        normalise::normalise_counted(bytes.clone(), purpose, policy, output, cancel.clone())
    }));
    attempt.unwrap_or_else(|panic| {
        // A decoder bug, not the learner's fault; but to the learner the file is unreadable.
        let container = detect::detect(&bytes).ok();
        let message = panic
            .downcast_ref::<&str>()
            .map(|message| message.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(container = container.map(|c| c.as_str()), error = %message, "audio decoder panicked");
        Err(Rejected {
            error: AudioError::damaged(container.map_or("audio", |c| c.name()), "it could not be decoded"),
            container,
            codec: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav;

    fn preparer(workers: usize) -> Preparer {
        Preparer::new(workers, Policy::default(), Metrics::new())
    }

    /// `seconds` of a 440 Hz tone at 44.1 kHz: transcoded (resampled), so it keeps a worker busy.
    fn tone(seconds: usize) -> Bytes {
        let samples: Vec<i16> = (0..seconds * 44_100)
            .map(|n| ((n as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 16_000.0) as i16)
            .collect();
        let mut file = wav::encode(&samples);
        // The same samples, labelled 44.1 kHz (the header's rate and byte rate).
        file[24..28].copy_from_slice(&44_100u32.to_le_bytes());
        file[28..32].copy_from_slice(&88_200u32.to_le_bytes());
        Bytes::from(file)
    }

    fn count(preparer: &Preparer, action: &str) -> u64 {
        preparer.metrics.audio_inputs_total.with_label_values(&["wav", "pcm", action]).get()
    }

    #[tokio::test(start_paused = true)]
    async fn a_recording_waits_for_a_worker_a_bounded_time_then_is_told_to_come_back() {
        let preparer = preparer(1).with_queue_wait(Duration::from_secs(2));
        let _busy = preparer.permits.clone().acquire_owned().await.expect("the only worker");
        let error = preparer
            .prepare(tone(1), Purpose::Transcription, Reservation::uncounted())
            .await
            .expect_err("no worker came free");
        assert_eq!(error, AudioError::Overloaded);
    }

    #[tokio::test]
    async fn a_dropped_request_stops_its_decoding_and_frees_the_worker() {
        let preparer = preparer(1);
        let job = tokio::spawn({
            let preparer = preparer.clone();
            async move { preparer.prepare(tone(300), Purpose::Transcription, Reservation::uncounted()).await }
        });
        while preparer.metrics.audio_workers_busy.get() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        job.abort();
        let freed = tokio::time::timeout(Duration::from_secs(60), preparer.permits.clone().acquire_owned()).await;
        assert!(freed.is_ok(), "the worker came free");
        assert_eq!(count(&preparer, "cancelled"), 1);
        assert_eq!(count(&preparer, "transcode"), 0, "the decoding did not run to its end");
    }
}
