//! Log output: JSON lines for machines (default in Kubernetes), pretty for people.
//! Never logged anywhere: API keys, audio, the learner's text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber. `RUST_LOG` refines the level (default `info`). Calling it twice
/// (tests building several apps) keeps the first subscriber.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        // Colours for a terminal only: in a file or a pipe the escape codes cut `key=value`
        // pairs apart for whoever greps them.
        LogFormat::Pretty => builder.compact().with_ansi(std::io::stdout().is_terminal()).try_init(),
    };
}
