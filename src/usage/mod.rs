//! What each learner costs: usage per user and UTC day, and the daily budgets that stop a
//! runaway bill.
//!
//! Flow of one answered request:
//! 1. the usage layer ([`layer`]) names the user as the rate limit does and gives the request an
//!    [`Allowance`]; where the request would call an upstream (after the cache had nothing), the
//!    allowance reads the user's day once and refuses when a budget is already reached;
//! 2. the handler puts what the request cost ([`Spend`]: audio seconds sent, tokens per model,
//!    whether the cache answered) in the response's extensions;
//! 3. for a 2xx the layer queues the spend ([`Usage::record`]) and answers at once: a writer task
//!    adds it to the user's day in Redis, one script call per request ([`store`]);
//! 4. while Redis is unreachable the writer keeps counts in a bounded [`buffer`] and flushes them
//!    when it answers again, each batch under an id Redis remembers, so nothing is added twice.
//!
//! [`prices`] turns a day's counts into an estimated cost for `GET /api/usage`.
//!
//! Hooks for providers and operations:
//! - an LLM provider fills a [`TokenUsage`] from its wire (Gemini's `usageMetadata`;
//!   an OpenAI-compatible `usage` through [`TokenUsage::from_openai`]), puts it with its
//!   `provider` label and model id in the result's [`record::Billed`] (`AnalysisOutcome::tokens`),
//!   and counts `ai_tokens_total{provider,model,kind}`; the handler adds it to the [`Spend`] when
//!   the request's own call made the result;
//! - audio: the handler adds the seconds the request sent ([`Spend::add_audio`]); a pronunciation
//!   result carries the audio its calls sent ([`record::SentAudio`]: each piece of a long reading
//!   transcribed and assessed), and the stack's client step counts `ai_audio_seconds_total` per
//!   attempt.

pub mod budget;
pub mod buffer;
pub mod day;
pub mod layer;
pub mod prices;
pub mod record;
pub mod store;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use budget::{Allowance, Budget, Budgets};
pub use day::Day;
pub use layer::UsageLayer;
pub use prices::{Prices, TokenPrices};
pub use record::{Counts, ModelTokens, Spend, Spent, TokenUsage};

use crate::metrics::Metrics;
use crate::redis::RedisLink;
use buffer::Buffer;

/// Spends waiting for the writer; past this the layer hands them to the buffer directly.
const QUEUE: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct UsageSettings {
    /// `USAGE_RETENTION_DAYS`: days a user's day is kept after it ends.
    pub retention_days: u32,
    pub budgets: Budgets,
    pub prices: Prices,
    /// `USAGE_BUFFER_MAX_ENTRIES`: users' days held in memory while Redis is unreachable.
    pub buffer_max_entries: usize,
}

impl Default for UsageSettings {
    fn default() -> Self {
        Self { retention_days: 35, budgets: Budgets::default(), prices: Prices::default(), buffer_max_entries: 10_000 }
    }
}

/// The usage counter of one instance. Cheap to clone.
#[derive(Clone)]
pub struct Usage(Arc<Inner>);

struct Inner {
    settings: UsageSettings,
    /// Where every instance's counts meet; `None`: this instance's memory only.
    redis: Option<RedisLink>,
    buffer: Buffer,
    metrics: Metrics,
    queue: mpsc::Sender<writer::Queued>,
    stop: CancellationToken,
    /// The writer; taken by `close`.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What `GET /api/usage` reads: the counts of each day asked for.
pub struct Read {
    pub days: Vec<(Day, Counts)>,
    /// False when Redis could not be read and only this instance's unwritten counts are shown.
    pub complete: bool,
}

impl Usage {
    /// Starts the writer task: call inside the runtime.
    pub fn new(settings: UsageSettings, redis: Option<RedisLink>, metrics: Metrics) -> Self {
        let (queue, received) = mpsc::channel(QUEUE);
        let buffer = Buffer::new(settings.buffer_max_entries);
        for budget in Budget::ALL {
            let _ = metrics.budget_refusals_total.with_label_values(&[budget.as_str()]);
        }
        let usage = Self(Arc::new(Inner {
            settings,
            redis,
            buffer,
            metrics,
            queue,
            stop: CancellationToken::new(),
            task: Mutex::new(None),
        }));
        let task = tokio::spawn(writer::run(usage.clone(), received));
        *usage.0.task.lock() = Some(task);
        usage
    }

    pub fn budgets(&self) -> Budgets {
        self.0.settings.budgets
    }

    pub fn prices(&self) -> &Prices {
        &self.0.settings.prices
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Count an answered request; never waits.
    pub fn record(&self, user: &str, day: Day, spend: &Spend) {
        let queued = writer::Queued { user: user.to_owned(), day, counts: spend.counts() };
        if let Err(full) = self.0.queue.try_send(queued) {
            let queued = full.into_inner();
            self.keep(&queued.user, queued.day, &queued.counts);
        }
    }

    /// Hold counts in the buffer, or count them as lost when it is full.
    fn keep(&self, user: &str, day: Day, counts: &Counts) {
        if !self.0.buffer.add(user, day, counts) {
            self.0.metrics.usage_dropped_total.inc();
            tracing::warn!("usage buffer full (USAGE_BUFFER_MAX_ENTRIES): a request's usage was not counted");
        }
        self.0.metrics.usage_buffered_entries.set(i64::try_from(self.0.buffer.len()).unwrap_or(i64::MAX));
    }

    /// What `user` has spent on `day`: Redis's count plus what this instance has not written yet.
    /// Redis unreachable: this instance's unwritten counts only (the budget holds per instance
    /// for the counts made since the outage began).
    pub async fn spent(&self, user: &str, day: Day) -> Spent {
        let buffered = self.0.buffer.spent(user, day);
        let Some(link) = &self.0.redis else { return buffered };
        match store::read_spent(link, user, day).await {
            Ok(stored) => stored.plus(buffered),
            Err(error) => {
                tracing::debug!(%error, "usage: budget read without redis");
                buffered
            }
        }
    }

    /// `user`'s counts for each of `days`.
    pub async fn read(&self, user: &str, days: &[Day]) -> Read {
        if let Some(link) = &self.0.redis {
            match store::read_days(link, user, days).await {
                Ok(counts) => return Read { days: days.iter().copied().zip(counts).collect(), complete: true },
                Err(error) => tracing::warn!(%error, "usage: redis unreadable; answering from this instance's memory"),
            }
        }
        let days = days.iter().map(|day| (*day, self.0.buffer.counts(user, *day))).collect();
        Read { days, complete: self.0.redis.is_none() }
    }

    /// Write what is queued and buffered (one try), then stop the writer. Called at shutdown.
    pub async fn close(&self) {
        self.0.stop.cancel();
        let task = self.0.task.lock().take();
        if let Some(task) = task {
            // Bounded: a Redis that hangs cannot hold the exit (each write has its op timeout).
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}
