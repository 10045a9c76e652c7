//! Whole readings scored: pronunciation assessment of recordings longer than the 30 s Azure
//! assesses in one request, of free speech without a script, and feedback down to the sound.
//!
//! Flow of one assessment ([`service::Reading`]):
//! 1. scripted up to 30 s: one assessment against the text, Azure's scores as they are;
//! 2. longer: the decoded 16 kHz PCM is cut in its pauses into pieces of at most 30 s
//!    ([`pauses`]), each piece is transcribed, and the transcripts laid against the text give
//!    each piece its part of it ([`align::assign`]); unscripted, each piece's transcript is its
//!    text (Microsoft's advice for free speech: transcribe, then assess against the transcript);
//! 3. the pieces are assessed several at once, each through the usual resilience stack; one
//!    failing fails the whole reading (no partial score passed off as whole);
//! 4. one result, as Microsoft's samples compute it over segments ([`aggregate`]).
//!
//! Everything here but [`service`] is pure and unit-tested; [`service`] only sequences calls to
//! the stacks it is given.

pub mod aggregate;
pub mod align;
pub mod pauses;
pub mod phonemes;
pub mod service;

use std::ops::Range;
use std::time::Duration;

/// Azure's pronunciation assessment takes at most this much audio per request.
pub const PIECE_LIMIT: Duration = Duration::from_secs(30);
/// Bump when the shape or the computation of a result changes: pronunciation cache keys carry
/// it, so no result of an older version is served.
pub const RESULT_VERSION: &str = "reading-1";

/// The longest a reading's assessment can take: its pieces (at most one per 10 s, as the cut
/// never ends a piece before a third of 30 s unless the recording ends) in rounds of
/// `concurrency`, each piece transcribed and then assessed, each call within `call_deadline`.
/// Waiting on another instance's identical reading must last that long, or the wait gives up
/// and the reading is paid for twice.
pub fn longest_assessment(longest_recording: Duration, call_deadline: Duration, concurrency: usize) -> Duration {
    let pieces = longest_recording.as_secs().div_ceil(10).max(1);
    let rounds = pieces.div_ceil(concurrency.max(1) as u64);
    call_deadline.saturating_mul(u32::try_from(rounds * 2).unwrap_or(u32::MAX))
}

/// Milliseconds of 16 kHz samples.
pub fn samples_to_ms(samples: usize) -> u64 {
    (samples as u64 * 1000) / pauses::RATE as u64
}

/// Each piece's part of the reference text, from the pieces' transcripts (see
/// [`align::assign`]): the text's own words, as written.
pub fn reference_parts(reference: &str, transcripts: &[String]) -> Vec<String> {
    let reference_words = align::words(reference);
    let transcript_words: Vec<Vec<&str>> = transcripts.iter().map(|text| align::words(text)).collect();
    align::assign(&reference_words, &transcript_words)
        .into_iter()
        .map(|range: Range<usize>| reference_words[range].join(" "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transcript_finds_its_part_of_the_text_as_written() {
        let parts = reference_parts(
            "The North Wind and the Sun were disputing which was the stronger, when a traveler came along.",
            &[
                "The north wind and the sun were disputing".to_string(),
                "which was the stronger when a traveller came along".to_string(),
            ],
        );
        assert_eq!(
            parts,
            vec![
                "The North Wind and the Sun were disputing".to_string(),
                "which was the stronger, when a traveler came along.".to_string()
            ]
        );
    }

    #[test]
    fn a_ten_minute_reading_may_take_fifteen_rounds_of_two_calls() {
        let longest = longest_assessment(Duration::from_secs(600), Duration::from_secs(30), 4);
        assert_eq!(longest, Duration::from_secs(15 * 2 * 30));
        assert_eq!(longest_assessment(Duration::from_secs(5), Duration::from_secs(30), 4), Duration::from_secs(60));
    }

    #[test]
    fn sample_counts_become_milliseconds() {
        assert_eq!(samples_to_ms(16_000), 1000);
        assert_eq!(samples_to_ms(480_000), 30_000);
    }
}
