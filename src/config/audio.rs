//! Recordings: how large and long they may be, how they are fetched, decoded and sent on, and
//! how many bytes of them one instance holds.
//!
//! Variables: `AUDIO_MAX_BYTES`, `AUDIO_MAX_SECONDS`, `AUDIO_SEND_FORMAT`, `AUDIO_WORKERS`,
//! `AUDIO_QUEUE_WAIT_SECONDS`, `AUDIO_FETCH_ALLOW_PRIVATE`, `AUDIO_FETCH_TIMEOUT_SECONDS`,
//! `AUDIO_BYTES_IN_FLIGHT`, `AUDIO_BYTES_WAIT_MS`.

use std::time::Duration;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::audio::SendFormat;
use crate::audio::fetch::FetchPolicy;

/// `AUDIO_BYTES_IN_FLIGHT`'s default: a quarter of the shipped 512 Mi pod limit, twelve of the
/// largest recordings, or hundreds of typical ones (a minute of browser Opus is ~250 KB).
const DEFAULT_AUDIO_BYTES_IN_FLIGHT: usize = 128 * 1024 * 1024;
/// `AUDIO_BYTES_WAIT_MS`'s default: long enough for a few requests to be answered and give
/// their bytes back, short enough that a client retrying after `Retry-After` loses little.
const DEFAULT_AUDIO_BYTES_WAIT_MS: u64 = 3000;

/// New `AUDIO_*` variables belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSettings {
    pub max_bytes: usize,
    pub fetch_allow_private: bool,
    pub fetch_timeout: Duration,
    /// `AUDIO_MAX_SECONDS`: longer recordings are refused (413).
    pub max_duration: Duration,
    pub send_format: SendFormat,
    /// Recordings normalised at once (CPU work, on the blocking pool).
    pub workers: usize,
    /// Longest a recording waits for a decoding worker before 503 `overloaded`.
    pub queue_wait: Duration,
    /// Bytes of recordings (uploads and downloads, and what they become) held at once.
    pub bytes_in_flight: usize,
    /// How long an audio request's next bytes wait for room in `bytes_in_flight` before it is
    /// answered 503 `overloaded`.
    pub bytes_wait: Duration,
}

impl AudioSettings {
    pub(super) fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let max_bytes = vars.number(AUDIO_MAX_BYTES, 10_485_760usize, 1)?;
        let bytes_in_flight = vars.number(AUDIO_BYTES_IN_FLIGHT, DEFAULT_AUDIO_BYTES_IN_FLIGHT, 1)?;
        let largest = crate::audio::budget::reservation(max_bytes);
        if bytes_in_flight < largest {
            return Err(invalid(
                AUDIO_BYTES_IN_FLIGHT,
                format!("must hold at least one largest recording ({largest} bytes with AUDIO_MAX_BYTES={max_bytes})"),
            ));
        }
        Ok(Self {
            max_bytes,
            fetch_allow_private: vars.boolean(AUDIO_FETCH_ALLOW_PRIVATE, false)?,
            fetch_timeout: vars.seconds(AUDIO_FETCH_TIMEOUT_SECONDS, 10, 1)?,
            max_duration: vars.seconds(AUDIO_MAX_SECONDS, 600, 1)?,
            send_format: match vars.get(AUDIO_SEND_FORMAT).map(|raw| raw.trim().to_ascii_lowercase()).as_deref() {
                None | Some("auto") => SendFormat::Auto,
                Some("wav") => SendFormat::Wav,
                Some(other) => return Err(invalid(AUDIO_SEND_FORMAT, format!("must be auto or wav (got {other:?})"))),
            },
            workers: vars.number(
                AUDIO_WORKERS,
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
                1,
            )?,
            queue_wait: vars.seconds(
                AUDIO_QUEUE_WAIT_SECONDS,
                crate::audio::prepare::DEFAULT_QUEUE_WAIT.as_secs(),
                0,
            )?,
            bytes_in_flight,
            bytes_wait: Duration::from_millis(vars.number(AUDIO_BYTES_WAIT_MS, DEFAULT_AUDIO_BYTES_WAIT_MS, 0)?),
        })
    }

    /// How `audio_url`s are downloaded.
    pub fn fetch_policy(&self) -> FetchPolicy {
        FetchPolicy {
            max_bytes: self.max_bytes,
            allow_private: self.fetch_allow_private,
            timeout: self.fetch_timeout,
            max_redirects: 3,
            allowed_addresses: Vec::new(),
        }
    }

    /// What a recording may be, and what Azure gets of it.
    pub fn policy(&self) -> crate::audio::Policy {
        crate::audio::Policy { max_duration: self.max_duration, send: self.send_format }
    }
}
