//! Content-addressed cache keys: what decides an answer, hashed. Audio is keyed by its bytes as
//! uploaded, through their SHA-256 (`Audio::digest`, computed once per upload), never its URL (the
//! same URL can serve different audio, and different URLs the same audio), plus the normaliser's
//! version and `AUDIO_SEND_FORMAT`, which decide what Azure was sent;
//! text by its normalised form plus the model and prompt version that shape the analysis.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::analysis::model::{AnalysisOutcome, MadeBy, ParseQuality};
use crate::audio::NORMALISER_VERSION;
use crate::domain::jobs::{AnalyzeJob, PronunciationJob, TranscribeJob, normalise_text};
use crate::domain::speech::{Pronunciation, Transcription};
use crate::metrics::labels::Operation;

/// Bump when the meaning of a key's inputs changes; old entries then simply stop matching.
pub const KEY_NAMESPACE: &str = "backend-ai:v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    Transcription,
    Pronunciation,
    Analysis,
}

impl CacheKind {
    /// The segment in a rendered key and in the value envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transcription => "transcription",
            Self::Pronunciation => "pronunciation",
            Self::Analysis => "analysis",
        }
    }

    /// The contract's `operation` label for metrics.
    pub fn operation(self) -> &'static str {
        match self {
            Self::Transcription => Operation::Transcribe,
            Self::Pronunciation => Operation::Pronunciation,
            Self::Analysis => Operation::Analyze,
        }
        .as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    kind: CacheKind,
    /// The rendered key, whose tail from `digest_at` is the digest: one string, not two (every
    /// request, hits included, makes its key).
    rendered: String,
    digest_at: usize,
}

impl CacheKey {
    /// `digest` is the hex SHA-256 of the inputs that decide the answer.
    pub fn new(kind: CacheKind, digest: &str) -> Self {
        let kind_name = kind.as_str();
        let mut rendered = String::with_capacity(KEY_NAMESPACE.len() + kind_name.len() + digest.len() + 2);
        for part in [KEY_NAMESPACE, ":", kind_name, ":"] {
            rendered.push_str(part);
        }
        let digest_at = rendered.len();
        rendered.push_str(digest);
        Self { kind, rendered, digest_at }
    }

    pub fn kind(&self) -> CacheKind {
        self.kind
    }

    pub fn digest(&self) -> &str {
        &self.rendered[self.digest_at..]
    }

    /// `backend-ai:v1:{kind}:{sha256hex}`: the Redis key and the disk index key.
    pub fn as_str(&self) -> &str {
        &self.rendered
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

/// A job that can name the cache entry for its answer.
pub trait CacheKeyed {
    fn cache_key(&self) -> CacheKey;

    /// Every entry that may already answer this job, in order of preference, each with the
    /// key segment of the model whose entry it is (see [`Cacheable::key_model`]): a fallback
    /// chain's links' keys after the first one's. A job served by one upstream has its own.
    fn chain_keys(&self) -> Vec<(Option<String>, CacheKey)> {
        self.chain_keys_from(self.cache_key())
    }

    /// `chain_keys`, given the job's own key (`cache_key`) already made.
    fn chain_keys_from(&self, own: CacheKey) -> Vec<(Option<String>, CacheKey)> {
        vec![(None, own)]
    }
}

/// A result type the cache may hold.
pub trait Cacheable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: CacheKind;

    /// What a response sends of the value as `data`: the memory tier keeps it encoded (see
    /// [`super::answer`]).
    type Data: Serialize + ?Sized;

    fn data(&self) -> &Self::Data;

    /// Whether this particular value may be stored (e.g. never a fallback analysis).
    fn is_cacheable(&self) -> bool {
        true
    }

    /// The key segment of the model that made this value, when another than the job's own
    /// may have: it is stored under that model's key, never under the job's first one.
    fn key_model(&self) -> Option<Cow<'_, str>> {
        None
    }
}

