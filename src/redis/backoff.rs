//! The back-off state of one part of Redis: pure, driven by the instants it is given, so its
//! rules are tested without a clock or a server.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Use Redis.
    Go,
    /// Use Redis as the one try after a back-off; the others skip until it reports.
    Trial,
    /// Backing off: do not touch Redis.
    Skip,
}

/// The back-off state: pure, driven by the instants it is given.
#[derive(Debug)]
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    /// Operations are skipped until then; `None` when Redis answered last.
    until: Option<Instant>,
    /// The length of the next back-off.
    next: Duration,
    /// A trial operation is in flight.
    pub(super) trial: bool,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max: max.max(initial), until: None, next: initial, trial: false }
    }

    pub(super) fn admit(&mut self, now: Instant) -> Admission {
        match self.until {
            None => Admission::Go,
            Some(until) if now < until => Admission::Skip,
            Some(_) if self.trial => Admission::Skip,
            Some(_) => {
                self.trial = true;
                Admission::Trial
            }
        }
    }

    /// No back-off runs: the last report was an answer (or there was none). Then `admit` says
    /// `Go` and `record(true)` changes nothing.
    pub(super) fn is_clear(&self) -> bool {
        self.until.is_none()
    }

    /// `reached`: Redis answered. A failure while a back-off is already running (operations
    /// that were in flight when Redis went away) neither extends nor escalates it: one outage,
    /// one step.
    pub(super) fn record(&mut self, reached: bool, now: Instant) {
        self.trial = false;
        if reached {
            self.until = None;
            self.next = self.initial;
            return;
        }
        if self.until.is_some_and(|until| now < until) {
            return;
        }
        self.until = Some(now.checked_add(self.next).unwrap_or(now));
        self.next = self.next.saturating_mul(2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::LinkOptions;

    const SECOND: Duration = Duration::from_secs(1);

    fn backoff() -> Backoff {
        Backoff::new(SECOND, 10 * SECOND)
    }

    #[test]
    fn after_a_failure_operations_are_skipped_until_the_back_off_ends() {
        let start = Instant::now();
        let mut backoff = backoff();
        assert_eq!(backoff.admit(start), Admission::Go);
        backoff.record(false, start);
        assert_eq!(backoff.admit(start), Admission::Skip);
        assert_eq!(backoff.admit(start + SECOND / 2), Admission::Skip);
        assert_eq!(backoff.admit(start + SECOND), Admission::Trial);
    }

    #[test]
    fn while_failures_continue_the_back_off_doubles_up_to_its_maximum() {
        let mut backoff = backoff();
        let mut now = Instant::now();
        let mut lengths = Vec::new();
        backoff.record(false, now);
        for _ in 0..6 {
            let until = backoff.until.expect("backing off");
            lengths.push((until - now).as_secs());
            now = until;
            assert_eq!(backoff.admit(now), Admission::Trial);
            backoff.record(false, now);
        }
        assert_eq!(lengths, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn one_success_ends_the_back_off_and_resets_its_length() {
        let start = Instant::now();
        let mut backoff = backoff();
        backoff.record(false, start);
        backoff.record(false, start + SECOND);
        backoff.record(true, start + 2 * SECOND);
        assert_eq!(backoff.admit(start + 2 * SECOND), Admission::Go);
        backoff.record(false, start + 3 * SECOND);
        assert_eq!(backoff.until, Some(start + 4 * SECOND), "back to the initial second");
    }

    #[test]
    fn failures_of_operations_in_flight_when_redis_went_away_count_as_one() {
        let start = Instant::now();
        let mut backoff = backoff();
        for late in 0..20 {
            backoff.record(false, start + Duration::from_millis(late));
        }
        assert_eq!(backoff.until, Some(start + SECOND));
        assert_eq!(backoff.next, 2 * SECOND);
    }

    #[test]
    fn after_a_back_off_one_operation_tries_while_the_others_keep_skipping() {
        let start = Instant::now();
        let mut backoff = backoff();
        backoff.record(false, start);
        let later = start + 2 * SECOND;
        assert_eq!(backoff.admit(later), Admission::Trial);
        assert_eq!(backoff.admit(later), Admission::Skip);
        backoff.record(true, later);
        assert_eq!(backoff.admit(later), Admission::Go);
    }

    #[test]
    fn by_default_the_back_off_stays_at_one_second_so_redis_returning_is_seen_within_it() {
        let options = LinkOptions::new(SECOND / 4);
        let mut backoff = Backoff::new(options.backoff_initial, options.backoff_max);
        let mut now = Instant::now();
        for _ in 0..10 {
            backoff.record(false, now);
            assert_eq!(backoff.until, Some(now + SECOND));
            now += SECOND;
            assert_eq!(backoff.admit(now), Admission::Trial);
        }
    }
}
