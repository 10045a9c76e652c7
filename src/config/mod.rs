//! Typed settings, parsed once at start-up from the environment (12-factor), with optional
//! defaults from a TOML file named by `CONFIG_FILE`; the environment wins.
//!
//! Every variable name is a constant in [`names`] and documented in the README's table; [`vars`]
//! reads values of each kind, [`targets`] the upstreams' endpoints and keys. A bad value is a
//! `ConfigError` naming the variable; `main` prints it on one line and exits 2.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cache::{RequestedMode, SERVICE_ACCOUNT_DIR, kubernetes_detected};
use crate::upstream::connections::ConnectionSettings;

/// Each lane is a client with its own pool: beyond a few dozen they only cost memory.
const MAX_UPSTREAM_CONNECTIONS: usize = 64;
/// `RATE_LIMIT_PER_KEY_PER_MINUTE` defaults to this many users' worth of the per-user limit.
const DEFAULT_KEY_CEILING_FACTOR: u32 = 100;
/// `AUDIO_BYTES_IN_FLIGHT`'s default: a quarter of the shipped 512 Mi pod limit, twelve of the
/// largest recordings, or hundreds of typical ones (a minute of browser Opus is ~250 KB).
const DEFAULT_AUDIO_BYTES_IN_FLIGHT: usize = 128 * 1024 * 1024;
/// `AUDIO_BYTES_WAIT_MS`'s default: long enough for a few requests to be answered and give
/// their bytes back, short enough that a client retrying after `Retry-After` loses little.
const DEFAULT_AUDIO_BYTES_WAIT_MS: u64 = 3000;
/// `MAX_IN_FLIGHT`'s default. A held analysis costs 25-40 KB (BENCHMARKS.md, c: 10,000 held in
/// 227-231 MiB over HTTP/2), so 3000 hold ~120 MB; with `AUDIO_BYTES_IN_FLIGHT`'s 128 MiB that
/// stays well inside the shipped 512 Mi pod limit. Both upstreams together take at most about
/// 2 x `UPSTREAM_CONNECTIONS` x 100 calls at once (1600 by default): more only queue.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 3000;

mod fallbacks;
mod names;
mod redis;
mod targets;
mod usage;
mod vars;

