//! What decoding one recording may spend, checked on every packet its demuxer reads: packets of
//! other tracks and packets that decode to nothing included, since a container can claim
//! billions of either in a few hundred bytes (a fragmented MP4's `trun` of 2^32-1 empty
//! samples, Matroska blocks laced with 256 empty frames each).
//!
//! - packets: at most one per byte of the recording. Every packet a device writes takes at
//!   least one byte of the file (an Opus packet its table of contents, an Ogg packet its
//!   lacing value, a Matroska block its header); more packets than bytes are claims, not audio.
//!   And no packet of any codec we read is empty: a run of empty packets, of whichever track,
//!   ends the reading at once rather than after a packet per byte.
//! - decoded samples: at most what the longest accepted recording holds as stereo 48 kHz, all
//!   channels counted before the down-mix. Decoding costs about as much per sample made, and a
//!   file can make far more than it sends: 170 KB of FLAC can hold ten minutes of eight
//!   channels at 384 kHz (1.8 billion samples, minutes of CPU) and Vorbis does the same. No
//!   learner's device records more than stereo 48 kHz, so that budget is never met by a real
//!   recording the length limit does not refuse first. Not a budget per byte: legitimate
//!   silence decodes to hundreds of samples per byte of FLAC and thousands per byte of Vorbis,
//!   more than the hostile files above.
//! - time: a wall-clock deadline, the guard of last resort against a decoder that stops making
//!   progress; real recordings of the longest accepted length take well under a second.
//! - the request: a job whose client went away stops at its next packet instead of spending
//!   its decoding worker on an answer nobody reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::detect::Container;
use super::error::AudioError;

/// Wall-clock bound on one recording's decoding.
const DECODE_DEADLINE: Duration = Duration::from_secs(30);
/// Empty packets in a row, of any track, before the recording is refused.
const EMPTY_RUN_LIMIT: u32 = 256;
/// What one packet decoded to: the decoder's work, which the allowance spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The rate of the samples appended.
    pub rate: u32,
    /// Channels the decoder made before the down-mix.
    pub channels: usize,
    /// Samples the decoder made, all channels together (frames x channels): its work.
    pub samples: u64,
}

/// Decoded samples per second of the longest accepted recording: stereo at 48 kHz.
const SAMPLES_PER_SECOND: f64 = 2.0 * 48_000.0;

/// Set when the request a decoding job works for is gone. An atomic flag rather than
/// `tokio_util`'s `CancellationToken`: the job only polls it, once per packet, from a blocking
/// thread, and a token's check takes a mutex.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Cancels when dropped, unless disarmed first: held by the future that awaits the job, so
    /// the future being dropped (the client disconnected) stops the job.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

#[must_use = "dropping it at once cancels"]
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.cancel();
        }
    }
}

/// One recording's allowance, spent a packet at a time.
#[derive(Debug)]
pub struct Allowance {
    started: Instant,
    packets_left: u64,
    empty_run: u32,
    /// Decoded samples still allowed, and the length they were set from (for the message).
    samples_left: u64,
    samples_for: Duration,
    cancel: Cancel,
}

impl Allowance {
    /// For a recording of `bytes` bytes.
    pub fn new(bytes: usize, cancel: Cancel) -> Self {
        Self {
            started: Instant::now(),
            packets_left: bytes as u64,
            empty_run: 0,
            samples_left: u64::MAX,
            samples_for: Duration::MAX,
            cancel,
        }
    }

    /// Allow decoding as many samples as `longest` of stereo 48 kHz audio holds.
    pub fn limit_decoding(&mut self, longest: Duration) {
        self.samples_left = (longest.as_secs_f64() * SAMPLES_PER_SECOND).ceil() as u64;
        self.samples_for = longest;
    }

