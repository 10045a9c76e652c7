//! Gemini: where its calls go, with which key, and which model answers.
//!
//! Variables: `GEMINI_API_KEY`, `GEMINI_BASE_URL`, `GEMINI_MODEL`.

use url::Url;

use super::simulated;
use crate::config::names::*;
use crate::config::vars::{ConfigError, Vars, invalid, parse_http_url};
use crate::secret::Secret;
use crate::upstream::connections::ConnectionSettings;
use crate::upstream::gemini::GeminiConfig;

/// The Gemini part of the upstreams: new `GEMINI_*` variables belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct GeminiSettings {
    pub target: GeminiTarget,
    /// `GEMINI_MODEL`: a model id; it is part of every analysis's cache key.
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GeminiTarget {
    Cloud { base_url: Url, key: Secret },
    Simulator,
}

impl GeminiSettings {
    /// Gemini from `GEMINI_API_KEY`; the simulator without one (refused in Kubernetes).
    pub(in crate::config) fn from_vars(vars: &Vars<'_>, kubernetes: bool) -> Result<Self, ConfigError> {
        let target = match vars.get(GEMINI_API_KEY).filter(|key| !key.trim().is_empty()) {
            Some(key) => {
                let base = vars
                    .get(GEMINI_BASE_URL)
                    .unwrap_or_else(|| "https://generativelanguage.googleapis.com".to_string());
                GeminiTarget::Cloud { base_url: parse_http_url(GEMINI_BASE_URL, &base)?, key: Secret::new(key.trim()) }
            }
            None if kubernetes => return Err(invalid(GEMINI_API_KEY, "is required when running in Kubernetes")),
            None => GeminiTarget::Simulator,
        };
        let model = vars
            .get(GEMINI_MODEL)
            .map(|model| model.trim().to_string())
            .unwrap_or_else(|| "gemini-2.5-flash".to_string());
        if model.is_empty() || !model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(invalid(GEMINI_MODEL, "must be a model id such as gemini-2.5-flash"));
        }
        Ok(Self { target, model })
    }

    /// The client's configuration. `simulator` is the built-in simulator's address, which runs
    /// whenever a target is the simulator.
    pub fn config(&self, connections: ConnectionSettings, simulator: Option<&Url>) -> GeminiConfig {
        let (base_url, api_key, connections) = match &self.target {
            GeminiTarget::Cloud { base_url, key } => (base_url.clone(), key.expose().to_string(), connections),
            GeminiTarget::Simulator => (
                simulator.expect("the simulator runs whenever a target is the simulator").clone(),
                "simulator".to_string(),
                simulated(connections),
            ),
        };
        GeminiConfig {
            base_url,
            api_key,
            model: self.model.clone(),
            api_version: GeminiConfig::DEFAULT_API_VERSION.to_string(),
            connections,
        }
    }

    /// The cloud endpoint, `None` for the simulator.
    pub fn cloud_url(&self) -> Option<&Url> {
        match &self.target {
            GeminiTarget::Cloud { base_url, .. } => Some(base_url),
            GeminiTarget::Simulator => None,
        }
    }
}