/// Where an answer is stored, among a job's [`CacheKeyed::chain_keys`]: under the key of the
/// model that made it, or the first key when it names no maker. A maker outside the chain has
/// no key of its own here: such an answer is not stored (under another model's key it would be
/// served as that model's).
pub fn answer_key<'k, R: Cacheable>(keys: &'k [(Option<String>, CacheKey)], answer: &R) -> Option<&'k CacheKey> {
    match answer.key_model() {
        Some(model) => keys.iter().find(|(owner, _)| owner.as_deref() == Some(&*model)).map(|(_, key)| key),
        None => keys.first().map(|(_, key)| key),
    }
}

/// Feeds fields into a hash with a length prefix each, so `("ab", "c")` and `("a", "bc")`
/// never collide.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn new(kind: CacheKind) -> Self {
        let mut hasher = Self(Sha256::new());
        hasher.field(kind.as_str().as_bytes());
        hasher
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    fn finish(self, kind: CacheKind) -> CacheKey {
        let mut digest = [0u8; 64];
        // 32 bytes always fit 64 hex digits, which are ASCII.
        let digest = match hex::encode_to_slice(self.0.finalize(), &mut digest) {
            Ok(()) => std::str::from_utf8(&digest).unwrap_or_default(),
            Err(_) => "",
        };
        CacheKey::new(kind, digest)
    }
}

impl CacheKeyed for TranscribeJob {
    fn cache_key(&self) -> CacheKey {
        let kind = CacheKind::Transcription;
        let mut hasher = KeyHasher::new(kind);
        hasher
            .field(self.audio.digest())
            .field(NORMALISER_VERSION.as_bytes())
            .field(self.audio.send_format().as_str().as_bytes())
            .field(self.language.as_bytes());
        hasher.finish(kind)
    }
}

impl CacheKeyed for PronunciationJob {
    fn cache_key(&self) -> CacheKey {
        let kind = CacheKind::Pronunciation;
        let mut hasher = KeyHasher::new(kind);
        hasher
            .field(self.audio.digest())
            .field(NORMALISER_VERSION.as_bytes())
            .field(self.audio.send_format().as_str().as_bytes())
            .field(self.language.as_bytes())
            // A free-speech assessment is not one against an empty text; and results of an older
            // shape (before whole readings) are not served as this one's.
            .field(if self.reference_text.is_some() { b"scripted" } else { b"unscripted" })
            .field(self.reference_text.as_deref().unwrap_or_default().as_bytes())
            .field(crate::domain::reading::RESULT_VERSION.as_bytes());
        hasher.finish(kind)
    }
}

impl CacheKeyed for AnalyzeJob {
    fn cache_key(&self) -> CacheKey {
        let kind = CacheKind::Analysis;
        let mut hasher = KeyHasher::new(kind);
        // Normalising again keeps a hand-built job from splitting the cache. Jobs made by
        // `AnalyzeJob::new` already are normalised, and checking costs less than redoing it (a
        // cached hit computes this key on every request).
        let text =
            if is_normalised(&self.text) { Cow::Borrowed(&self.text) } else { Cow::Owned(normalise_text(&self.text)) };
        hasher.field(text.as_bytes()).field(self.model.as_bytes()).field(self.prompt_version.as_bytes());
        hasher.finish(kind)
    }

    fn chain_keys_from(&self, own: CacheKey) -> Vec<(Option<String>, CacheKey)> {
        let own = (Some(self.model.clone()), own);
        let later = self.fallbacks.iter().map(|model| {
            let job = AnalyzeJob {
                text: self.text.clone(),
                model: model.clone(),
                prompt_version: self.prompt_version,
                fallbacks: Default::default(),
            };
            (Some(model.clone()), job.cache_key())
        });
        std::iter::once(own).chain(later).collect()
    }
}

