//! The upstreams and how every call to them is guarded: one sub-part per upstream (a new
//! upstream gets its own file here), and what they share: deadline, retries, breakers and
//! connections.
//!
//! Variables: `UPSTREAM_TIMEOUT_SECONDS`, `UPSTREAM_MAX_ATTEMPTS`, `UPSTREAM_CONNECTIONS`,
//! `UPSTREAM_HTTP2_PRIOR_KNOWLEDGE`, `BREAKER_FAILURE_THRESHOLD`,
//! `BREAKER_RECOVERY_TIMEOUT_SECONDS`, `BREAKER_HALF_OPEN_PROBES`; then `AZURE_SPEECH_*` in
//! [`azure`], `GEMINI_*` in [`gemini`], `SIMULATOR_*` in [`simulator`].

mod azure;
mod fallbacks;
mod gemini;
mod simulator;

use std::time::Duration;

pub use azure::{AzureSettings, AzureTarget};
pub use fallbacks::{FallbackSettings, OpenAiLink, OpenAiTarget};
pub use gemini::{GeminiSettings, GeminiTarget};
pub use simulator::SimulatorSettings;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::middleware::circuit_breaker::BreakerConfig;
use crate::middleware::retry::RetryPolicy;
use crate::upstream::connections::ConnectionSettings;

/// Each lane is a client with its own pool: beyond a few dozen they only cost memory.
const MAX_UPSTREAM_CONNECTIONS: usize = 64;

/// New `UPSTREAM_*` and `BREAKER_*` variables belong here; a variable of one upstream alone
/// belongs in that upstream's sub-part.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSettings {
    /// `UPSTREAM_TIMEOUT_SECONDS`: one call's whole deadline, retries included.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// For the cloud upstreams; the built-in simulator always gets HTTP/2 by prior knowledge.
    pub connections: ConnectionSettings,
    pub breaker_failure_threshold: u32,
    pub breaker_recovery_timeout: Duration,
    pub breaker_half_open_probes: u32,
    pub azure: AzureSettings,
    pub gemini: GeminiSettings,
    pub simulator: SimulatorSettings,
    /// The analysis chain after `GEMINI_MODEL`, and the transcription fallback
    /// (`GEMINI_FALLBACK_MODELS`, `OPENAI_*`, `ANALYSIS_FALLBACK_AFTER_SECONDS`, `TRANSCRIBE_FALLBACK_*`).
    pub fallbacks: FallbackSettings,
}

impl UpstreamSettings {
    pub(super) fn from_vars(vars: &Vars<'_>, kubernetes: bool) -> Result<Self, ConfigError> {
        let timeout = vars.seconds(UPSTREAM_TIMEOUT_SECONDS, 30, 1)?;
        let lanes = vars.number(UPSTREAM_CONNECTIONS, ConnectionSettings::default().lanes, 1)?;
        if lanes > MAX_UPSTREAM_CONNECTIONS {
            return Err(invalid(
                UPSTREAM_CONNECTIONS,
                format!("must be at most {MAX_UPSTREAM_CONNECTIONS} (got {lanes})"),
            ));
        }
        let connections =
            ConnectionSettings { lanes, http2_prior_knowledge: vars.boolean(UPSTREAM_HTTP2_PRIOR_KNOWLEDGE, false)? };
        let azure = AzureSettings::from_vars(vars, kubernetes)?;
        let gemini = GeminiSettings::from_vars(vars, kubernetes)?;
        let fallbacks = fallbacks::fallback_settings(
            vars,
            &gemini.model,
            timeout,
            gemini.target == GeminiTarget::Simulator,
            azure.target == AzureTarget::Simulator,
        )?;
        Ok(Self {
            timeout,
            max_attempts: vars.number(UPSTREAM_MAX_ATTEMPTS, 3u32, 1)?,
            connections,
            breaker_failure_threshold: vars.number(BREAKER_FAILURE_THRESHOLD, 5u32, 1)?,
            breaker_recovery_timeout: vars.seconds(BREAKER_RECOVERY_TIMEOUT_SECONDS, 60, 1)?,
            breaker_half_open_probes: vars.number(BREAKER_HALF_OPEN_PROBES, 1u32, 1)?,
            azure,
            gemini,
            simulator: SimulatorSettings::from_vars(vars)?,
            fallbacks,
        })
    }

    /// Whether any upstream is served by the built-in simulator.
    pub fn uses_simulator(&self) -> bool {
        self.azure.target == AzureTarget::Simulator || self.gemini.target == GeminiTarget::Simulator
    }

    /// Each upstream's breaker opens and recovers alike.
    pub fn breaker_config(&self) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: self.breaker_failure_threshold,
            recovery_timeout: self.breaker_recovery_timeout,
            half_open_max_probes: self.breaker_half_open_probes,
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { max_attempts: self.max_attempts, ..RetryPolicy::new(self.timeout) }
    }
}

/// The built-in simulator speaks h2c, so calls to it take the multiplexed path production
/// takes over TLS.
fn simulated(connections: ConnectionSettings) -> ConnectionSettings {
    ConnectionSettings { http2_prior_knowledge: true, ..connections }
}
