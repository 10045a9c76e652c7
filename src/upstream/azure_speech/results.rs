//! Short-audio recognition results as the contract's transcription and assessment.

use super::UPSTREAM;
use super::wire::{self, Alternative, RecognitionResponse, RecognitionStatus};
use crate::domain::reading::phonemes::{self, ProsodySignals};
use crate::domain::speech::{Mode, PhonemeCandidate, PhonemeScore, Pronunciation, Transcription, WordScore};
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
        mode: Mode::Scripted,
        reference_text: Some(reference_text.to_string()),
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
    assessment.completeness_score = best.score(|s| s.completeness_score);
    assessment.prosody_score = best.score(|s| s.prosody_score);
    assessment.pronunciation_score = best.score(|s| s.pron_score).unwrap_or(0.0);
    assessment.words = best
        .words
        .iter()
        .map(|word| {
            let error_type = word.error_type().unwrap_or("None").to_string();
            // A skipped word has no timing of its own (whatever Azure puts there).
            let skipped = error_type == "Omission";
            WordScore {
                word: word.word.clone(),
                accuracy_score: word.accuracy().unwrap_or(0.0),
                offset_ms: (!skipped).then(|| ticks_to_ms(word.offset)),
                duration_ms: (!skipped).then(|| ticks_to_ms(word.duration)),
                phonemes: if skipped { Vec::new() } else { word.phonemes.iter().map(phoneme).collect() },
                prosody: word.feedback.as_ref().and_then(|feedback| feedback.prosody.as_ref()).map(prosody),
                error_type,
            }
        })
        .collect();
    Ok(assessment)
}

fn phoneme(sound: &wire::Phoneme) -> PhonemeScore {
    let expected = sound.phoneme.clone().filter(|name| !name.is_empty());
    let mut candidates: Vec<PhonemeCandidate> = sound
        .candidates()
        .iter()
        .filter(|candidate| !candidate.phoneme.is_empty())
        .map(|candidate| PhonemeCandidate { phoneme: candidate.phoneme.clone(), score: candidate.score.unwrap_or(0.0) })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    PhonemeScore {
        said: phonemes::said_instead(expected.as_deref(), &candidates),
        phoneme: expected,
        accuracy_score: sound.accuracy().unwrap_or(0.0),
        offset_ms: sound.offset.map(|ticks| ticks_to_ms(Some(ticks))),
        duration_ms: sound.duration.map(|ticks| ticks_to_ms(Some(ticks))),
        candidates,
    }
}

fn prosody(feedback: &wire::ProsodyFeedback) -> crate::domain::speech::ProsodyFeedback {
    let pause = feedback.pause.as_ref();
    let intonation = feedback.intonation.as_ref();
    let error_types = pause
        .map(|pause| pause.error_types.iter())
        .into_iter()
        .flatten()
        .chain(intonation.map(|intonation| intonation.error_types.iter()).into_iter().flatten())
        .cloned()
        .collect();
    phonemes::feedback(ProsodySignals {
        error_types,
        unexpected_break: pause.and_then(|pause| pause.unexpected_break.as_ref()?.confidence),
        missing_break: pause.and_then(|pause| pause.missing_break.as_ref()?.confidence),
        monotone: intonation.and_then(|intonation| intonation.monotone.as_ref()?.confidence),
        break_length_ms: pause.and_then(|pause| pause.break_length).map(|ticks| ticks_to_ms(Some(ticks))),
    })
}
