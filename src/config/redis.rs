//! Where the shared state lives: the cache's Redis (one endpoint, a cluster or Sentinel) and,
//! optionally, a store of its own for rate limits. Contradictions are refused here, naming the
//! variable, rather than surfacing as a `CROSSSLOT` or a silent per-pod limit in production.
//!
//! Variables: `REDIS_URL`, `REDIS_CLUSTER_NODES`, `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`,
//! `REDIS_SENTINEL_PASSWORD`, `REDIS_CA_FILE`, `REDIS_KEY_PREFIX`, `REDIS_TIMEOUT_MS`, and the
//! limits' own `RATE_LIMIT_REDIS_URL`, `RATE_LIMIT_REDIS_CLUSTER_NODES`,
//! `RATE_LIMIT_REDIS_SENTINELS`, `RATE_LIMIT_REDIS_SENTINEL_MASTER`,
//! `RATE_LIMIT_REDIS_SENTINEL_PASSWORD`.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::redis::{DEFAULT_KEY_PREFIX, LinkOptions, RedisTarget, Topology};

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// New `REDIS_*` variables, and those of another Redis store, belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
    /// The cache, its single-flight leases, and the limits unless `limits` is set.
    pub cache: RedisTarget,
    /// `RATE_LIMIT_REDIS_*`: limits kept where cache eviction cannot reach them.
    pub limits: Option<RedisTarget>,
    /// `REDIS_TIMEOUT_MS`: bound on every operation, on either store.
    pub timeout: Duration,
}

/// The variables of one store, by topology.
struct Family {
    url: &'static str,
    cluster: &'static str,
    sentinels: &'static str,
    master: &'static str,
    sentinel_password: &'static str,
}

const CACHE: Family = Family {
    url: REDIS_URL,
    cluster: REDIS_CLUSTER_NODES,
    sentinels: REDIS_SENTINELS,
    master: REDIS_SENTINEL_MASTER,
    sentinel_password: REDIS_SENTINEL_PASSWORD,
};

const LIMITS: Family = Family {
    url: RATE_LIMIT_REDIS_URL,
    cluster: RATE_LIMIT_REDIS_CLUSTER_NODES,
    sentinels: RATE_LIMIT_REDIS_SENTINELS,
    master: RATE_LIMIT_REDIS_SENTINEL_MASTER,
    sentinel_password: RATE_LIMIT_REDIS_SENTINEL_PASSWORD,
};

impl RedisSettings {
    pub(super) fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        redis_settings(vars)
    }

    /// The link options of the limits' own store: its own `service` label in the metrics.
    pub fn limits_options(&self) -> LinkOptions {
        LinkOptions { service: "redis_limits", ..LinkOptions::new(self.timeout) }
    }
}

fn redis_settings(vars: &Vars<'_>) -> Result<RedisSettings, ConfigError> {
    let key_prefix = vars.get(REDIS_KEY_PREFIX).unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
    if key_prefix.contains(['{', '}']) {
        return Err(invalid(
            REDIS_KEY_PREFIX,
            "must not contain { or }: a hash tag in the prefix would put every key in one cluster slot",
        ));
    }
    if key_prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(REDIS_KEY_PREFIX, "must not contain blanks or control characters"));
    }
    let ca_file = match vars.get(REDIS_CA_FILE).filter(|raw| !raw.trim().is_empty()) {
        None => None,
        Some(raw) => {
            let path = PathBuf::from(raw.trim());
            if !path.is_file() {
                return Err(invalid(REDIS_CA_FILE, format!("{} is not a readable file", path.display())));
            }
            Some(path)
        }
    };
    let target = |topology| RedisTarget { topology, ca_file: ca_file.clone(), key_prefix: key_prefix.clone() };
    let cache = topology(vars, &CACHE)?.unwrap_or_else(|| Topology::Single { url: DEFAULT_REDIS_URL.to_string() });
    let limits = topology(vars, &LIMITS)?;
    let timeout = Duration::from_millis(vars.number(REDIS_TIMEOUT_MS, 250u64, 1)?);
    Ok(RedisSettings { cache: target(cache), limits: limits.map(target), timeout })
}

