//! Where values come from (the environment, then `CONFIG_FILE`), how each kind of value is read,
//! and the one error a bad value gives.

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use super::names::CONFIG_FILE;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

pub(super) fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

/// The environment first, then the config file.
pub(super) struct Vars<'a> {
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(super) file: HashMap<String, String>,
}

impl Vars<'_> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).or_else(|| self.file.get(name).cloned())
    }

    pub(super) fn number<T>(&self, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
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

    pub(super) fn seconds(&self, name: &'static str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        self.number(name, default, min).map(Duration::from_secs)
    }

    pub(super) fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(raw) => match raw.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" | "" => Ok(false),
                _ => Err(invalid(name, format!("must be true or false (got {raw:?})"))),
            },
        }
    }

    pub(super) fn rate(&self, name: &'static str) -> Result<f64, ConfigError> {
        match self.get(name) {
            None => Ok(0.0),
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
                _ => Err(invalid(name, format!("must be a probability from 0 to 1 (got {raw:?})"))),
            },
        }
    }
}

pub(super) fn parse_http_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(invalid(variable, format!("must be an http(s) URL (got {raw:?})"))),
    }
}

/// A flat TOML table whose keys are the variable names, e.g. `RATE_LIMIT_PER_MINUTE = 120`.
pub(super) fn read_config_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
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
