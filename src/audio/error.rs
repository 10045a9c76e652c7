//! Why learner audio could not be taken in. Mapped to HTTP in `crate::error`.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// Neither WAV nor Ogg/Opus by its magic bytes.
    #[error("audio must be WAV (RIFF) or Ogg/Opus")]
    Unsupported,
    /// The audio host could not be reached or answered with an error status.
    #[error("audio_url could not be fetched: {0}")]
    Fetch(String),
    /// The audio host was too slow.
    #[error("audio_url did not answer in time")]
    Timeout,
    /// No audio at all: neither `audio_url` nor an `audio` file part, or an empty one.
    #[error("{0}")]
    Missing(String),
}