/// Whether `normalise_text` would give `text` back unchanged: no whitespace at either end, and
/// whitespace inside only as single ASCII spaces.
fn is_normalised(text: &str) -> bool {
    // Starting as if after a space rejects leading whitespace with the same rule.
    let mut after_space = true;
    for character in text.chars() {
        if character.is_whitespace() {
            if character != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    text.is_empty() || !after_space
}

impl Cacheable for Transcription {
    const KIND: CacheKind = CacheKind::Transcription;
    type Data = Self;

    fn data(&self) -> &Self {
        self
    }

    /// A fallback's transcript would be served as Azure's from a key that names no provider.
    fn is_cacheable(&self) -> bool {
        self.provider.is_none()
    }
}

impl Cacheable for Pronunciation {
    const KIND: CacheKind = CacheKind::Pronunciation;
    type Data = Self;

    fn data(&self) -> &Self {
        self
    }
}

impl Cacheable for AnalysisOutcome {
    const KIND: CacheKind = CacheKind::Analysis;
    type Data = crate::analysis::model::Analysis;

    fn data(&self) -> &Self::Data {
        &self.analysis
    }

    /// A fallback says "the model's reply was unreadable", not "this is the analysis": the
    /// next request deserves a fresh try.
    fn is_cacheable(&self) -> bool {
        self.parse != ParseQuality::Fallback
    }

    fn key_model(&self) -> Option<Cow<'_, str>> {
        self.made_by.as_ref().map(MadeBy::key_model)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::audio::{Audio, Policy, Purpose, SendFormat, wav};

    fn wav_as(payload: &[u8], send: SendFormat) -> Audio {
        let samples: Vec<i16> = payload.iter().map(|&byte| i16::from(byte) * 100).collect();
        let policy = Policy { max_duration: std::time::Duration::from_secs(600), send };
        Audio::normalise(Bytes::from(wav::encode(&samples)), Purpose::Transcription, policy).expect("a WAV")
    }

    fn wav(payload: &[u8]) -> Audio {
        wav_as(payload, SendFormat::Auto)
    }

    fn analyze(text: &str, model: &str, prompt_version: &'static str) -> AnalyzeJob {
        AnalyzeJob { text: text.to_string(), model: model.to_string(), prompt_version, fallbacks: Default::default() }
    }

    #[test]
    fn the_normalised_check_agrees_with_normalising() {
        for text in [
            "",
            " ",
            "I go",
            "I  go",
            " I go",
            "I go ",
            "I\tgo",
            "I\ngo",
            "I\u{a0}go",
            "I \u{2003}go",
            "élève à l'école",
            "a",
        ] {
            assert_eq!(is_normalised(text), normalise_text(text) == text, "{text:?}");
        }
    }

    #[test]
    fn texts_differing_only_in_whitespace_share_a_key() {
        let a = AnalyzeJob::new("  I go to\tthe store\n", "gemini-2.5-flash").cache_key();
        let b = AnalyzeJob::new("I go to the store", "gemini-2.5-flash").cache_key();
        assert_eq!(a, b);
        assert_eq!(
            analyze("I  go to the store", "m", "p1").cache_key(),
            analyze("I go to the store", "m", "p1").cache_key()
        );
    }

    #[test]
    fn a_different_model_or_prompt_version_or_text_is_a_different_key() {
        let base = analyze("I go to the store", "m1", "p1").cache_key();
        assert_ne!(base, analyze("I go to the store", "m2", "p1").cache_key());
        assert_ne!(base, analyze("I go to the store", "m1", "p2").cache_key());
        assert_ne!(base, analyze("I went to the store", "m1", "p1").cache_key());
    }

    #[test]
    fn audio_is_keyed_by_its_bytes_and_language() {
        let job = |audio: Audio, language: &str| TranscribeJob { audio, language: language.to_string() };
        let same = job(wav(b"same"), "en-US").cache_key();
        assert_eq!(same, job(wav(b"same"), "en-US").cache_key());
        assert_ne!(same, job(wav(b"other"), "en-US").cache_key());
        assert_ne!(same, job(wav(b"same"), "en-GB").cache_key());
        // What was sent for the same bytes can differ with AUDIO_SEND_FORMAT.
        assert_ne!(same, job(wav_as(b"same", SendFormat::Wav), "en-US").cache_key());
    }

    #[test]
    fn pronunciation_keys_depend_on_the_reference_text() {
        let job = |reference: &str| PronunciationJob {
            audio: wav(b"same"),
            language: "en-US".to_string(),
            reference_text: Some(reference.to_string()),
        };
        assert_eq!(job("Hello world").cache_key(), job("Hello world").cache_key());
        assert_ne!(job("Hello world").cache_key(), job("Hello there").cache_key());
        let free = PronunciationJob { reference_text: None, ..job("") };
        assert_ne!(free.cache_key(), job("").cache_key(), "free speech is not an empty script");
    }

    #[test]
    fn the_same_audio_for_transcription_and_pronunciation_never_shares_a_key() {
        let transcribe = TranscribeJob { audio: wav(b"a"), language: "en-US".to_string() }.cache_key();
        let pronounce =
            PronunciationJob { audio: wav(b"a"), language: "en-US".to_string(), reference_text: None }.cache_key();
        assert_ne!(transcribe.as_str(), pronounce.as_str());
    }

    #[test]
    fn rendered_keys_are_namespaced_and_versioned() {
        let key = analyze("x", "m", "p").cache_key();
        let rendered = key.as_str();
        assert!(rendered.starts_with("backend-ai:v1:analysis:"), "{rendered}");
        assert_eq!(key.digest().len(), 64);
        assert!(key.digest().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_fallback_analysis_is_never_cacheable() {
        let outcome =
            |parse| AnalysisOutcome { analysis: Default::default(), parse, tokens: Default::default(), made_by: None };
        assert!(!outcome(ParseQuality::Fallback).is_cacheable());
        assert!(outcome(ParseQuality::Clean).is_cacheable());
        assert!(outcome(ParseQuality::Repaired).is_cacheable());
    }

    #[test]
    fn an_analysis_is_stored_under_the_key_of_the_model_that_made_it() {
        use crate::analysis::model::Provider;
        let mut job = analyze("I go home.", "gemini-2.5-flash", "p");
        job.fallbacks = vec!["gemini-2.5-flash-lite".to_string(), "openai_compatible:qwen".to_string()].into();
        let made = |model: &str, provider| AnalysisOutcome {
            analysis: Default::default(),
            parse: ParseQuality::Clean,
            made_by: Some(MadeBy { model: model.into(), provider }),
            tokens: Default::default(),
        };
        let keys = job.chain_keys();
        let key = |outcome: &AnalysisOutcome| answer_key(&keys, outcome).expect("a key").clone();
        let primary = key(&made("gemini-2.5-flash", Provider::Gemini));
        let lite = key(&made("gemini-2.5-flash-lite", Provider::Gemini));
        let qwen = key(&made("qwen", Provider::OpenaiCompatible));
        // The primary's key is what it always was; each fallback has its own, looked up in order.
        assert_eq!(primary, analyze("I go home.", "gemini-2.5-flash", "p").cache_key());
        let in_order: Vec<CacheKey> = keys.iter().map(|(_, key)| key.clone()).collect();
        assert_eq!(in_order, vec![primary.clone(), lite.clone(), qwen.clone()]);
        assert_ne!(lite, primary);
        // The same id served by an OpenAI-compatible server is not Gemini's entry, and a maker
        // outside the chain has no entry at all.
        assert_eq!(answer_key(&keys, &made("gemini-2.5-flash", Provider::OpenaiCompatible)), None);
        // Entries from before chains (no maker) sit under the job's own key.
        assert_eq!(key(&AnalysisOutcome { made_by: None, ..made("x", Provider::Gemini) }), primary);
    }
}
