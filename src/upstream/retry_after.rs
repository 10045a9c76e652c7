//! `Retry-After` (RFC 9110 10.2.3), read the same way for every upstream and every status that
//! carries it: 429, and 503 (or any other 5xx, or 408) from an overloaded service.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The header's wait, if it has a readable one.
pub(crate) fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|value| value.to_str().ok()).and_then(|value| parse(value, now))
}

/// Delta-seconds or an HTTP-date. A date in the past means "now". Anything else is ignored: the
/// retry layer then uses its own backoff.
pub(crate) fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn delta_seconds_and_http_dates_are_read() {
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
    }

    #[test]
    fn what_cannot_be_read_is_ignored() {
        let now = at(0);
        for value in ["", "-1", "1.5", "soon", "99999999999999999999999", "Sun, 99 Nov 1994"] {
            assert_eq!(parse(value, now), None, "{value:?}");
        }
    }
}
