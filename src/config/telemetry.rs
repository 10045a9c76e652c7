//! What the service says about itself.
//!
//! Variables: `LOG_FORMAT` (`RUST_LOG` is read by the log filter itself).

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::telemetry::LogFormat;

/// New variables about logs, metrics and traces belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// JSON lines in Kubernetes, pretty lines elsewhere, unless `LOG_FORMAT` says.
    pub log_format: LogFormat,
}

impl TelemetrySettings {
    pub(super) fn from_vars(vars: &Vars<'_>, kubernetes: bool) -> Result<Self, ConfigError> {
        let log_format = match vars.get(LOG_FORMAT).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => {
                if kubernetes {
                    LogFormat::Json
                } else {
                    LogFormat::Pretty
                }
            }
            Some(raw) if raw == "json" => LogFormat::Json,
            Some(raw) if raw == "pretty" || raw == "text" => LogFormat::Pretty,
            Some(other) => return Err(invalid(LOG_FORMAT, format!("must be json or pretty (got {other:?})"))),
        };
        Ok(Self { log_format })
    }
}
