//! Who may use `/api/*`, and how much of it.
//!
//! Variables: `API_KEYS`, `RATE_LIMIT_PER_MINUTE`, `RATE_LIMIT_PER_KEY_PER_MINUTE`,
//! `RATE_LIMIT_LEASE_MS`, `MAX_IN_FLIGHT`.

use std::time::Duration;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::middleware::rate_limit::RateLimitConfig;
use crate::secret::Secret;

/// `RATE_LIMIT_PER_KEY_PER_MINUTE` defaults to this many users' worth of the per-user limit.
const DEFAULT_KEY_CEILING_FACTOR: u32 = 100;
/// `MAX_IN_FLIGHT`'s default. A held analysis costs 25-40 KB (BENCHMARKS.md, c: 10,000 held in
/// 227-231 MiB over HTTP/2), so 3000 hold ~120 MB; with `AUDIO_BYTES_IN_FLIGHT`'s 128 MiB that
/// stays well inside the shipped 512 Mi pod limit. Both upstreams together take at most about
/// 2 x `UPSTREAM_CONNECTIONS` x 100 calls at once (1600 by default): more only queue.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 3000;

/// New variables about keys, rate limits and admission to `/api/*` belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessSettings {
    /// Empty: auth off (warned at start-up; refused in Kubernetes).
    pub api_keys: Vec<Secret>,
    /// 0 turns per-user limiting off.
    pub rate_limit_per_minute: u32,
    /// Ceiling per API key (per client address without one), whatever the user ids; 0: off.
    pub rate_limit_per_key_per_minute: u32,
    /// How long a pod spends a lease of a shared limit from memory; zero: Redis per request.
    pub rate_limit_lease: Duration,
    /// `/api/*` requests served at once before new ones get 503 `overloaded`; 0 = no cap.
    pub max_in_flight: usize,
}

impl AccessSettings {
    pub(super) fn from_vars(vars: &Vars<'_>, kubernetes: bool) -> Result<Self, ConfigError> {
        let api_keys: Vec<Secret> = vars
            .get(API_KEYS)
            .map(|raw| raw.split(',').map(str::trim).filter(|key| !key.is_empty()).map(Secret::new).collect())
            .unwrap_or_default();
        if api_keys.is_empty() && kubernetes {
            return Err(invalid(API_KEYS, "must list at least one key when running in Kubernetes"));
        }
        // Commas and blanks only is a typo for a key list, not a wish to turn auth off.
        if api_keys.is_empty() && vars.get(API_KEYS).is_some_and(|raw| !raw.is_empty()) {
            return Err(invalid(API_KEYS, "lists no key (only commas or blanks); leave it empty to turn auth off"));
        }
        let rate_limit_per_minute = vars.number(RATE_LIMIT_PER_MINUTE, 60u32, 0)?;
        Ok(Self {
            api_keys,
            rate_limit_per_minute,
            rate_limit_per_key_per_minute: vars.number(
                RATE_LIMIT_PER_KEY_PER_MINUTE,
                rate_limit_per_minute.saturating_mul(DEFAULT_KEY_CEILING_FACTOR),
                0,
            )?,
            rate_limit_lease: Duration::from_millis(vars.number(
                RATE_LIMIT_LEASE_MS,
                u64::try_from(crate::middleware::rate_limit::DEFAULT_LEASE.as_millis()).unwrap_or(u64::MAX),
                0,
            )?),
            max_in_flight: vars.number(MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT, 0)?,
        })
    }

    /// The limits that are on (a limit of 0 is off): per user, then the ceiling per API key.
    pub fn rate_limits(&self, api_keys_enabled: bool) -> Vec<RateLimitConfig> {
        [
            (self.rate_limit_per_minute, RateLimitConfig::new(self.rate_limit_per_minute, api_keys_enabled)),
            (
                self.rate_limit_per_key_per_minute,
                RateLimitConfig::ceiling(self.rate_limit_per_key_per_minute, api_keys_enabled),
            ),
        ]
        .into_iter()
        .filter(|(per_minute, _)| *per_minute > 0)
        .map(|(_, config)| RateLimitConfig { lease: self.rate_limit_lease, ..config })
        .collect()
    }
}