pub use fallbacks::{FallbackSettings, OpenAiLink, OpenAiTarget};
use fallbacks::fallback_settings;
pub use names::*;
pub use redis::RedisSettings;
use redis::redis_settings;
pub use targets::{AzureTarget, GeminiTarget, Secret};
use targets::{azure_target, gemini_target};
pub use vars::ConfigError;
use vars::{Vars, invalid, read_config_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub bind_address: std::net::IpAddr,
    pub port: u16,
    /// Empty: auth off (warned at start-up; refused in Kubernetes).
    pub api_keys: Vec<Secret>,
    pub kubernetes: bool,
    pub cache_mode: RequestedMode,
    pub redis: RedisSettings,
    pub redis_timeout: Duration,
    pub disk_cache_dir: PathBuf,
    /// `DISK_CACHE_MAX_BYTES`: the disk tier's bound.
    pub disk_cache_max_bytes: u64,
    pub ttl_transcription: Duration,
    pub ttl_pronunciation: Duration,
    pub ttl_analysis: Duration,
    pub memory_cache_max_entries: u64,
    pub memory_cache_max_bytes: u64,
    /// 0 turns per-user limiting off.
    pub rate_limit_per_minute: u32,
    /// Ceiling per API key (per client address without one), whatever the user ids; 0: off.
    pub rate_limit_per_key_per_minute: u32,
    pub breaker_failure_threshold: u32,
    pub breaker_recovery_timeout: Duration,
    pub breaker_half_open_probes: u32,
    pub upstream_timeout: Duration,
    pub upstream_max_attempts: u32,
    /// For the cloud upstreams; the built-in simulator always gets HTTP/2 by prior knowledge.
    pub upstream_connections: ConnectionSettings,
    pub azure: AzureTarget,
    pub gemini: GeminiTarget,
    pub gemini_model: String,
    pub audio_max_bytes: usize,
    pub audio_fetch_allow_private: bool,
    pub audio_fetch_timeout: Duration,
    /// `AUDIO_MAX_SECONDS`: longer recordings are refused (413).
    pub audio_max_duration: Duration,
    pub audio_send_format: crate::audio::SendFormat,
    /// Recordings normalised at once (CPU work, on the blocking pool).
    pub audio_workers: usize,
    /// Longest a recording waits for a decoding worker before 503 `overloaded`.
    pub audio_queue_wait: Duration,
    /// Longest pause between two pieces of a request body before the request is given up.
    pub request_body_timeout: Duration,
    /// A request body must be complete this long after the request arrived (408).
    pub request_body_deadline: Duration,
    /// A request body must keep this pace, on average, once its first seconds are past (408);
    /// 0: no minimum.
    pub request_body_min_rate: u64,
    /// Bytes of recordings (uploads and downloads, and what they become) held at once.
    pub audio_bytes_in_flight: usize,
    /// How long an audio request's next bytes wait for room in `audio_bytes_in_flight` before
    /// it is answered 503 `overloaded`.
    pub audio_bytes_wait: Duration,
    /// Client connections served at once.
    pub max_connections: usize,
    /// HTTP/1.1: longest wait for a request head, idle keep-alive time included (hyper starts
    /// the clock when it starts waiting for a head).
    pub header_read_timeout: Duration,
    /// `/api/*` requests served at once before new ones get 503 `overloaded`; 0 = no cap.
    pub max_in_flight: usize,
    /// Serve `/playground`. The contract turns it off by default in Kubernetes, where the callers
    /// are apps and an unneeded page is only more surface.
    pub playground_enabled: bool,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    /// Between readiness turning 503 and the listener closing: time for load balancers to stop
    /// sending new requests (an alternative to a `preStop` sleep).
    pub shutdown_delay: Duration,
    pub simulator: SimulatorSettings,
    /// The analysis chain after `GEMINI_MODEL`, and the transcription fallback.
    pub fallbacks: FallbackSettings,
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

        let api_keys: Vec<Secret> = vars
            .get(API_KEYS)
            .map(|raw| {
                raw.split(',').map(str::trim).filter(|key| !key.is_empty()).map(|key| Secret(key.to_string())).collect()
            })
            .unwrap_or_default();
        if api_keys.is_empty() && kubernetes {
            return Err(invalid(API_KEYS, "must list at least one key when running in Kubernetes"));
        }
        // Commas and blanks only is a typo for a key list, not a wish to turn auth off.
        if api_keys.is_empty() && vars.get(API_KEYS).is_some_and(|raw| !raw.is_empty()) {
            return Err(invalid(API_KEYS, "lists no key (only commas or blanks); leave it empty to turn auth off"));
        }

        let cache_mode: RequestedMode = match vars.get(CACHE_MODE) {
            None => RequestedMode::Auto,
            Some(raw) => raw.parse().map_err(|_| {
                invalid(CACHE_MODE, format!("must be auto, redis_only, tiered or disk_only (got {raw:?})"))
            })?,
        };

        let redis = redis_settings(&vars)?;

        let ttl_default = vars.seconds(CACHE_TTL_SECONDS, 604_800, 1)?;
        let ttl_or_default = |name| -> Result<Duration, ConfigError> {
            match vars.get(name) {
                Some(_) => vars.seconds(name, 0, 1),
                None => Ok(ttl_default),
            }
        };

        let upstream_timeout = vars.seconds(UPSTREAM_TIMEOUT_SECONDS, 30, 1)?;
        let rate_limit_per_minute = vars.number(RATE_LIMIT_PER_MINUTE, 60u32, 0)?;
        let audio_max_bytes = vars.number(AUDIO_MAX_BYTES, 10_485_760usize, 1)?;
        let audio_bytes_in_flight = vars.number(AUDIO_BYTES_IN_FLIGHT, DEFAULT_AUDIO_BYTES_IN_FLIGHT, 1)?;
        let largest = crate::audio::budget::reservation(audio_max_bytes);
        if audio_bytes_in_flight < largest {
            return Err(invalid(
                AUDIO_BYTES_IN_FLIGHT,
                format!(
                    "must hold at least one largest recording ({largest} bytes with AUDIO_MAX_BYTES={audio_max_bytes})"
                ),
            ));
        }
        let lanes = vars.number(UPSTREAM_CONNECTIONS, ConnectionSettings::default().lanes, 1)?;
        if lanes > MAX_UPSTREAM_CONNECTIONS {
            return Err(invalid(
                UPSTREAM_CONNECTIONS,
                format!("must be at most {MAX_UPSTREAM_CONNECTIONS} (got {lanes})"),
            ));
        }
        let upstream_connections =
            ConnectionSettings { lanes, http2_prior_knowledge: vars.boolean(UPSTREAM_HTTP2_PRIOR_KNOWLEDGE, false)? };

        let azure = azure_target(&vars, kubernetes)?;
        let gemini = gemini_target(&vars, kubernetes)?;

        let gemini_model = vars
            .get(GEMINI_MODEL)
            .map(|model| model.trim().to_string())
            .unwrap_or_else(|| "gemini-2.5-flash".to_string());
        if gemini_model.is_empty() || !gemini_model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(invalid(GEMINI_MODEL, "must be a model id such as gemini-2.5-flash"));
        }

        let fallbacks = fallback_settings(
            &vars,
            &gemini_model,
            upstream_timeout,
            gemini == GeminiTarget::Simulator,
            azure == AzureTarget::Simulator,
        )?;

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

        let bind_address = match vars.get(BIND_ADDRESS) {
            None => std::net::IpAddr::from([0, 0, 0, 0]),
            Some(raw) => {
                raw.trim().parse().map_err(|_| invalid(BIND_ADDRESS, "must be an IP address such as 0.0.0.0"))?
            }
        };

        Ok(Self {
            bind_address,
            port: vars.number(PORT, 8000u16, 0)?,
            api_keys,
            kubernetes,
            cache_mode,
            redis,
            redis_timeout: Duration::from_millis(vars.number(REDIS_TIMEOUT_MS, 250u64, 1)?),
            disk_cache_dir: PathBuf::from(vars.get(DISK_CACHE_DIR).unwrap_or_else(|| "./data/cache".to_string())),
            disk_cache_max_bytes: vars.number(DISK_CACHE_MAX_BYTES, 1u64 << 30, 1)?,
            ttl_transcription: ttl_or_default(CACHE_TTL_TRANSCRIPTION_SECONDS)?,
            ttl_pronunciation: ttl_or_default(CACHE_TTL_PRONUNCIATION_SECONDS)?,
            ttl_analysis: ttl_or_default(CACHE_TTL_ANALYSIS_SECONDS)?,
            memory_cache_max_entries: vars.number(CACHE_MEMORY_MAX_ENTRIES, 10_000u64, 0)?,
            memory_cache_max_bytes: vars.number(CACHE_MEMORY_MAX_BYTES, 64 * 1024 * 1024u64, 0)?,
            rate_limit_per_minute,
            rate_limit_per_key_per_minute: vars.number(
                RATE_LIMIT_PER_KEY_PER_MINUTE,
                rate_limit_per_minute.saturating_mul(DEFAULT_KEY_CEILING_FACTOR),
                0,
            )?,
            breaker_failure_threshold: vars.number(BREAKER_FAILURE_THRESHOLD, 5u32, 1)?,
            breaker_recovery_timeout: vars.seconds(BREAKER_RECOVERY_TIMEOUT_SECONDS, 60, 1)?,
            breaker_half_open_probes: vars.number(BREAKER_HALF_OPEN_PROBES, 1u32, 1)?,
            upstream_timeout,
            upstream_max_attempts: vars.number(UPSTREAM_MAX_ATTEMPTS, 3u32, 1)?,
            upstream_connections,
            azure,
            gemini,
            gemini_model,
            audio_max_bytes,
            audio_fetch_allow_private: vars.boolean(AUDIO_FETCH_ALLOW_PRIVATE, false)?,
            audio_fetch_timeout: vars.seconds(AUDIO_FETCH_TIMEOUT_SECONDS, 10, 1)?,
            audio_max_duration: vars.seconds(AUDIO_MAX_SECONDS, 600, 1)?,
            audio_send_format: match vars.get(AUDIO_SEND_FORMAT).map(|raw| raw.trim().to_ascii_lowercase()).as_deref() {
                None | Some("auto") => crate::audio::SendFormat::Auto,
                Some("wav") => crate::audio::SendFormat::Wav,
                Some(other) => return Err(invalid(AUDIO_SEND_FORMAT, format!("must be auto or wav (got {other:?})"))),
            },
            audio_workers: vars.number(
                AUDIO_WORKERS,
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
                1,
            )?,
            audio_queue_wait: vars.seconds(
                AUDIO_QUEUE_WAIT_SECONDS,
                crate::audio::prepare::DEFAULT_QUEUE_WAIT.as_secs(),
                0,
            )?,
            request_body_timeout: vars.seconds(REQUEST_BODY_TIMEOUT_SECONDS, 15, 1)?,
            request_body_deadline: vars.seconds(REQUEST_BODY_DEADLINE_SECONDS, 60, 1)?,
            request_body_min_rate: vars.number(REQUEST_BODY_MIN_BYTES_PER_SECOND, 4096u64, 0)?,
            audio_bytes_in_flight,
            audio_bytes_wait: Duration::from_millis(vars.number(
                AUDIO_BYTES_WAIT_MS,
                DEFAULT_AUDIO_BYTES_WAIT_MS,
                0,
            )?),
            max_connections: vars.number(MAX_CONNECTIONS, crate::server::DEFAULT_MAX_CONNECTIONS, 1)?,
            header_read_timeout: vars.seconds(
                HEADER_READ_TIMEOUT_SECONDS,
                crate::server::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
                1,
            )?,
            max_in_flight: vars.number(MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT, 0)?,
            playground_enabled: vars.boolean(PLAYGROUND_ENABLED, !kubernetes)?,
            log_format,
            shutdown_grace: vars.seconds(SHUTDOWN_GRACE_SECONDS, 25, 0)?,
            shutdown_delay: vars.seconds(SHUTDOWN_DELAY_SECONDS, 0, 0)?,
            simulator: SimulatorSettings {
                latency: Duration::from_millis(vars.number(SIMULATOR_LATENCY_MS, 0u64, 0)?),
                rate_limit_rate: vars.rate(SIMULATOR_RATE_LIMIT_RATE)?,
                server_error_rate: vars.rate(SIMULATOR_SERVER_ERROR_RATE)?,
                hang_rate: vars.rate(SIMULATOR_HANG_RATE)?,
                malformed_rate: vars.rate(SIMULATOR_MALFORMED_RATE)?,
                unavailable_models: list(vars.get(SIMULATOR_UNAVAILABLE_MODELS)),
                retired_models: list(vars.get(SIMULATOR_RETIRED_MODELS)),
                azure_unavailable: vars.boolean(SIMULATOR_AZURE_UNAVAILABLE, false)?,
            },
            fallbacks,
            usage: usage::usage_settings(&vars)?,
        })
    }

    /// Whether any upstream is served by the built-in simulator.
    pub fn uses_simulator(&self) -> bool {
        self.azure == AzureTarget::Simulator || self.gemini == GeminiTarget::Simulator
    }
}

/// A comma-separated list, blanks dropped.
fn list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests;
