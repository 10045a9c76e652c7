//! Where a long reading is cut: in its pauses, measured on the decoded 16 kHz mono PCM.
//!
//! Flow:
//! 1. the energy of every 20 ms frame, in dB (a mean square: cheap, and all a pause needs);
//! 2. a threshold between the recording's own quiet floor and its speech level, so a noisy room
//!    and a studio both find their pauses (a fixed level would find none in the one or everywhere
//!    in the other);
//! 3. runs of quiet frames at least `min_pause` long are pauses, and a cut goes in a pause's
//!    middle, where no word can be;
//! 4. greedily from the start: the longest pause in the last two thirds of the next
//!    `max_piece`, so pieces end at sentence breaks (the longest pauses) and stay few; only a
//!    stretch with no pause at all is cut at its quietest frame.

use std::ops::Range;

/// Samples per second of the PCM cut here (what the normaliser makes).
pub const RATE: usize = 16_000;
/// 20 ms: short enough to find a short pause, long enough to be a stable measure.
const FRAME: usize = RATE / 50;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutConfig {
    /// Longest piece, in samples (Azure assesses at most 30 s).
    pub max_piece: usize,
    /// Shortest quiet stretch taken for a pause, in samples.
    pub min_pause: usize,
    /// Where between the quiet floor (0) and the speech level (1) the threshold sits.
    pub threshold: f64,
}

impl Default for CutConfig {
    fn default() -> Self {
        // 150 ms: a breath between phrases is longer, a stop consonant's closure is shorter.
        Self { max_piece: 30 * RATE, min_pause: RATE * 3 / 20, threshold: 0.25 }
    }
}

/// A quiet stretch, in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pause {
    start: usize,
    end: usize,
}

impl Pause {
    fn frames(&self) -> usize {
        self.end - self.start
    }

    /// Its middle, in samples.
    fn middle(&self) -> usize {
        (self.start + self.end) * FRAME / 2
    }
}

/// Cut `samples` into consecutive pieces covering all of them, each at most `max_piece` long,
/// each boundary in a pause where one lies within reach.
pub fn cut(samples: &[i16], config: &CutConfig) -> Vec<Range<usize>> {
    let max_piece = config.max_piece.max(FRAME);
    if samples.len() <= max_piece {
        return std::iter::once(0..samples.len()).collect();
    }
    let energies = frame_energies(samples);
    let pauses = pauses(&energies, config);
    let mut pieces = Vec::with_capacity(samples.len() / max_piece + 2);
    let mut start = 0;
    let mut next_pause = 0;
    while samples.len() - start > max_piece {
        let limit = start + max_piece;
        // A cut before a third of the way gives short pieces; only if nothing later fits.
        let early = start + max_piece / 3;
        while next_pause < pauses.len() && pauses[next_pause].middle() <= start {
            next_pause += 1;
        }
        let reachable = pauses[next_pause..].iter().take_while(|pause| pause.middle() <= limit);
        let best_late = reachable.clone().filter(|pause| pause.middle() > early).max_by_key(|pause| pause.frames());
        let end = match best_late.or_else(|| reachable.max_by_key(|pause| pause.frames())) {
            Some(pause) => pause.middle(),
            None => quietest(&energies, early, limit),
        };
        pieces.push(start..end);
        start = end;
    }
    pieces.push(start..samples.len());
    pieces
}

/// Mean square of each whole 20 ms frame (a last partial frame is measured as it is), in dB.
fn frame_energies(samples: &[i16]) -> Vec<f32> {
    samples
        .chunks(FRAME)
        .map(|frame| {
            let sum: i64 = frame.iter().map(|&sample| i64::from(sample) * i64::from(sample)).sum();
            let mean = sum as f64 / frame.len() as f64;
            (10.0 * (mean + 1.0).log10()) as f32
        })
        .collect()
}

