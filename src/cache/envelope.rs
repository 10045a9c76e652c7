//! The stored form of every cached value, in every tier: JSON inside a small versioned envelope
//! that also carries the kind and the absolute expiry. A format change bumps `ENVELOPE_VERSION`,
//! and anything that does not open cleanly (old version, other kind, unreadable value, expired)
//! is a miss, never a misread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::key::Cacheable;

pub(crate) const ENVELOPE_VERSION: u32 = 1;

/// Ceiling for absurd configured TTLs.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Serialize)]
struct Outgoing<'a, T> {
    v: u32,
    kind: &'static str,
    expires_at_ms: u64,
    value: &'a T,
}

#[derive(Deserialize)]
struct Incoming<T> {
    v: u32,
    kind: String,
    expires_at_ms: u64,
    value: T,
}

/// Envelope bytes ready for any tier, with the expiry they carry.
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    pub bytes: Bytes,
    pub expires_at: SystemTime,
}

impl Sealed {
    /// Time left, `None` once expired.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at.duration_since(now).ok().filter(|left| !left.is_zero())
    }
}

pub(crate) enum Opened<T> {
    Fresh(T, Sealed),
    Expired,
    /// Not an envelope we wrote, or one of another version or kind, or a value of another shape.
    Invalid,
}

pub(crate) fn seal<T: Cacheable>(value: &T, ttl: Duration, now: SystemTime) -> Result<Sealed, serde_json::Error> {
    // A configured TTL beyond the clock's range means "as long as possible", not a panic.
    let expires_at = now.checked_add(ttl).unwrap_or_else(|| now + MAX_TTL);
    let envelope = Outgoing { v: ENVELOPE_VERSION, kind: T::KIND.as_str(), expires_at_ms: unix_ms(expires_at), value };
    Ok(Sealed { bytes: Bytes::from(serde_json::to_vec(&envelope)?), expires_at })
}

pub(crate) fn open<T: Cacheable>(bytes: Bytes, now: SystemTime) -> Opened<T> {
    let Ok(envelope) = serde_json::from_slice::<Incoming<T>>(&bytes) else {
        return Opened::Invalid;
    };
    if envelope.v != ENVELOPE_VERSION || envelope.kind != T::KIND.as_str() {
        return Opened::Invalid;
    }
    let expires_at = UNIX_EPOCH + Duration::from_millis(envelope.expires_at_ms);
    if expires_at <= now {
        return Opened::Expired;
    }
    Opened::Fresh(envelope.value, Sealed { bytes, expires_at })
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::speech::{Pronunciation, Transcription};

    fn transcription() -> Transcription {
        Transcription { text: "Hello.".into(), status: "Success".into(), ..Default::default() }
    }

    #[test]
    fn a_sealed_value_opens_to_the_same_value_until_it_expires() {
        let now = SystemTime::now();
        let sealed = seal(&transcription(), Duration::from_secs(60), now).expect("serialisable");
        match open::<Transcription>(sealed.bytes.clone(), now) {
            Opened::Fresh(value, _) => assert_eq!(value, transcription()),
            _ => panic!("a fresh envelope must open"),
        }
        assert!(matches!(open::<Transcription>(sealed.bytes, now + Duration::from_secs(61)), Opened::Expired));
    }

    #[test]
    fn another_kind_another_version_or_garbage_never_opens() {
        let now = SystemTime::now();
        let sealed = seal(&transcription(), Duration::from_secs(60), now).expect("serialisable");
        assert!(matches!(open::<Pronunciation>(sealed.bytes.clone(), now), Opened::Invalid));
        let text = String::from_utf8(sealed.bytes.to_vec()).expect("json");
        let bumped = text.replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(open::<Transcription>(Bytes::from(bumped), now), Opened::Invalid));
        assert!(matches!(open::<Transcription>(Bytes::from_static(b"\xff\x00{"), now), Opened::Invalid));
        let bare = serde_json::to_vec(&transcription()).expect("json");
        assert!(matches!(open::<Transcription>(Bytes::from(bare), now), Opened::Invalid));
    }

    #[test]
    fn an_absurd_ttl_means_a_long_life_not_a_panic() {
        let now = SystemTime::now();
        let sealed = seal(&transcription(), Duration::MAX, now).expect("serialisable");
        assert!(matches!(open::<Transcription>(sealed.bytes, now), Opened::Fresh(..)));
    }
}
