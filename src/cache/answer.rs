//! What the cache and single-flight layer hand up: an answer as a value, or as the memory tier
//! keeps it, with the JSON of its `data` already written.
//!
//! A memory hit is the hot path: most requests for a popular text end here. Decoding the stored
//! JSON into `R` (three `#[serde(flatten)]` maps for an analysis) only to encode it again into
//! the response was most of a hit's own work. So a value entering the memory tier is encoded
//! once, there, into the `data` it will be sent as; every hit after that splices those bytes
//! into its envelope and reads what else it needs (who made it, how it was parsed) from the
//! decoded value kept beside them.

use std::ops::Deref;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::key::Cacheable;

/// A value as the memory tier holds it, shared by every hit on it. One this instance just made
/// still carries what its call cost (`tokens`, `sent`: never stored); only the request whose own
/// call it was reads those (`Origin::Upstream`), so a hit on it is charged nothing.
#[derive(Debug)]
pub struct Kept<R> {
    value: R,
    /// `R::data` as JSON, exactly as the response encodes it: checked once, on the way in.
    data: Box<RawValue>,
    expires_at: SystemTime,
    /// Charged against `CACHE_MEMORY_MAX_BYTES`: the JSON once for `data`, once more for what
    /// the decoded value holds on the heap (about as much as its JSON, measured loosely).
    weight: usize,
}

impl<R: Cacheable> Kept<R> {
    /// `stored_len`: the size of the envelope the value was stored as, the measure of the
    /// decoded value's own weight.
    pub(crate) fn new(value: R, expires_at: SystemTime, stored_len: usize) -> Result<Self, (R, serde_json::Error)> {
        match serde_json::value::to_raw_value(value.data()) {
            Ok(data) => {
                let weight = stored_len.saturating_add(data.get().len());
                Ok(Self { value, data, expires_at, weight })
            }
            Err(error) => Err((value, error)),
        }
    }

    pub fn value(&self) -> &R {
        &self.value
    }

    /// The response's `data`, ready to send.
    pub fn data(&self) -> &RawValue {
        &self.data
    }

    pub(crate) fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    pub(crate) fn weight(&self) -> usize {
        self.weight
    }
}

/// An answer as the cached flight layer serves it. Reads as the value (`Deref`); serialises as
/// the response's `data` (`Cacheable::data`), from the kept bytes when there are some.
#[derive(Debug, Clone)]
pub enum Answer<R> {
    /// Decoded or just made: encoded when it is sent.
    Value(R),
    /// The memory tier's copy (or one just put there): its `data` is sent as kept.
    Kept(Arc<Kept<R>>),
}

impl<R: Cacheable> Answer<R> {
    /// The value itself: moved out when this is its only holder, else cloned.
    pub fn into_value(self) -> R {
        match self {
            Self::Value(value) => value,
            Self::Kept(kept) => Arc::try_unwrap(kept).map_or_else(|shared| shared.value.clone(), |kept| kept.value),
        }
    }
}

impl<R> Deref for Answer<R> {
    type Target = R;

    fn deref(&self) -> &R {
        match self {
            Self::Value(value) => value,
            Self::Kept(kept) => &kept.value,
        }
    }
}

/// Equal when the values are, kept or not.
impl<R: PartialEq> PartialEq for Answer<R> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<R: PartialEq> PartialEq<R> for Answer<R> {
    fn eq(&self, other: &R) -> bool {
        **self == *other
    }
}

impl<R: Cacheable> Serialize for Answer<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(value) => value.data().serialize(serializer),
            Self::Kept(kept) => kept.data.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analysis::model::{AnalysisOutcome, GrammarError, ParseQuality};

    fn outcome() -> AnalysisOutcome {
        let mut error = GrammarError { kind: "grammar".into(), text: "go".into(), ..Default::default() };
        error.extra.insert("severity".into(), serde_json::json!("high"));
        let mut outcome = AnalysisOutcome {
            analysis: Default::default(),
            parse: ParseQuality::Clean,
            made_by: None,
            tokens: Default::default(),
        };
        outcome.analysis.errors.push(error);
        outcome.analysis.cefr_assessment.confidence = Some(0.1 + 0.2);
        outcome
    }

    #[test]
    fn a_kept_answer_sends_the_same_data_as_the_value_it_keeps() {
        let kept =
            Kept::new(outcome(), SystemTime::now() + Duration::from_secs(60), 10).map_err(|(_, e)| e).expect("encodes");
        let spliced = serde_json::to_string(&Answer::Kept(Arc::new(kept))).expect("encodes");
        let encoded = serde_json::to_string(&Answer::Value(outcome())).expect("encodes");
        assert_eq!(spliced, encoded);
        assert_eq!(encoded, serde_json::to_string(&outcome().analysis).expect("encodes"));
    }
}
