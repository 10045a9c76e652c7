//! The cache's tiers: which run, how large each may grow, how long a result is kept.
//!
//! Variables: `CACHE_MODE`, `CACHE_TTL_SECONDS`, `CACHE_TTL_TRANSCRIPTION_SECONDS`,
//! `CACHE_TTL_PRONUNCIATION_SECONDS`, `CACHE_TTL_ANALYSIS_SECONDS`, `CACHE_MEMORY_MAX_ENTRIES`,
//! `CACHE_MEMORY_MAX_BYTES`, `DISK_CACHE_DIR`, `DISK_CACHE_MAX_BYTES`. Where the Redis tier
//! lives is [`super::RedisSettings`]'.

use std::path::PathBuf;
use std::time::Duration;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::cache::{CacheConfig, RequestedMode, Ttls, resolve_mode};

/// New `CACHE_*` and `DISK_CACHE_*` variables belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    pub mode: RequestedMode,
    pub disk_dir: PathBuf,
    /// `DISK_CACHE_MAX_BYTES`: the disk tier's bound.
    pub disk_max_bytes: u64,
    pub ttl_transcription: Duration,
    pub ttl_pronunciation: Duration,
    pub ttl_analysis: Duration,
    pub memory_max_entries: u64,
    pub memory_max_bytes: u64,
}

impl CacheSettings {
    pub(super) fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let mode: RequestedMode = match vars.get(CACHE_MODE) {
            None => RequestedMode::Auto,
            Some(raw) => raw.parse().map_err(|_| {
                invalid(CACHE_MODE, format!("must be auto, redis_only, tiered or disk_only (got {raw:?})"))
            })?,
        };
        let ttl_default = vars.seconds(CACHE_TTL_SECONDS, 604_800, 1)?;
        let ttl_or_default = |name| -> Result<Duration, ConfigError> {
            match vars.get(name) {
                Some(_) => vars.seconds(name, 0, 1),
                None => Ok(ttl_default),
            }
        };
        Ok(Self {
            mode,
            disk_dir: PathBuf::from(vars.get(DISK_CACHE_DIR).unwrap_or_else(|| "./data/cache".to_string())),
            disk_max_bytes: vars.number(DISK_CACHE_MAX_BYTES, 1u64 << 30, 1)?,
            ttl_transcription: ttl_or_default(CACHE_TTL_TRANSCRIPTION_SECONDS)?,
            ttl_pronunciation: ttl_or_default(CACHE_TTL_PRONUNCIATION_SECONDS)?,
            ttl_analysis: ttl_or_default(CACHE_TTL_ANALYSIS_SECONDS)?,
            memory_max_entries: vars.number(CACHE_MEMORY_MAX_ENTRIES, 10_000u64, 0)?,
            memory_max_bytes: vars.number(CACHE_MEMORY_MAX_BYTES, 64 * 1024 * 1024u64, 0)?,
        })
    }

    /// The cache's configuration, in the mode `CACHE_MODE` asks for or, on `auto`, the one
    /// where it runs calls for (`redis_only` in Kubernetes).
    pub fn config(&self, kubernetes: bool) -> CacheConfig {
        let (mode, source) = resolve_mode(self.mode, kubernetes);
        CacheConfig {
            ttl: Ttls {
                transcription: self.ttl_transcription,
                pronunciation: self.ttl_pronunciation,
                analysis: self.ttl_analysis,
            },
            memory_max_entries: self.memory_max_entries,
            memory_max_bytes: self.memory_max_bytes,
            disk_max_bytes: self.disk_max_bytes,
            ..CacheConfig::new(mode, source, self.disk_dir.clone())
        }
    }
}
