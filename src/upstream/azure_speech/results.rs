//! Short-audio recognition results as the contract's transcription and assessment.

use super::UPSTREAM;
use super::wire::{Alternative, RecognitionResponse, RecognitionStatus};
use crate::domain::speech::{Pronunciation, Transcription, WordScore};
use crate::upstream::UpstreamError;

/// Offsets and durations are in 100-ns ticks.
const TICKS_PER_MS: f64 = 10_000.0;

fn ticks_to_ms(ticks: Option<f64>) -> u64 {
    // Float-to-int `as` saturates (negative and NaN give 0), so no input can overflow here.
    (ticks.unwrap_or(0.0) / TICKS_PER_MS).round() as u64
}

/// The in-body `Error` status is Azure's "try again if possible": a transient server failure.
fn reject_error_status(response: &RecognitionResponse) -> Result<(), UpstreamError> {
    if response.recognition_status == RecognitionStatus::Error {
        return Err(UpstreamError::Server {
            upstream: UPSTREAM,
            status: 200,
            message: "RecognitionStatus Error: the service could not continue".to_string(),
            retry_after: None,
        });
    }
    Ok(())
}

/// No speech: the known statuses that mean "nothing recognised" carry no result to read.
fn no_speech(status: &RecognitionStatus) -> bool {
    matches!(
        status,
        RecognitionStatus::NoMatch | RecognitionStatus::InitialSilenceTimeout | RecognitionStatus::BabbleTimeout
    )
}

/// The alternative with the highest confidence; NBest is not sorted. Ties keep the first.
fn best(response: &RecognitionResponse) -> Option<&Alternative> {
    response.n_best.iter().fold(None, |best, candidate| match best {
        Some(best)
            if candidate.confidence.unwrap_or(f64::NEG_INFINITY) <= best.confidence.unwrap_or(f64::NEG_INFINITY) =>
        {
            Some(best)
        }
        _ => Some(candidate),
    })
}

pub(super) fn transcription(response: RecognitionResponse, language: &str) -> Result<Transcription, UpstreamError> {
    reject_error_status(&response)?;
    let mut transcription = Transcription {
        language: language.to_string(),
        status: response.recognition_status.as_str().to_string(),
        offset_ms: ticks_to_ms(response.offset),
        duration_ms: ticks_to_ms(response.duration),
        ..Transcription::default()
    };
    if no_speech(&response.recognition_status) {
        return Ok(transcription);
    }
    match best(&response) {
        Some(best) => {
            transcription.text = best.display.clone().or_else(|| response.display_text.clone()).unwrap_or_default();
            transcription.lexical = best.lexical.clone().unwrap_or_default();
            transcription.confidence = best.confidence.unwrap_or(0.0);
        }
        // Simple format: no lexical form or confidence exists; the display text is the
        // closest thing to a lexical form we have.
        None => {
            transcription.text = response.display_text.clone().unwrap_or_default();
            transcription.lexical = transcription.text.clone();
        }
    }
    Ok(transcription)
}

pub(super) fn pronunciation(
    response: RecognitionResponse,
    reference_text: &str,
) -> Result<Pronunciation, UpstreamError> {
    reject_error_status(&response)?;
    let mut assessment = Pronunciation {
        reference_text: reference_text.to_string(),
        status: response.recognition_status.as_str().to_string(),
        ..Pronunciation::default()
    };
    if no_speech(&response.recognition_status) {
        return Ok(assessment);
    }
    // A result without scores means no assessment happened; zeros would tell the learner they
    // scored nothing.
    let Some(best) = best(&response).filter(|best| best.score(|s| s.pron_score.or(s.accuracy_score)).is_some()) else {
        return Err(UpstreamError::InvalidResponse {
            upstream: UPSTREAM,
            message: "a pronunciation result without scores".to_string(),
        });
    };
    assessment.recognized_text = best.display.clone().or_else(|| response.display_text.clone()).unwrap_or_default();
    assessment.accuracy_score = best.score(|s| s.accuracy_score).unwrap_or(0.0);
    assessment.fluency_score = best.score(|s| s.fluency_score).unwrap_or(0.0);
    assessment.completeness_score = best.score(|s| s.completeness_score).unwrap_or(0.0);
    assessment.prosody_score = best.score(|s| s.prosody_score);
    assessment.pronunciation_score = best.score(|s| s.pron_score).unwrap_or(0.0);
    assessment.words = best
        .words
        .iter()
        .map(|word| WordScore {
            word: word.word.clone(),
            accuracy_score: word.accuracy().unwrap_or(0.0),
            error_type: word.error_type().unwrap_or("None").to_string(),
            offset_ms: ticks_to_ms(word.offset),
            duration_ms: ticks_to_ms(word.duration),
        })
        .collect();
    Ok(assessment)
}