/// The family's topology, or `None` when none of its variables is set.
fn topology(vars: &Vars<'_>, family: &Family) -> Result<Option<Topology>, ConfigError> {
    let set = |name: &str| vars.get(name).filter(|raw| !raw.trim().is_empty());
    let chosen: Vec<&'static str> =
        [family.url, family.cluster, family.sentinels].into_iter().filter(|name| set(name).is_some()).collect();
    if let [first, second, ..] = chosen[..] {
        return Err(invalid(
            second,
            format!(
                "set together with {first}; choose one of {}, {} or {} for one store",
                family.url, family.cluster, family.sentinels
            ),
        ));
    }
    if set(family.master).is_some() && set(family.sentinels).is_none() {
        return Err(invalid(family.master, format!("needs {} (the sentinels to ask for it)", family.sentinels)));
    }
    if let Some(raw) = set(family.url) {
        let url = redis_url(family.url, raw.trim())?;
        return Ok(Some(Topology::Single { url: url.to_string() }));
    }
    if let Some(raw) = set(family.cluster) {
        let seeds = urls(family.cluster, &raw)?;
        for seed in &seeds {
            if !matches!(seed.path(), "" | "/" | "/0") {
                return Err(invalid(family.cluster, "a cluster has only database 0; drop the /N from every seed"));
            }
        }
        return Ok(Some(Topology::Cluster { seeds: seeds.iter().map(ToString::to_string).collect() }));
    }
    if let Some(raw) = set(family.sentinels) {
        let Some(master) = set(family.master) else {
            return Err(invalid(
                family.master,
                format!("names the master group that {} watch; it is required", family.sentinels),
            ));
        };
        let sentinels = urls(family.sentinels, &raw)?;
        let first = &sentinels[0];
        let db = match first.path().trim_start_matches('/') {
            "" => 0,
            number => number
                .parse::<i64>()
                .map_err(|_| invalid(family.sentinels, format!("the database must be a number (got {number:?})")))?,
        };
        return Ok(Some(Topology::Sentinel {
            sentinels: sentinels.iter().map(without_credentials).collect(),
            master: master.trim().to_string(),
            sentinel_password: set(family.sentinel_password),
            tls: first.scheme() == "rediss",
            password: first.password().map(str::to_string),
            db,
        }));
    }
    Ok(None)
}

fn redis_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "redis" | "rediss" | "unix" | "redis+unix") => Ok(url),
        _ => Err(invalid(variable, "must be a redis:// or rediss:// URL")),
    }
}

/// A comma-separated list of `redis://` or `rediss://` URLs, all of one scheme.
fn urls(variable: &'static str, raw: &str) -> Result<Vec<Url>, ConfigError> {
    let urls = raw
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match Url::parse(part) {
            Ok(url) if matches!(url.scheme(), "redis" | "rediss") && url.host().is_some() => Ok(url),
            _ => Err(invalid(
                variable,
                format!("each entry must be a redis:// or rediss:// URL with a host (got {part:?})"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(invalid(variable, "lists no URL"));
    }
    if urls.iter().any(|url| url.scheme() != urls[0].scheme()) {
        return Err(invalid(variable, "mixes redis:// and rediss://; use one for every node"));
    }
    Ok(urls)
}

/// A sentinel's address only: the user info in `REDIS_SENTINELS` is the data nodes' password,
/// and the sentinels' own is `REDIS_SENTINEL_PASSWORD`.
fn without_credentials(url: &Url) -> String {
    let mut bare = url.clone();
    let _ = bare.set_password(None);
    let _ = bare.set_username("");
    bare.set_path("");
    bare.to_string()
}
