//! Why learner audio could not be taken in. Mapped to HTTP in `crate::error`.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AudioError {
    /// Not a usable URL: unparsable, not http/https, credentials in it, no host.
    #[error("audio_url is not valid: {0}")]
    InvalidUrl(String),
    /// The URL (or a redirect hop) points at loopback, private, link-local or metadata space.
    #[error("audio_url is not allowed: {0}")]
    Forbidden(String),
    /// Larger than `AUDIO_MAX_BYTES`.
    #[error("audio is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Longer than `AUDIO_MAX_SECONDS`. `seconds` when its whole length was measured (decoding
    /// stops at the limit).
    #[error("the recording is {}; at most {limit} s are accepted", length(*.seconds, *.limit))]
    TooLong { seconds: Option<f64>, limit: u64 },
    /// Longer than the operation itself allows (pronunciation assessment: 30 s).
    #[error("{operation} takes at most {limit} s of audio; this recording is {}", length(*.seconds, *.limit))]
    TooLongFor { operation: &'static str, seconds: Option<f64>, limit: u64 },
    /// No container or codec the service reads: what was found, in words.
    #[error("audio must be {accepted}; this is {found}", accepted = super::detect::ACCEPTED)]
    Unsupported { found: String },
    /// A container the service reads whose bytes do not hold together.
    #[error("the {container} recording is damaged: {reason}")]
    Damaged { container: &'static str, reason: String },
    /// The audio host could not be reached or answered with an error status.
    #[error("audio_url could not be fetched: {0}")]
    Fetch(String),
    /// The audio host was too slow.
    #[error("audio_url did not answer in time")]
    Timeout,
    /// No audio at all: neither `audio_url` nor an `audio` file part, or an empty one.
    #[error("{0}")]
    Missing(String),
    /// The recordings' memory budget (`AUDIO_BYTES_IN_FLIGHT`) stayed full while the recording's
    /// next bytes waited for room (`AUDIO_BYTES_WAIT_MS`), or every decoding worker stayed busy
    /// for all of `AUDIO_QUEUE_WAIT_SECONDS`: the service's state, not the learner's fault.
    #[error("the service is busy with other recordings; try again shortly")]
    Overloaded,
}

impl AudioError {
    pub fn damaged(container: &'static str, reason: impl Into<String>) -> Self {
        Self::Damaged { container, reason: reason.into() }
    }

    pub fn unsupported(found: impl Into<String>) -> Self {
        Self::Unsupported { found: found.into() }
    }
}

fn length(seconds: Option<f64>, limit: u64) -> String {
    match seconds {
        Some(seconds) => format!("{seconds:.1} s long"),
        None => format!("longer than {limit} s"),
    }
}
