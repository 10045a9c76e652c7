//! Which Redis a link talks to: one endpoint, a cluster, or a master found through Sentinel.
//! Parsed and checked once by `config`; the link only reads it.

use std::path::PathBuf;

/// The default `REDIS_KEY_PREFIX`: several deployments can share one Redis by each taking its own.
pub const DEFAULT_KEY_PREFIX: &str = "backend-ai:";

#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// `REDIS_URL`: one endpoint (a standalone Redis, or a proxy in front of many).
    Single { url: String },
    /// `REDIS_CLUSTER_NODES`: seeds; the driver learns the rest of the cluster from any of them.
    Cluster { seeds: Vec<String> },
    /// `REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`: the sentinels are asked where the master is,
    /// again after every failure, so a failover is followed.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        /// `REDIS_SENTINEL_PASSWORD`: the sentinels' own password, often not the data nodes'.
        sentinel_password: Option<String>,
        /// From the first sentinel URL: `rediss://` means TLS to the data nodes too.
        tls: bool,
        /// The data nodes' password and database, from the first sentinel URL's user info and path.
        password: Option<String>,
        db: i64,
    },
}

impl Topology {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Single { .. } => "single",
            Self::Cluster { .. } => "cluster",
            Self::Sentinel { .. } => "sentinel",
        }
    }
}

/// Passwords stay out of `Debug`, so settings can be logged.
impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single { url } => f.debug_struct("Single").field("url", &redact(url)).finish(),
            Self::Cluster { seeds } => {
                f.debug_struct("Cluster").field("seeds", &seeds.iter().map(|s| redact(s)).collect::<Vec<_>>()).finish()
            }
            Self::Sentinel { sentinels, master, db, tls, .. } => f
                .debug_struct("Sentinel")
                .field("sentinels", &sentinels.iter().map(|s| redact(s)).collect::<Vec<_>>())
                .field("master", master)
                .field("db", db)
                .field("tls", tls)
                .finish_non_exhaustive(),
        }
    }
}

/// One Redis store: where it is, how to trust its TLS, and the prefix of every key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub topology: Topology,
    /// `REDIS_CA_FILE`: a PEM bundle to trust for `rediss://` instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    pub key_prefix: String,
}

impl RedisTarget {
    pub fn single(url: impl Into<String>) -> Self {
        Self { topology: Topology::Single { url: url.into() }, ca_file: None, key_prefix: DEFAULT_KEY_PREFIX.into() }
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
