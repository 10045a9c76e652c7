//! Per-user daily budgets (`USER_DAILY_AUDIO_SECONDS`, `USER_DAILY_TOKENS`; 0 = off) and the
//! allowance a request carries to the point where it would call an upstream.
//!
//! A call's cost is known only after it, so a request is refused when its user's day has
//! *already reached* a budget: the request that reaches it is answered, the next is refused, and
//! a user can pass a budget by at most the requests already in flight when it was reached (their
//! counts land after they are answered). A cache hit never reaches the check: it costs nothing.
//!
//! The allowance reads the day's spending once, lazily, at the first upstream call the request
//! would make: a request answered from the cache pays no Redis read for its budget.

use std::sync::{Arc, OnceLock};

use super::Usage;
use super::day::Day;
use super::record::Spent;
use crate::metrics::labels::Operation;

/// Which budget: also the `budget` label of `budget_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    AudioSeconds,
    Tokens,
}

impl Budget {
    pub const ALL: [Self; 2] = [Self::AudioSeconds, Self::Tokens];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AudioSeconds => "audio_seconds",
            Self::Tokens => "tokens",
        }
    }

    /// The budget an operation spends: audio sent to Azure, or tokens of an LLM.
    pub const fn of(operation: Operation) -> Self {
        match operation {
            Operation::Transcribe | Operation::Pronunciation => Self::AudioSeconds,
            Operation::Analyze => Self::Tokens,
        }
    }
}

/// Daily limits per user; 0 = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    pub audio_seconds: u64,
    pub tokens: u64,
}

impl Budgets {
    pub fn limit(&self, budget: Budget) -> u64 {
        match budget {
            Budget::AudioSeconds => self.audio_seconds,
            Budget::Tokens => self.tokens,
        }
    }

    /// Whether `spent` has reached `budget` (never, when it is off).
    pub fn reached(&self, budget: Budget, spent: Spent) -> bool {
        match (budget, self.limit(budget)) {
            (_, 0) => false,
            (Budget::AudioSeconds, limit) => spent.audio_ms >= limit.saturating_mul(1000),
            (Budget::Tokens, limit) => spent.tokens >= limit,
        }
    }

    /// The refusal's message: which budget, and when it resets.
    pub fn message(&self, budget: Budget) -> String {
        match budget {
            Budget::AudioSeconds => format!(
                "Daily audio budget exceeded: {} seconds of audio per user per day (USER_DAILY_AUDIO_SECONDS); it resets at 00:00 UTC",
                self.audio_seconds
            ),
            Budget::Tokens => format!(
                "Daily token budget exceeded: {} tokens per user per day (USER_DAILY_TOKENS); it resets at 00:00 UTC",
                self.tokens
            ),
        }
    }
}

/// A request's standing against its user's budgets, carried to the upstream call inside the
/// request's admission (`rate_limit::Admission::with_allowance`). Cheap to clone.
#[derive(Clone)]
pub struct Allowance(Arc<Inner>);

struct Inner {
    usage: Usage,
    user: String,
    day: Day,
    spent: tokio::sync::OnceCell<Spent>,
    refused: OnceLock<Budget>,
}

impl Allowance {
    pub fn new(usage: Usage, user: String, day: Day) -> Self {
        Self(Arc::new(Inner { usage, user, day, spent: tokio::sync::OnceCell::new(), refused: OnceLock::new() }))
    }

    /// May the request make an upstream call for `operation`? A refusal is remembered for the
    /// usage layer, which answers 429 `budget_exceeded` in place of whatever it became.
    pub async fn admits(&self, operation: Operation) -> bool {
        let inner = &self.0;
        let budget = Budget::of(operation);
        let budgets = inner.usage.budgets();
        if budgets.limit(budget) == 0 {
            return true;
        }
        let spent = *inner.spent.get_or_init(|| inner.usage.spent(&inner.user, inner.day)).await;
        if !budgets.reached(budget, spent) {
            return true;
        }
        if inner.refused.set(budget).is_ok() {
            inner.usage.metrics().budget_refusals_total.with_label_values(&[budget.as_str()]).inc();
        }
        false
    }

    /// The budget that refused an upstream call of this request, if one did.
    pub fn refusal(&self) -> Option<Budget> {
        self.0.refused.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_reached_at_its_limit_and_off_at_zero() {
        let budgets = Budgets { audio_seconds: 60, tokens: 1000 };
        assert!(!budgets.reached(Budget::AudioSeconds, Spent { audio_ms: 59_999, tokens: 0 }));
        assert!(budgets.reached(Budget::AudioSeconds, Spent { audio_ms: 60_000, tokens: 0 }));
        assert!(!budgets.reached(Budget::Tokens, Spent { audio_ms: 0, tokens: 999 }));
        assert!(budgets.reached(Budget::Tokens, Spent { audio_ms: 0, tokens: 1000 }));
        let off = Budgets::default();
        assert!(!off.reached(Budget::Tokens, Spent { audio_ms: u64::MAX, tokens: u64::MAX }));
    }

    #[test]
    fn each_operation_spends_one_budget_and_the_message_names_it() {
        assert_eq!(Budget::of(Operation::Pronunciation), Budget::AudioSeconds);
        assert_eq!(Budget::of(Operation::Analyze), Budget::Tokens);
        let budgets = Budgets { audio_seconds: 600, tokens: 5 };
        assert!(budgets.message(Budget::AudioSeconds).contains("audio"));
        assert!(budgets.message(Budget::Tokens).contains("USER_DAILY_TOKENS"));
    }
}
