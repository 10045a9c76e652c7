//! UTC days: what a count is filed under, how long it is kept, when budgets reset.

use std::time::{Duration, SystemTime};

use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// `YYYY-MM-DD`, the only form `GET /api/usage` takes and the one Redis keys carry.
const ISO_DATE: &[time::format_description::BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(Date);

impl Day {
    pub fn of(at: SystemTime) -> Self {
        Self(OffsetDateTime::from(at).date())
    }

    pub fn today() -> Self {
        Self::of(SystemTime::now())
    }

    /// Strictly `YYYY-MM-DD` (zero-padded, a real calendar date).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 10 {
            return None;
        }
        Date::parse(text, ISO_DATE).ok().map(Self)
    }

    /// `days` before this one (saturating at the calendar's start).
    pub fn minus_days(self, days: u32) -> Self {
        Self(self.0.checked_sub(time::Duration::days(i64::from(days))).unwrap_or(Date::MIN))
    }

    pub fn next(self) -> Option<Self> {
        self.0.next_day().map(Self)
    }

    /// Days from `self` to `later`, both ends included; 0 when `later` is before.
    pub fn days_through(self, later: Day) -> i64 {
        (later.0 - self.0).whole_days() + 1
    }

    /// Unix time of this day's first second.
    fn start(self) -> i64 {
        self.0.midnight().assume_utc().unix_timestamp()
    }

    /// Unix time at which a count filed under this day may go: `retention_days` whole days
    /// after the day ends.
    pub fn expires_at(self, retention_days: u32) -> i64 {
        self.start() + (i64::from(retention_days) + 1) * 86_400
    }

    /// `Retry-After` of a budget refusal: until the next UTC midnight, at least a second.
    pub fn until_next_midnight(now: SystemTime) -> Duration {
        let day = Self::of(now);
        let midnight = day.start() + 86_400;
        let now_secs = OffsetDateTime::from(now).unix_timestamp();
        Duration::from_secs(u64::try_from(midnight - now_secs).unwrap_or(1).max(1))
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.format(ISO_DATE).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn only_real_zero_padded_dates_parse() {
        assert_eq!(Day::parse("2026-12-07").map(|d| d.to_string()).as_deref(), Some("2026-12-07"));
        for bad in ["2026-2-07", "2026-02-30", "07-12-2026", "2026-12-07T00:00", "", "yesterday", "+2026-12-07"] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_day_is_kept_for_its_retention_after_it_ends_and_budgets_reset_at_midnight() {
        // 2026-12-07T23:59:00Z
        let late = at(1_796_687_940);
        let day = Day::of(late);
        assert_eq!(day.to_string(), "2026-12-07");
        assert_eq!(Day::until_next_midnight(late), Duration::from_secs(60));
        assert_eq!(day.expires_at(35), 1_796_601_600 + 36 * 86_400);
        assert_eq!(day.days_through(Day::parse("2027-03-08").expect("date")), 92);
    }
}
