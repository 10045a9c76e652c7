//! Log output: JSON lines for machines (default in Kubernetes), pretty for people.
//! Never logged anywhere: API keys, audio, the learner's text.
//!
//! Lines from libraries that log through the `log` crate (symphonia's decoders, which write an
//! ERROR for every damaged packet) reach the same output through `tracing-log`. Inside a
//! [`third_party_lines`] scope (one recording's decoding) at most [`THIRD_PARTY_LINES`] of them
//! are written, then one line saying how many were dropped: a damaged 10 MB upload otherwise
//! writes a million lines.

use std::cell::Cell;
use std::io::IsTerminal;

use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// `LOG_FORMAT`'s values. Here rather than in `config`, which reads them: telemetry stays below
/// every module that logs (audio decoding scopes its lines here), while `config` sits above
/// audio to read its defaults, so a `config` type here would close a loop of imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Lines from the `log` crate written per scope.
pub const THIRD_PARTY_LINES: u32 = 20;

/// Lines waiting for the writer thread at most; past it, lines are dropped, never waited for.
const LINES_IN_FLIGHT: usize = 16_384;
/// The writer's buffer: one write call takes a batch of lines.
const WRITE_BUFFER: usize = 64 * 1024;

/// Keeps the writer thread; dropping it writes what is still queued. Hold it until exit.
#[must_use = "lines still queued are written when this is dropped"]
pub struct Flush(#[allow(dead_code)] WorkerGuard);

/// Install the global subscriber. `RUST_LOG` refines the level (default `info`). Calling it twice
/// (tests building several apps) keeps the first subscriber.
///
/// Lines are formatted on the thread that logs and written by a thread of their own, in
/// batches: a request's log line costs no write call of its own (a write per line, where it was
/// made, took about a seventh of cached hits' throughput).
pub fn init(format: LogFormat) -> Flush {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LINES_IN_FLIGHT)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).finish().with(Bound).try_init(),
        // Colours for a terminal only: in a file or a pipe the escape codes cut `key=value`
        // pairs apart for whoever greps them.
        LogFormat::Pretty => {
            builder.compact().with_ansi(std::io::stdout().is_terminal()).finish().with(Bound).try_init()
        }
    };
    Flush(guard)
}

thread_local! {
    /// Lines still to write in this thread's scope, and lines dropped; `None` outside a scope.
    static SCOPE: Cell<Option<(u32, u64)>> = const { Cell::new(None) };
}

/// Bound the `log` crate's lines on this thread until the guard is dropped. Per thread, so the
/// scope must cover synchronous work that stays on one thread (a decoding job does).
pub fn third_party_lines() -> ThirdPartyLines {
    let outer = SCOPE.replace(Some((THIRD_PARTY_LINES, 0)));
    ThirdPartyLines { outer }
}

#[must_use = "the bound ends when this is dropped"]
pub struct ThirdPartyLines {
    outer: Option<(u32, u64)>,
}

impl Drop for ThirdPartyLines {
    fn drop(&mut self) {
        let ended = SCOPE.replace(self.outer);
        if let Some((_, dropped)) = ended.filter(|&(_, dropped)| dropped > 0) {
            tracing::warn!(dropped, kept = THIRD_PARTY_LINES, "further log lines from a library were dropped");
        }
    }
}

/// The layer that enforces the scopes: an event it refuses is written by no layer.
struct Bound;

impl<S: Subscriber> Layer<S> for Bound {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        // What `tracing-log` makes of a `log` record: its callsites carry the record's target
        // and place as fields.
        if event.metadata().fields().field("log.target").is_none() {
            return true;
        }
        SCOPE.with(|scope| match scope.get() {
            None => true,
            Some((0, dropped)) => {
                scope.set(Some((0, dropped + 1)));
                false
            }
            Some((left, dropped)) => {
                scope.set(Some((left - 1, dropped)));
                true
            }
        })
    }
}
