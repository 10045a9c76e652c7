//! Typed settings, parsed once at start-up from the environment (12-factor), with optional
//! defaults from a TOML file named by `CONFIG_FILE`; the environment wins.
//!
//! [`Settings`] is a tree of parts, one file each, and each part reads its own variables and
//! builds the configuration its consumer takes (`settings.cache.config(..)` is the cache's
//! `CacheConfig`, `settings.upstreams.gemini.config(..)` the Gemini client's):
//!
//! - [`server`] reads `BIND_ADDRESS`, `PORT`, connections, request bodies, the playground and
//!   shutdown;
//! - [`access`] reads `API_KEYS`, `RATE_LIMIT_PER_MINUTE`, `RATE_LIMIT_PER_KEY_PER_MINUTE` and
//!   `MAX_IN_FLIGHT`;
//! - [`audio`] reads `AUDIO_*`;
//! - [`cache`] reads `CACHE_*` and `DISK_CACHE_*`;
//! - [`redis`] reads `REDIS_*` and `RATE_LIMIT_REDIS_*`;
//! - [`upstreams`] reads `UPSTREAM_*` and `BREAKER_*`, and has a sub-part per upstream
//!   (`AZURE_SPEECH_*`, `GEMINI_*`, `SIMULATOR_*`, and the fallbacks: `OPENAI_*`,
//!   `ANALYSIS_FALLBACK_AFTER_SECONDS`, `TRANSCRIBE_FALLBACK_*`);
//! - [`telemetry`] reads `LOG_FORMAT`.
//!
//! Every variable name is a constant in [`names`] and documented in the README's table; [`vars`]
//! reads values of each kind. A bad value is a `ConfigError` naming the variable; `main` prints
//! it on one line and exits 2.

use std::collections::HashMap;
use std::path::Path;

use crate::cache::{SERVICE_ACCOUNT_DIR, kubernetes_detected};

mod access;
mod audio;
mod cache;
mod names;
mod redis;
mod server;
mod telemetry;
mod upstreams;
mod usage;
mod vars;

pub use crate::secret::Secret;
pub use crate::telemetry::LogFormat;
pub use access::{AccessSettings, DEFAULT_MAX_IN_FLIGHT};
pub use audio::AudioSettings;
pub use cache::CacheSettings;
pub use names::*;
pub use redis::RedisSettings;
pub use server::ServerSettings;
pub use telemetry::TelemetrySettings;
pub use upstreams::{
    AzureSettings, AzureTarget, FallbackSettings, GeminiSettings, GeminiTarget, OpenAiLink, OpenAiTarget,
    SimulatorSettings, UpstreamSettings,
};
pub use vars::ConfigError;
use vars::{Vars, read_config_file};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Running in Kubernetes (`KUBERNETES_SERVICE_HOST`, or a mounted service account): keys
    /// become required, and several defaults change (JSON logs, `redis_only`, no playground).
    pub kubernetes: bool,
    pub server: ServerSettings,
    pub access: AccessSettings,
    pub audio: AudioSettings,
    pub cache: CacheSettings,
    pub redis: RedisSettings,
    pub upstreams: UpstreamSettings,
    pub telemetry: TelemetrySettings,
    /// Per-user usage, budgets and prices (`USAGE_*`, `USER_DAILY_*`, `PRICE_*`).
    pub usage: crate::usage::UsageSettings,
}

impl Settings {
    /// From the process environment (and `CONFIG_FILE`), detecting Kubernetes the usual way.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_lookup(|name| env.get(name).cloned(), Path::new(SERVICE_ACCOUNT_DIR))
    }

    /// From any variable source; `service_account_dir` is where Kubernetes would mount the pod's
    /// service account, passed in so tests never depend on the machine they run on.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        service_account_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let file = match lookup(CONFIG_FILE).filter(|path| !path.trim().is_empty()) {
            Some(path) => read_config_file(&path)?,
            None => HashMap::new(),
        };
        let vars = Vars { lookup: &lookup, file };
        let kubernetes = kubernetes_detected(&|name: &str| vars.get(name), service_account_dir);
        // Keys first: in Kubernetes, a missing `API_KEYS` is the first thing to say.
        Ok(Self {
            kubernetes,
            access: AccessSettings::from_vars(&vars, kubernetes)?,
            cache: CacheSettings::from_vars(&vars)?,
            redis: RedisSettings::from_vars(&vars)?,
            upstreams: UpstreamSettings::from_vars(&vars, kubernetes)?,
            audio: AudioSettings::from_vars(&vars)?,
            telemetry: TelemetrySettings::from_vars(&vars, kubernetes)?,
            server: ServerSettings::from_vars(&vars, kubernetes)?,
            usage: usage::usage_settings(&vars)?,
        })
    }
}

#[cfg(test)]
mod tests;
