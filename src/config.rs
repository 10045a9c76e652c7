//! Typed settings, parsed once at start-up from the environment (12-factor), with optional
//! defaults from a TOML file named by `CONFIG_FILE`; the environment wins.
//!
//! Every variable name is a constant here and documented in the README's table. A bad value is
//! a `ConfigError` naming the variable; `main` prints it on one line and exits 2.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::upstream::connections::ConnectionSettings;

/// Each lane is a client with its own pool: beyond a few dozen they only cost memory.
const MAX_UPSTREAM_CONNECTIONS: usize = 64;

use crate::cache::{RequestedMode, SERVICE_ACCOUNT_DIR, kubernetes_detected};

pub const PORT: &str = "PORT";
pub const BIND_ADDRESS: &str = "BIND_ADDRESS";
pub const CONFIG_FILE: &str = "CONFIG_FILE";
pub const API_KEYS: &str = "API_KEYS";
pub const CACHE_MODE: &str = "CACHE_MODE";
pub const REDIS_URL: &str = "REDIS_URL";
pub const REDIS_TIMEOUT_MS: &str = "REDIS_TIMEOUT_MS";
pub const DISK_CACHE_DIR: &str = "DISK_CACHE_DIR";
pub const CACHE_TTL_SECONDS: &str = "CACHE_TTL_SECONDS";
pub const CACHE_TTL_TRANSCRIPTION_SECONDS: &str = "CACHE_TTL_TRANSCRIPTION_SECONDS";
pub const CACHE_TTL_PRONUNCIATION_SECONDS: &str = "CACHE_TTL_PRONUNCIATION_SECONDS";
pub const CACHE_TTL_ANALYSIS_SECONDS: &str = "CACHE_TTL_ANALYSIS_SECONDS";
pub const CACHE_MEMORY_MAX_ENTRIES: &str = "CACHE_MEMORY_MAX_ENTRIES";
pub const CACHE_MEMORY_MAX_BYTES: &str = "CACHE_MEMORY_MAX_BYTES";
pub const RATE_LIMIT_PER_MINUTE: &str = "RATE_LIMIT_PER_MINUTE";
pub const BREAKER_FAILURE_THRESHOLD: &str = "BREAKER_FAILURE_THRESHOLD";
pub const BREAKER_RECOVERY_TIMEOUT_SECONDS: &str = "BREAKER_RECOVERY_TIMEOUT_SECONDS";
pub const BREAKER_HALF_OPEN_PROBES: &str = "BREAKER_HALF_OPEN_PROBES";
pub const UPSTREAM_TIMEOUT_SECONDS: &str = "UPSTREAM_TIMEOUT_SECONDS";
pub const UPSTREAM_MAX_ATTEMPTS: &str = "UPSTREAM_MAX_ATTEMPTS";
pub const UPSTREAM_CONNECTIONS: &str = "UPSTREAM_CONNECTIONS";
pub const UPSTREAM_HTTP2_PRIOR_KNOWLEDGE: &str = "UPSTREAM_HTTP2_PRIOR_KNOWLEDGE";
pub const AZURE_SPEECH_KEY: &str = "AZURE_SPEECH_KEY";
pub const AZURE_SPEECH_REGION: &str = "AZURE_SPEECH_REGION";
pub const AZURE_SPEECH_ENDPOINT: &str = "AZURE_SPEECH_ENDPOINT";
pub const GEMINI_API_KEY: &str = "GEMINI_API_KEY";
pub const GEMINI_MODEL: &str = "GEMINI_MODEL";
pub const GEMINI_BASE_URL: &str = "GEMINI_BASE_URL";
pub const AUDIO_MAX_BYTES: &str = "AUDIO_MAX_BYTES";
pub const AUDIO_FETCH_ALLOW_PRIVATE: &str = "AUDIO_FETCH_ALLOW_PRIVATE";
pub const AUDIO_FETCH_TIMEOUT_SECONDS: &str = "AUDIO_FETCH_TIMEOUT_SECONDS";
pub const AUDIO_MAX_SECONDS: &str = "AUDIO_MAX_SECONDS";
pub const AUDIO_SEND_FORMAT: &str = "AUDIO_SEND_FORMAT";
pub const AUDIO_WORKERS: &str = "AUDIO_WORKERS";
pub const AZURE_SPEECH_TRANSCRIPTION_ENDPOINT: &str = "AZURE_SPEECH_TRANSCRIPTION_ENDPOINT";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const SHUTDOWN_GRACE_SECONDS: &str = "SHUTDOWN_GRACE_SECONDS";
pub const SHUTDOWN_DELAY_SECONDS: &str = "SHUTDOWN_DELAY_SECONDS";
pub const REQUEST_BODY_TIMEOUT_SECONDS: &str = "REQUEST_BODY_TIMEOUT_SECONDS";
pub const HEADER_READ_TIMEOUT_SECONDS: &str = "HEADER_READ_TIMEOUT_SECONDS";
pub const MAX_IN_FLIGHT: &str = "MAX_IN_FLIGHT";
pub const SIMULATOR_LATENCY_MS: &str = "SIMULATOR_LATENCY_MS";
pub const SIMULATOR_RATE_LIMIT_RATE: &str = "SIMULATOR_RATE_LIMIT_RATE";
pub const SIMULATOR_SERVER_ERROR_RATE: &str = "SIMULATOR_SERVER_ERROR_RATE";
pub const SIMULATOR_HANG_RATE: &str = "SIMULATOR_HANG_RATE";
pub const SIMULATOR_MALFORMED_RATE: &str = "SIMULATOR_MALFORMED_RATE";
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A credential: never printed by `Debug`, so settings can be logged safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the Azure Speech client sends requests, and with which key.
#[derive(Debug, Clone, PartialEq)]
pub enum AzureTarget {
    /// `AZURE_SPEECH_KEY` plus a region or an endpoint. `transcription_url` is the base of fast
    /// transcription (recordings over 60 s), another host than short-audio recognition's.
    Cloud { base_url: Url, transcription_url: Url, key: Secret },
    /// No key outside Kubernetes: the built-in simulator.
    Simulator,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GeminiTarget {
    Cloud { base_url: Url, key: Secret },
    Simulator,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorSettings {
    pub latency: Duration,
    pub rate_limit_rate: f64,
    pub server_error_rate: f64,
    pub hang_rate: f64,
    pub malformed_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub bind_address: std::net::IpAddr,
    pub port: u16,
    /// Empty: auth off (warned at start-up; refused in Kubernetes).
    pub api_keys: Vec<Secret>,
    pub kubernetes: bool,
    pub cache_mode: RequestedMode,
    pub redis_url: String,
    pub redis_timeout: Duration,
    pub disk_cache_dir: PathBuf,
    pub ttl_transcription: Duration,
    pub ttl_pronunciation: Duration,
    pub ttl_analysis: Duration,
    pub memory_cache_max_entries: u64,
    pub memory_cache_max_bytes: u64,
    /// 0 turns per-user limiting off.
    pub rate_limit_per_minute: u32,
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
    /// Longest pause between two pieces of a request body before the request is given up.
    pub request_body_timeout: Duration,
    /// HTTP/1.1: longest wait for a request head, idle keep-alive time included (hyper starts
    /// the clock when it starts waiting for a head).
    pub header_read_timeout: Duration,
    /// `/api/*` requests served at once before new ones get 503 `overloaded`; 0 = no cap.
    pub max_in_flight: usize,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    /// Between readiness turning 503 and the listener closing: time for load balancers to stop
    /// sending new requests (an alternative to a `preStop` sleep).
    pub shutdown_delay: Duration,
    pub simulator: SimulatorSettings,
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

        let cache_mode: RequestedMode = match vars.get(CACHE_MODE) {
            None => RequestedMode::Auto,
            Some(raw) => raw.parse().map_err(|_| {
                invalid(CACHE_MODE, format!("must be auto, redis_only, tiered or disk_only (got {raw:?})"))
            })?,
        };

        let redis_url = vars.get(REDIS_URL).unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_string());
        match Url::parse(&redis_url) {
            Ok(url) if matches!(url.scheme(), "redis" | "rediss" | "unix" | "redis+unix") => {}
            _ => return Err(invalid(REDIS_URL, "must be a redis:// or rediss:// URL")),
        }

        let ttl_default = vars.seconds(CACHE_TTL_SECONDS, 604_800, 1)?;
        let ttl_or_default = |name| -> Result<Duration, ConfigError> {
            match vars.get(name) {
                Some(_) => vars.seconds(name, 0, 1),
                None => Ok(ttl_default),
            }
        };

        let upstream_timeout = vars.seconds(UPSTREAM_TIMEOUT_SECONDS, 30, 1)?;
        let lanes = vars.number(UPSTREAM_CONNECTIONS, ConnectionSettings::default().lanes, 1)?;
        if lanes > MAX_UPSTREAM_CONNECTIONS {
            return Err(invalid(
                UPSTREAM_CONNECTIONS,
                format!("must be at most {MAX_UPSTREAM_CONNECTIONS} (got {lanes})"),
            ));
        }
        let upstream_connections =
            ConnectionSettings { lanes, http2_prior_knowledge: vars.boolean(UPSTREAM_HTTP2_PRIOR_KNOWLEDGE, false)? };

        let azure = match vars.get(AZURE_SPEECH_KEY).filter(|key| !key.trim().is_empty()) {
            Some(key) => {
                let region = match vars.get(AZURE_SPEECH_REGION) {
                    Some(region) => {
                        let region = region.trim().to_string();
                        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric()) {
                            return Err(invalid(AZURE_SPEECH_REGION, "must be a region name such as westeurope"));
                        }
                        Some(region)
                    }
                    None => None,
                };
                let endpoint = vars.get(AZURE_SPEECH_ENDPOINT);
                let base_url = match (&endpoint, &region) {
                    (Some(endpoint), _) => parse_http_url(AZURE_SPEECH_ENDPOINT, endpoint)?,
                    (None, Some(region)) => {
                        parse_http_url(AZURE_SPEECH_REGION, &format!("https://{region}.stt.speech.microsoft.com"))?
                    }
                    (None, None) => {
                        return Err(invalid(
                            AZURE_SPEECH_REGION,
                            "set AZURE_SPEECH_REGION or AZURE_SPEECH_ENDPOINT with AZURE_SPEECH_KEY",
                        ));
                    }
                };
                // Fast transcription lives on the regional Cognitive Services host. A private
                // endpoint alone (a custom domain, a proxy) is taken to serve both APIs.
                let transcription_url = match (vars.get(AZURE_SPEECH_TRANSCRIPTION_ENDPOINT), &region, &endpoint) {
                    (Some(url), _, _) => parse_http_url(AZURE_SPEECH_TRANSCRIPTION_ENDPOINT, &url)?,
                    (None, Some(region), None) => {
                        parse_http_url(AZURE_SPEECH_REGION, &format!("https://{region}.api.cognitive.microsoft.com"))?
                    }
                    (None, _, _) => base_url.clone(),
                };
                AzureTarget::Cloud { base_url, transcription_url, key: Secret(key.trim().to_string()) }
            }
            None if kubernetes => return Err(invalid(AZURE_SPEECH_KEY, "is required when running in Kubernetes")),
            None => AzureTarget::Simulator,
        };