    /// Account for the samples one packet decoded to.
    pub fn spend_decoded(&mut self, container: Container, decoded: &Decoded) -> Result<(), AudioError> {
        let Some(left) = self.samples_left.checked_sub(decoded.samples) else {
            return Err(AudioError::unsupported(format!(
                "{} audio of {} channels at {} Hz, decoding to more samples than {} s of stereo 48 kHz hold \
                 (the most one recording may decode)",
                container.name(),
                decoded.channels,
                decoded.rate,
                self.samples_for.as_secs_f64().round(),
            )));
        };
        self.samples_left = left;
        Ok(())
    }

    /// Account for one packet of `len` bytes read from the container, whichever track it
    /// belongs to.
    pub fn spend(&mut self, container: Container, len: usize) -> Result<(), AudioError> {
        if self.cancel.is_cancelled() {
            return Err(AudioError::damaged(container.name(), "its decoding was stopped (the request is gone)"));
        }
        let Some(left) = self.packets_left.checked_sub(1) else {
            return Err(AudioError::damaged(container.name(), "it claims more packets than its bytes can hold"));
        };
        self.packets_left = left;
        self.empty_run = if len == 0 { self.empty_run + 1 } else { 0 };
        if self.empty_run >= EMPTY_RUN_LIMIT {
            return Err(AudioError::damaged(container.name(), format!("{EMPTY_RUN_LIMIT} packets in a row are empty")));
        }
        if self.started.elapsed() > DECODE_DEADLINE {
            return Err(AudioError::damaged(container.name(), "it took too long to decode"));
        }
        Ok(())
    }

    /// Packets still allowed.
    pub fn packets(&self) -> u64 {
        self.packets_left
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_may_read_one_packet_per_byte() {
        let mut allowance = Allowance::new(3, Cancel::new());
        for _ in 0..3 {
            allowance.spend(Container::Mp4, 1).expect("within the allowance");
        }
        let error = allowance.spend(Container::Mp4, 1).expect_err("one packet too many");
        assert!(error.to_string().contains("more packets than its bytes"), "{error}");
    }

    #[test]
    fn a_run_of_empty_packets_ends_the_reading() {
        let mut allowance = Allowance::new(100_000, Cancel::new());
        for _ in 0..1_000 {
            allowance.spend(Container::Matroska, 0).expect("an empty packet now and then");
            allowance.spend(Container::Matroska, 5).expect("then audio");
        }
        let refused = (0..EMPTY_RUN_LIMIT).map(|_| allowance.spend(Container::Matroska, 0)).find_map(Result::err);
        assert!(refused.is_some_and(|error| error.to_string().contains("in a row are empty")));
    }

    #[test]
    fn decoding_stops_at_the_samples_of_stereo_48k_for_the_longest_length() {
        let mut allowance = Allowance::new(1_000, Cancel::new());
        allowance.limit_decoding(Duration::from_secs(10));
        let stereo = Decoded { rate: 48_000, channels: 2, samples: 96_000 };
        for _ in 0..10 {
            allowance.spend_decoded(Container::Flac, &stereo).expect("ten seconds of stereo 48 kHz");
        }
        let eight = Decoded { rate: 384_000, channels: 8, samples: 8 };
        let error = allowance.spend_decoded(Container::Flac, &eight).expect_err("one frame too many");
        assert!(matches!(error, AudioError::Unsupported { .. }), "{error}");
        assert!(error.to_string().contains("FLAC audio of 8 channels at 384000 Hz"), "{error}");
    }

    #[test]
    fn a_cancelled_job_stops_at_its_next_packet() {
        let cancel = Cancel::new();
        let mut allowance = Allowance::new(1_000, cancel.clone());
        allowance.spend(Container::WebM, 10).expect("not cancelled yet");
        drop(cancel.on_drop());
        assert!(allowance.spend(Container::WebM, 10).is_err());
        assert!(allowance.cancelled());
    }

    #[test]
    fn a_disarmed_guard_does_not_cancel() {
        let cancel = Cancel::new();
        cancel.on_drop().disarm();
        assert!(!cancel.is_cancelled());
    }
}
