//! What the contract returns for speech: a transcription and a pronunciation assessment.
//! Azure's wire shapes are private to `upstream::azure_speech`; these are ours.

use serde::{Deserialize, Serialize};

/// `data` of `POST /api/transcribe`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcription {
    /// Display form (punctuated, capitalised); `""` when no speech was recognised.
    pub text: String,
    /// Lexical form: the words as spoken, no punctuation.
    pub lexical: String,
    /// 0..1, of the best NBest alternative.
    pub confidence: f64,
    /// BCP-47 language the audio was recognised in.
    pub language: String,
    /// Azure's `RecognitionStatus`: `Success`, `NoMatch`, `InitialSilenceTimeout`, `BabbleTimeout`.
    pub status: String,
    pub offset_ms: u64,
    pub duration_ms: u64,
    /// `meta.provider` when not Azure (the transcription fallback made it). Not part of `data`
    /// and never stored: only Azure's transcripts are cached (their key names no provider).
    #[serde(skip)]
    pub provider: Option<crate::domain::provider::Provider>,
}

/// One word of a pronunciation assessment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WordScore {
    pub word: String,
    pub accuracy_score: f64,
    /// `None`, `Omission`, `Insertion`, `Mispronunciation`, ... as Azure names them.
    pub error_type: String,
    pub offset_ms: u64,
    pub duration_ms: u64,
}

/// `data` of `POST /api/pronunciation`. Scores are on Azure's HundredMark scale (0..100).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pronunciation {
    pub recognized_text: String,
    pub reference_text: String,
    pub accuracy_score: f64,
    pub fluency_score: f64,
    pub completeness_score: f64,
    /// Only when Azure assessed prosody (en-US).
    pub prosody_score: Option<f64>,
    pub pronunciation_score: f64,
    pub words: Vec<WordScore>,
    /// Azure's `RecognitionStatus`, as for transcription.
    pub status: String,
}