        let gemini = match vars.get(GEMINI_API_KEY).filter(|key| !key.trim().is_empty()) {
            Some(key) => {
                let base = vars
                    .get(GEMINI_BASE_URL)
                    .unwrap_or_else(|| "https://generativelanguage.googleapis.com".to_string());
                GeminiTarget::Cloud {
                    base_url: parse_http_url(GEMINI_BASE_URL, &base)?,
                    key: Secret(key.trim().to_string()),
                }
            }
            None if kubernetes => return Err(invalid(GEMINI_API_KEY, "is required when running in Kubernetes")),
            None => GeminiTarget::Simulator,
        };

        let gemini_model = vars
            .get(GEMINI_MODEL)
            .map(|model| model.trim().to_string())
            .unwrap_or_else(|| "gemini-2.5-flash".to_string());
        if gemini_model.is_empty() || !gemini_model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(invalid(GEMINI_MODEL, "must be a model id such as gemini-2.5-flash"));
        }

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
            redis_url,
            redis_timeout: Duration::from_millis(vars.number(REDIS_TIMEOUT_MS, 250u64, 1)?),
            disk_cache_dir: PathBuf::from(vars.get(DISK_CACHE_DIR).unwrap_or_else(|| "./data/cache".to_string())),
            ttl_transcription: ttl_or_default(CACHE_TTL_TRANSCRIPTION_SECONDS)?,
            ttl_pronunciation: ttl_or_default(CACHE_TTL_PRONUNCIATION_SECONDS)?,
            ttl_analysis: ttl_or_default(CACHE_TTL_ANALYSIS_SECONDS)?,
            memory_cache_max_entries: vars.number(CACHE_MEMORY_MAX_ENTRIES, 10_000u64, 0)?,
            memory_cache_max_bytes: vars.number(CACHE_MEMORY_MAX_BYTES, 64 * 1024 * 1024u64, 0)?,
            rate_limit_per_minute: vars.number(RATE_LIMIT_PER_MINUTE, 60u32, 0)?,
            breaker_failure_threshold: vars.number(BREAKER_FAILURE_THRESHOLD, 5u32, 1)?,
            breaker_recovery_timeout: vars.seconds(BREAKER_RECOVERY_TIMEOUT_SECONDS, 60, 1)?,
            breaker_half_open_probes: vars.number(BREAKER_HALF_OPEN_PROBES, 1u32, 1)?,
            upstream_timeout,
            upstream_max_attempts: vars.number(UPSTREAM_MAX_ATTEMPTS, 3u32, 1)?,
            upstream_connections,
            azure,
            gemini,
            gemini_model,
            audio_max_bytes: vars.number(AUDIO_MAX_BYTES, 10_485_760usize, 1)?,
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
            request_body_timeout: vars.seconds(REQUEST_BODY_TIMEOUT_SECONDS, 15, 1)?,
            header_read_timeout: vars.seconds(
                HEADER_READ_TIMEOUT_SECONDS,
                crate::server::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
                1,
            )?,
            max_in_flight: vars.number(MAX_IN_FLIGHT, 0usize, 0)?,
            log_format,
            shutdown_grace: vars.seconds(SHUTDOWN_GRACE_SECONDS, 25, 0)?,
            shutdown_delay: vars.seconds(SHUTDOWN_DELAY_SECONDS, 0, 0)?,
            simulator: SimulatorSettings {
                latency: Duration::from_millis(vars.number(SIMULATOR_LATENCY_MS, 0u64, 0)?),
                rate_limit_rate: vars.rate(SIMULATOR_RATE_LIMIT_RATE)?,
                server_error_rate: vars.rate(SIMULATOR_SERVER_ERROR_RATE)?,
                hang_rate: vars.rate(SIMULATOR_HANG_RATE)?,
                malformed_rate: vars.rate(SIMULATOR_MALFORMED_RATE)?,
            },
        })
    }

    /// Whether any upstream is served by the built-in simulator.
    pub fn uses_simulator(&self) -> bool {
        self.azure == AzureTarget::Simulator || self.gemini == GeminiTarget::Simulator
    }
}

