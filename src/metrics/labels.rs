//! The label values metrics share, one spelling each, so that a query can join one metric to
//! another (an operation's latency to its upstream's breaker, a tier's hits to its errors).
//! Every series of these labels is created from `ALL` at start-up (`Metrics::initialise_series`).

pub use crate::upstream::Upstream;

/// The `operation` label: what a request asked an upstream to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Transcribe,
    Pronunciation,
    Analyze,
}

impl Operation {
    pub const ALL: [Self; 3] = [Self::Transcribe, Self::Pronunciation, Self::Analyze];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transcribe => "transcribe",
            Self::Pronunciation => "pronunciation",
            Self::Analyze => "analyze",
        }
    }

    /// The upstream that serves it: also its `provider` label, spelled as the `upstream` and
    /// `service` labels of the same upstream are.
    pub const fn upstream(self) -> Upstream {
        match self {
            Self::Transcribe | Self::Pronunciation => Upstream::AzureSpeech,
            Self::Analyze => Upstream::Gemini,
        }
    }

    /// Operations that send audio to Azure (`audio_seconds_total`).
    pub const fn sends_audio(self) -> bool {
        matches!(self.upstream(), Upstream::AzureSpeech)
    }
}

/// The `tier` label of `cache_operations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Memory,
    Redis,
    Disk,
}

impl Tier {
    pub const ALL: [Self; 3] = [Self::Memory, Self::Redis, Self::Disk];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Disk => "disk",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_upstream_serves_an_operation_and_names_are_distinct() {
        // The OpenAI-compatible upstream is only ever a fallback, never an operation's first.
        for upstream in Upstream::ALL.into_iter().filter(|u| *u != Upstream::OpenAiCompatible) {
            assert!(Operation::ALL.iter().any(|operation| operation.upstream() == upstream), "{upstream:?}");
        }
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        names.extend(Upstream::ALL.iter().map(|u| u.as_str()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len() + Upstream::ALL.len());
    }
}
