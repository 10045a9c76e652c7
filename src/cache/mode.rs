//! Which tiers the cache uses, and why: `CACHE_MODE`, or Kubernetes detection when it says
//! `auto`. On Kubernetes a pod's disk is its own, so a disk tier would only split the cache
//! between replicas (the old service's multi-instance bug); Redis alone is shared by all.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The directory every Kubernetes pod gets when a service account token is mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The tiers in use, after `auto` is resolved. The in-process memory tier is always in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheMode {
    /// memory + Redis.
    RedisOnly,
    /// memory + Redis + disk.
    Tiered,
    /// memory + disk.
    DiskOnly,
}

impl CacheMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RedisOnly => "redis_only",
            Self::Tiered => "tiered",
            Self::DiskOnly => "disk_only",
        }
    }

    pub fn uses_redis(self) -> bool {
        matches!(self, Self::RedisOnly | Self::Tiered)
    }

    pub fn uses_disk(self) -> bool {
        matches!(self, Self::Tiered | Self::DiskOnly)
    }
}

impl fmt::Display for CacheMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `CACHE_MODE` as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestedMode {
    #[default]
    Auto,
    RedisOnly,
    Tiered,
    DiskOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CACHE_MODE must be one of auto, redis_only, tiered, disk_only; got {0:?}")]
pub struct UnknownCacheMode(pub String);

impl FromStr for RequestedMode {
    type Err = UnknownCacheMode;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "redis_only" => Ok(Self::RedisOnly),
            "tiered" => Ok(Self::Tiered),
            "disk_only" => Ok(Self::DiskOnly),
            _ => Err(UnknownCacheMode(raw.to_string())),
        }
    }
}

/// Why the mode is what it is; `mode_source` in `/health/cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModeSource {
    /// `CACHE_MODE` named a mode.
    Env,
    /// `auto`, and Kubernetes was detected.
    Kubernetes,
    /// `auto`, no Kubernetes.
    Default,
}

impl ModeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Kubernetes => "kubernetes",
            Self::Default => "default",
        }
    }
}

/// An explicit mode always wins; `auto` is `redis_only` on Kubernetes and `tiered` elsewhere.
pub fn resolve_mode(requested: RequestedMode, kubernetes: bool) -> (CacheMode, ModeSource) {
    match requested {
        RequestedMode::RedisOnly => (CacheMode::RedisOnly, ModeSource::Env),
        RequestedMode::Tiered => (CacheMode::Tiered, ModeSource::Env),
        RequestedMode::DiskOnly => (CacheMode::DiskOnly, ModeSource::Env),
        RequestedMode::Auto if kubernetes => (CacheMode::RedisOnly, ModeSource::Kubernetes),
        RequestedMode::Auto => (CacheMode::Tiered, ModeSource::Default),
    }
}

/// Kubernetes sets `KUBERNETES_SERVICE_HOST` in every container and usually mounts a service
/// account; either is enough. `env` and `sa_path` are injected so tests need neither.
pub fn kubernetes_detected(env: &impl Fn(&str) -> Option<String>, sa_path: &Path) -> bool {
    env("KUBERNETES_SERVICE_HOST").is_some_and(|host| !host.trim().is_empty()) || sa_path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn auto_resolves_to_redis_only_on_kubernetes_and_tiered_elsewhere() {
        assert_eq!(resolve_mode(RequestedMode::Auto, true), (CacheMode::RedisOnly, ModeSource::Kubernetes));
        assert_eq!(resolve_mode(RequestedMode::Auto, false), (CacheMode::Tiered, ModeSource::Default));
    }

    #[test]
    fn an_explicit_mode_overrides_kubernetes_detection() {
        for kubernetes in [true, false] {
            assert_eq!(resolve_mode(RequestedMode::Tiered, kubernetes), (CacheMode::Tiered, ModeSource::Env));
            assert_eq!(resolve_mode(RequestedMode::DiskOnly, kubernetes), (CacheMode::DiskOnly, ModeSource::Env));
            assert_eq!(resolve_mode(RequestedMode::RedisOnly, kubernetes), (CacheMode::RedisOnly, ModeSource::Env));
        }
    }

    #[test]
    fn kubernetes_service_host_means_kubernetes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("serviceaccount");
        let env = |name: &str| (name == "KUBERNETES_SERVICE_HOST").then(|| "10.0.0.1".to_string());
        assert!(kubernetes_detected(&env, &missing));
        assert!(!kubernetes_detected(&no_env, &missing));
        let blank = |name: &str| (name == "KUBERNETES_SERVICE_HOST").then(String::new);
        assert!(!kubernetes_detected(&blank, &missing));
    }

    #[test]
    fn a_mounted_service_account_means_kubernetes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(kubernetes_detected(&no_env, dir.path()));
    }

    #[test]
    fn kubernetes_from_the_environment_with_auto_gives_redis_only_from_kubernetes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = |name: &str| (name == "KUBERNETES_SERVICE_HOST").then(|| "10.0.0.1".to_string());
        let requested: RequestedMode = "auto".parse().expect("auto parses");
        let detected = kubernetes_detected(&env, &dir.path().join("absent"));
        assert_eq!(resolve_mode(requested, detected), (CacheMode::RedisOnly, ModeSource::Kubernetes));
        let requested: RequestedMode = "TIERED".parse().expect("tiered parses");
        assert_eq!(resolve_mode(requested, detected), (CacheMode::Tiered, ModeSource::Env));
    }

    #[test]
    fn an_unknown_mode_is_a_configuration_error() {
        assert!("redis".parse::<RequestedMode>().is_err());
        assert_eq!("".parse::<RequestedMode>(), Ok(RequestedMode::Auto));
    }
}