/// Quiet runs at least `min_pause` long, in order.
fn pauses(energies: &[f32], config: &CutConfig) -> Vec<Pause> {
    let threshold = threshold(energies, config.threshold);
    let min_frames = config.min_pause.div_ceil(FRAME).max(1);
    let mut found = Vec::new();
    let mut run_start = None;
    for (index, &energy) in energies.iter().enumerate() {
        match (energy < threshold, run_start) {
            (true, None) => run_start = Some(index),
            (false, Some(start)) => {
                if index - start >= min_frames {
                    found.push(Pause { start, end: index });
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start.filter(|&start| energies.len() - start >= min_frames) {
        found.push(Pause { start, end: energies.len() });
    }
    found
}

/// Between the 10th percentile (the room) and the 95th (the voice). A recording with no
/// contrast at all (steady noise, or speech without a breath) gets a threshold below every
/// frame, so it has no pauses rather than pauses everywhere.
fn threshold(energies: &[f32], position: f64) -> f32 {
    let mut sorted = energies.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let at = |fraction: f64| sorted[((sorted.len() - 1) as f64 * fraction) as usize];
    let (floor, speech) = (at(0.10), at(0.95));
    // Under 6 dB apart, "quiet" and "speech" are the same sound.
    if speech - floor < 6.0 {
        return f32::NEG_INFINITY;
    }
    floor + (speech - floor) * position as f32
}

/// The middle of the quietest frame whose middle lies in `(start, limit]`: the least harmful
/// cut where the learner never paused (from a third of the way on, as for pauses).
fn quietest(energies: &[f32], start: usize, limit: usize) -> usize {
    let first = start / FRAME + 1;
    let last = (limit - FRAME / 2) / FRAME;
    (first..=last.max(first))
        .filter(|&index| index < energies.len())
        .min_by(|&a, &b| energies[a].total_cmp(&energies[b]).then(b.cmp(&a)))
        .map_or(limit, |index| (index * FRAME + FRAME / 2).min(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tone standing in for a word: loud enough to be speech.
    fn speech(seconds: f64) -> Vec<i16> {
        let count = (seconds * RATE as f64) as usize;
        (0..count).map(|index| ((index as f64 * 0.2).sin() * 8000.0) as i16).collect()
    }

    /// Room noise: low and never quite zero.
    fn quiet(seconds: f64) -> Vec<i16> {
        let count = (seconds * RATE as f64) as usize;
        (0..count).map(|index| ((index * 7919) % 61) as i16 - 30).collect()
    }

    fn join(parts: &[Vec<i16>]) -> Vec<i16> {
        parts.concat()
    }

    fn assert_covers(pieces: &[Range<usize>], len: usize) {
        assert_eq!(pieces.first().map(|piece| piece.start), Some(0));
        assert_eq!(pieces.last().map(|piece| piece.end), Some(len));
        for pair in pieces.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "pieces are consecutive");
        }
    }

    #[test]
    fn a_recording_within_the_limit_is_one_piece() {
        let samples = join(&[speech(10.0), quiet(1.0), speech(10.0)]);
        assert_eq!(cut(&samples, &CutConfig::default()), vec![0..samples.len()]);
    }

    #[test]
    fn sentences_with_pauses_are_cut_inside_the_pauses() {
        // Six 8 s sentences with 0.8 s pauses: 52 s.
        let mut parts = Vec::new();
        let mut pause_spans = Vec::new();
        let mut at = 0;
        for sentence in 0..6 {
            parts.push(speech(8.0));
            at += 8 * RATE;
            if sentence < 5 {
                parts.push(quiet(0.8));
                pause_spans.push(at..at + RATE * 8 / 10);
                at += RATE * 8 / 10;
            }
        }
        let samples = join(&parts);
        let pieces = cut(&samples, &CutConfig::default());
        assert_covers(&pieces, samples.len());
        assert!(pieces.len() >= 2);
        for piece in &pieces {
            assert!(piece.len() <= 30 * RATE, "{piece:?} is longer than 30 s");
        }
        for piece in &pieces[..pieces.len() - 1] {
            assert!(pause_spans.iter().any(|pause| pause.contains(&piece.end)), "cut at {} is in no pause", piece.end);
        }
    }

    #[test]
    fn the_longest_pause_in_reach_is_chosen_over_a_short_one() {
        // A short breath at 20 s, a sentence break at 24 s.
        let samples = join(&[speech(20.0), quiet(0.2), speech(4.0), quiet(1.0), speech(20.0)]);
        let pieces = cut(&samples, &CutConfig::default());
        let sentence_break = (24.2 * RATE as f64) as usize..(25.2 * RATE as f64) as usize;
        assert!(sentence_break.contains(&pieces[0].end), "{pieces:?}");
    }

    #[test]
    fn speech_without_any_pause_is_still_cut_within_the_limit() {
        let samples = speech(75.0);
        let pieces = cut(&samples, &CutConfig::default());
        assert_covers(&pieces, samples.len());
        assert!(pieces.iter().all(|piece| piece.len() <= 30 * RATE && !piece.is_empty()));
        // Not cut into slivers: every piece but the last is over a third of the limit.
        assert!(pieces[..pieces.len() - 1].iter().all(|piece| piece.len() > 10 * RATE), "{pieces:?}");
    }

    #[test]
    fn digital_silence_between_sentences_is_a_pause() {
        let samples = join(&[speech(25.0), vec![0; RATE], speech(25.0)]);
        let pieces = cut(&samples, &CutConfig::default());
        assert_eq!(pieces.len(), 2);
        assert!((25 * RATE..26 * RATE).contains(&pieces[0].end), "{pieces:?}");
    }

    #[test]
    fn a_recording_of_exactly_the_limit_is_not_cut_and_one_sample_more_is() {
        let config = CutConfig::default();
        assert_eq!(cut(&speech(30.0), &config).len(), 1);
        let mut longer = speech(30.0);
        longer.push(0);
        let pieces = cut(&longer, &config);
        assert_eq!(pieces.len(), 2);
        assert_covers(&pieces, longer.len());
    }

    #[test]
    fn empty_and_tiny_inputs_give_one_piece() {
        assert_eq!(cut(&[], &CutConfig::default()), vec![0..0]);
        assert_eq!(cut(&[5; 10], &CutConfig::default()), vec![0..10]);
    }
}