/// The environment first, then the config file.
struct Vars<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    file: HashMap<String, String>,
}

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).or_else(|| self.file.get(name).cloned())
    }

    fn number<T>(&self, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<T>() {
                Ok(value) if value >= min => Ok(value),
                Ok(_) => Err(invalid(name, format!("must be at least {min} (got {raw:?})"))),
                Err(_) => Err(invalid(name, format!("must be a whole number (got {raw:?})"))),
            },
        }
    }

    fn seconds(&self, name: &'static str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        self.number(name, default, min).map(Duration::from_secs)
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(raw) => match raw.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" | "" => Ok(false),
                _ => Err(invalid(name, format!("must be true or false (got {raw:?})"))),
            },
        }
    }

    fn rate(&self, name: &'static str) -> Result<f64, ConfigError> {
        match self.get(name) {
            None => Ok(0.0),
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
                _ => Err(invalid(name, format!("must be a probability from 0 to 1 (got {raw:?})"))),
            },
        }
    }
}

fn parse_http_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(invalid(variable, format!("must be an http(s) URL (got {raw:?})"))),
    }
}

/// A flat TOML table whose keys are the variable names, e.g. `RATE_LIMIT_PER_MINUTE = 120`.
fn read_config_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|error| invalid(CONFIG_FILE, format!("cannot read {path}: {error}")))?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        invalid(CONFIG_FILE, format!("{path} is not valid TOML: {}", error.message()))
    })?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Float(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned).unwrap_or_else(|| item.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    return Err(invalid(
                        CONFIG_FILE,
                        format!("{key} in {path} must be a plain value, not {}", other.type_str()),
                    ));
                }
            };
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned(), Path::new("/nonexistent/serviceaccount"))
    }

    #[test]
    fn defaults_run_on_the_simulator_outside_kubernetes() {
        let settings = settings(&[]).expect("defaults are valid");
        assert_eq!(settings.port, 8000);
        assert_eq!(settings.azure, AzureTarget::Simulator);
        assert_eq!(settings.gemini, GeminiTarget::Simulator);
        assert_eq!(settings.cache_mode, RequestedMode::Auto);
        assert_eq!(settings.log_format, LogFormat::Pretty);
        assert_eq!(settings.upstream_timeout, Duration::from_secs(30));
        assert_eq!(settings.ttl_analysis, Duration::from_secs(604_800));
        assert_eq!(settings.upstream_connections, ConnectionSettings { lanes: 8, http2_prior_knowledge: false });
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            (PORT, "eighty"),
            (PORT, "70000"),
            (CACHE_MODE, "memory"),
            (RATE_LIMIT_PER_MINUTE, "-1"),
            (BREAKER_FAILURE_THRESHOLD, "0"),
            (UPSTREAM_TIMEOUT_SECONDS, "0"),
            (UPSTREAM_CONNECTIONS, "0"),
            (UPSTREAM_CONNECTIONS, "65"),
            (UPSTREAM_HTTP2_PRIOR_KNOWLEDGE, "h2c"),
            (AUDIO_FETCH_ALLOW_PRIVATE, "maybe"),
            (AUDIO_MAX_SECONDS, "0"),
            (AUDIO_SEND_FORMAT, "mp3"),
            (AUDIO_WORKERS, "0"),
            (REDIS_URL, "http://example"),
            (LOG_FORMAT, "xml"),
            (SIMULATOR_HANG_RATE, "2"),
            (GEMINI_MODEL, "gemini 2.5/../x"),
        ] {
            let error = settings(&[(name, value)]).expect_err(name);
            assert_eq!(error.variable, name, "{error}");
            assert!(error.to_string().starts_with(&format!("invalid configuration: {name}: ")));
        }
    }

    #[test]
    fn kubernetes_requires_keys_and_defaults_to_json_logs() {
        let error = settings(&[(KUBERNETES_SERVICE_HOST, "10.0.0.1")]).expect_err("no api keys");
        assert_eq!(error.variable, API_KEYS);
        let error = settings(&[(KUBERNETES_SERVICE_HOST, "10.0.0.1"), (API_KEYS, "k")]).expect_err("no azure key");
        assert_eq!(error.variable, AZURE_SPEECH_KEY);
        let settings = settings(&[
            (KUBERNETES_SERVICE_HOST, "10.0.0.1"),
            (API_KEYS, "k1, k2"),
            (AZURE_SPEECH_KEY, "a"),
            (AZURE_SPEECH_REGION, "westeurope"),
            (GEMINI_API_KEY, "g"),
        ])
        .expect("complete kubernetes settings");
        assert!(settings.kubernetes);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.api_keys.len(), 2);
        assert!(matches!(&settings.azure, AzureTarget::Cloud { base_url, transcription_url, .. }
            if base_url.as_str() == "https://westeurope.stt.speech.microsoft.com/"
                && transcription_url.as_str() == "https://westeurope.api.cognitive.microsoft.com/"));
    }

    #[test]
    fn an_azure_key_needs_a_region_or_endpoint() {
        let error = settings(&[(AZURE_SPEECH_KEY, "a")]).expect_err("no region");
        assert_eq!(error.variable, AZURE_SPEECH_REGION);
        let ok =
            settings(&[(AZURE_SPEECH_KEY, "a"), (AZURE_SPEECH_ENDPOINT, "http://127.0.0.1:9999")]).expect("endpoint");
        assert!(
            matches!(&ok.azure, AzureTarget::Cloud { transcription_url, .. }
            if transcription_url.as_str() == "http://127.0.0.1:9999/"),
            "a private endpoint serves both APIs"
        );
        let split = settings(&[
            (AZURE_SPEECH_KEY, "a"),
            (AZURE_SPEECH_REGION, "westeurope"),
            (AZURE_SPEECH_TRANSCRIPTION_ENDPOINT, "http://127.0.0.1:9998"),
        ])
        .expect("both");
        assert!(matches!(&split.azure, AzureTarget::Cloud { base_url, transcription_url, .. }
            if base_url.host_str() == Some("westeurope.stt.speech.microsoft.com")
                && transcription_url.as_str() == "http://127.0.0.1:9998/"));
    }

    #[test]
    fn per_kind_ttls_override_the_default() {
        let settings = settings(&[(CACHE_TTL_SECONDS, "100"), (CACHE_TTL_ANALYSIS_SECONDS, "5")]).expect("valid");
        assert_eq!(settings.ttl_transcription, Duration::from_secs(100));
        assert_eq!(settings.ttl_analysis, Duration::from_secs(5));
    }

    #[test]
    fn the_config_file_supplies_defaults_and_the_environment_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("backend-ai.toml");
        std::fs::write(&path, "RATE_LIMIT_PER_MINUTE = 120\nPORT = 9000\nAPI_KEYS = [\"a\", \"b\"]\n").expect("write");
        let path = path.to_string_lossy().to_string();
        let settings = settings(&[(CONFIG_FILE, &path), (PORT, "9100")]).expect("valid");
        assert_eq!(settings.rate_limit_per_minute, 120);
        assert_eq!(settings.port, 9100);
        assert_eq!(settings.api_keys.len(), 2);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = settings(&[(API_KEYS, "super-secret-key")]).expect("valid");
        assert!(!format!("{settings:?}").contains("super-secret-key"));
    }
}
