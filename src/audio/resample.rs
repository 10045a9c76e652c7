//! Mono samples at any rate to 16 kHz 16-bit, as they are decoded.
//!
//! rubato's synchronous FFT resampler: band-limited (a windowed anti-aliasing filter, so
//! 48 kHz speech does not fold its 8-24 kHz content into the band Azure listens to), exact for
//! a fixed ratio, and cheap enough for 100x real time on one core. Fed in chunks, so only the
//! output is held, and only up to `keep` samples of it: past that the samples are counted,
//! not kept (a long recording goes to Azure as it came, not as PCM).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::error::AudioError;
use super::wav::TARGET_RATE;

/// Input frames per FFT chunk: small enough to stay in cache, large enough to amortise a call.
const CHUNK: usize = 1024;

pub struct To16k {
    /// `None` when the input already is at 16 kHz.
    fft: Option<Box<Fft<f32>>>,
    from_rate: u32,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    /// Output frames of filter delay still to drop.
    delay: usize,
    input_frames: u64,
    output: Vec<i16>,
    /// Output samples made, kept or not.
    counted: usize,
    keep: usize,
    kept_all: bool,
}

impl To16k {
    /// `keep`: the most output samples to hold.
    pub fn new(from_rate: u32, keep: usize) -> Result<Self, AudioError> {
        let fft = if from_rate == TARGET_RATE {
            None
        } else {
            let fft = Fft::<f32>::new(from_rate as usize, TARGET_RATE as usize, CHUNK, 1, FixedSync::Input)
                .map_err(|error| AudioError::unsupported(format!("audio at {from_rate} Hz ({error})")))?;
            Some(Box::new(fft))
        };
        let delay = fft.as_ref().map_or(0, |fft| fft.output_delay());
        let scratch = vec![0.0; fft.as_ref().map_or(0, |fft| fft.output_frames_max())];
        Ok(Self {
            fft,
            from_rate,
            pending: Vec::with_capacity(CHUNK * 2),
            scratch,
            delay,
            input_frames: 0,
            output: Vec::new(),
            counted: 0,
            keep,
            kept_all: true,
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from_rate
    }

    /// Input frames taken so far.
    pub fn input_frames(&self) -> u64 {
        self.input_frames
    }

    /// Bytes the kept output can take once `frames` more input frames are pushed.
    pub fn output_bytes_after(&self, frames: usize) -> usize {
        let input = u128::from(self.input_frames) + frames as u128;
        let expected = (input * u128::from(TARGET_RATE)).div_ceil(u128::from(self.from_rate.max(1)));
        // A chunk of filter output may come ahead of the exact ratio.
        let samples = usize::try_from(expected).unwrap_or(usize::MAX).saturating_add(self.scratch.len());
        samples.min(self.keep).saturating_mul(2)
    }

    /// The most bytes the kept output takes.
    pub fn most_bytes(&self) -> usize {
        self.keep.saturating_mul(2)
    }

    /// Allocate room for `bytes` of output at once: the caller reserved exactly that, and the
    /// output then never grows by doubling past it.
    pub fn make_room(&mut self, bytes: usize) {
        let samples = (bytes / 2).min(self.keep);
        if samples > self.output.capacity() {
            self.output.reserve_exact(samples - self.output.len());
        }
    }

    pub fn push(&mut self, samples: &[f32]) {
        self.input_frames += samples.len() as u64;
        if self.fft.is_none() {
            for &sample in samples {
                self.emit(sample);
            }
            return;
        }
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= CHUNK {
            self.process(start, None);
            start += CHUNK;
        }
        self.pending.drain(..start);
    }

    /// The 16 kHz samples, or `None` when there were more than `keep`.
    pub fn finish(mut self) -> Option<Vec<i16>> {
        if self.fft.is_some() {
            let expected = (self.input_frames as u128 * u128::from(TARGET_RATE)).div_ceil(u128::from(self.from_rate));
            let expected = usize::try_from(expected).unwrap_or(usize::MAX);
            let remaining = self.pending.len();
            if remaining > 0 {
                self.process(0, Some(remaining));
                self.pending.clear();
            }
            // Pump silence through until the filter has given back the last real samples.
            let mut stalled = 0;
            while self.counted < expected && stalled < 4 {
                let before = self.counted;
                self.process(0, Some(0));
                stalled = if self.counted == before { stalled + 1 } else { 0 };
            }
            if self.kept_all {
                self.output.truncate(expected);
            }
        }
        self.kept_all.then_some(self.output)
    }

    fn process(&mut self, start: usize, partial: Option<usize>) {
        let Some(fft) = self.fft.as_mut() else { return };
        let needed = fft.input_frames_next();
        let mut chunk_storage;
        let input: &[f32] = match partial {
            None => &self.pending[start..start + needed],
            Some(_) => {
                chunk_storage = vec![0.0; needed];
                let have = self.pending.len().saturating_sub(start).min(needed);
                chunk_storage[..have].copy_from_slice(&self.pending[start..start + have]);
                &chunk_storage
            }
        };
        let frames_out = fft.output_frames_next();
        if self.scratch.len() < frames_out {
            self.scratch.resize(frames_out, 0.0);
        }
        let (Ok(adapter_in), Ok(mut adapter_out)) =
            (InterleavedSlice::new(input, 1, needed), InterleavedSlice::new_mut(&mut self.scratch, 1, frames_out))
        else {
            return;
        };
        let indexing = partial.map(|len| Indexing::new().partial_len(len));
        let Ok((_, written)) = fft.process_into_buffer(&adapter_in, &mut adapter_out, indexing.as_ref()) else {
            return;
        };
        let skipped = written.min(self.delay);
        self.delay -= skipped;
        let scratch = std::mem::take(&mut self.scratch);
        for &sample in &scratch[skipped..written] {
            self.emit(sample);
        }
        self.scratch = scratch;
    }

    fn emit(&mut self, sample: f32) {
        self.counted += 1;
        if self.output.len() < self.keep {
            self.output.push(to_i16(sample));
        } else {
            self.kept_all = false;
        }
    }
}

fn to_i16(sample: f32) -> i16 {
    (sample * 32_767.0).round().clamp(-32_768.0, 32_767.0) as i16
}
