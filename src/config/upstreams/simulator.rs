//! The built-in simulator's faults, for load tests and demos.
//!
//! Variables: `SIMULATOR_LATENCY_MS`, `SIMULATOR_RATE_LIMIT_RATE`, `SIMULATOR_SERVER_ERROR_RATE`,
//! `SIMULATOR_HANG_RATE`, `SIMULATOR_MALFORMED_RATE`, `SIMULATOR_UNAVAILABLE_MODELS`,
//! `SIMULATOR_RETIRED_MODELS`, `SIMULATOR_AZURE_UNAVAILABLE`.

use std::time::Duration;

use crate::config::names::*;
use crate::config::vars::{ConfigError, Vars};
use crate::simulator::SimConfig;

/// New `SIMULATOR_*` variables belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorSettings {
    pub latency: Duration,
    pub rate_limit_rate: f64,
    pub server_error_rate: f64,
    pub hang_rate: f64,
    pub malformed_rate: f64,
    /// `SIMULATOR_UNAVAILABLE_MODELS`: models the simulator answers 503 for.
    pub unavailable_models: Vec<String>,
    /// `SIMULATOR_RETIRED_MODELS`: models the simulator answers 404 for.
    pub retired_models: Vec<String>,
    /// `SIMULATOR_AZURE_UNAVAILABLE`: the simulated Azure answers 503.
    pub azure_unavailable: bool,
}

impl SimulatorSettings {
    pub(in crate::config) fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            latency: Duration::from_millis(vars.number(SIMULATOR_LATENCY_MS, 0u64, 0)?),
            rate_limit_rate: vars.rate(SIMULATOR_RATE_LIMIT_RATE)?,
            server_error_rate: vars.rate(SIMULATOR_SERVER_ERROR_RATE)?,
            hang_rate: vars.rate(SIMULATOR_HANG_RATE)?,
            malformed_rate: vars.rate(SIMULATOR_MALFORMED_RATE)?,
            unavailable_models: list(vars.get(SIMULATOR_UNAVAILABLE_MODELS)),
            retired_models: list(vars.get(SIMULATOR_RETIRED_MODELS)),
            azure_unavailable: vars.boolean(SIMULATOR_AZURE_UNAVAILABLE, false)?,
        })
    }

    /// The simulator's fault settings from ours.
    pub fn config(&self) -> SimConfig {
        SimConfig {
            latency_ms: u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX),
            rate_limit_rate: self.rate_limit_rate,
            server_error_rate: self.server_error_rate,
            hang_rate: self.hang_rate,
            malformed_rate: self.malformed_rate,
            retry_after_seconds: 1,
            unavailable_models: self.unavailable_models.clone(),
            retired_models: self.retired_models.clone(),
            azure_unavailable: self.azure_unavailable,
        }
    }
}

/// A comma-separated list, blanks dropped.
fn list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}
