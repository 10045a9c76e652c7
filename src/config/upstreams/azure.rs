//! Azure Speech: where its calls go and with which key.
//!
//! Variables: `AZURE_SPEECH_KEY`, `AZURE_SPEECH_REGION`, `AZURE_SPEECH_ENDPOINT`,
//! `AZURE_SPEECH_TRANSCRIPTION_ENDPOINT`, `PRONUNCIATION_CONCURRENCY`.

use url::Url;

use super::simulated;
use crate::config::names::*;
use crate::config::vars::{ConfigError, Vars, invalid, parse_http_url};
use crate::secret::Secret;
use crate::upstream::azure_speech::AzureSpeechConfig;
use crate::upstream::connections::ConnectionSettings;

/// The Azure Speech part of the upstreams: new `AZURE_SPEECH_*` variables belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct AzureSettings {
    pub target: AzureTarget,
    /// Pieces of one long reading transcribed or assessed at once.
    pub pronunciation_concurrency: usize,
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

impl AzureSettings {
    /// Azure Speech from `AZURE_SPEECH_KEY` and a region or endpoint; the simulator without a key
    /// (refused in Kubernetes).
    pub(in crate::config) fn from_vars(vars: &Vars<'_>, kubernetes: bool) -> Result<Self, ConfigError> {
        let target = match vars.get(AZURE_SPEECH_KEY).filter(|key| !key.trim().is_empty()) {
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
                AzureTarget::Cloud { base_url, transcription_url, key: Secret::new(key.trim()) }
            }
            None if kubernetes => return Err(invalid(AZURE_SPEECH_KEY, "is required when running in Kubernetes")),
            None => AzureTarget::Simulator,
        };
        Ok(Self { target, pronunciation_concurrency: vars.number(PRONUNCIATION_CONCURRENCY, 4, 1)? })
    }

    /// The client's configuration. `simulator` is the built-in simulator's address, which runs
    /// whenever a target is the simulator.
    pub fn config(&self, connections: ConnectionSettings, simulator: Option<&Url>) -> AzureSpeechConfig {
        match &self.target {
            AzureTarget::Cloud { base_url, transcription_url, key } => AzureSpeechConfig {
                connections,
                transcription_url: transcription_url.clone(),
                ..AzureSpeechConfig::with_endpoint(base_url.clone(), key.expose().to_string())
            },
            AzureTarget::Simulator => AzureSpeechConfig {
                connections: simulated(connections),
                ..AzureSpeechConfig::with_endpoint(
                    simulator.expect("the simulator runs whenever a target is the simulator").clone(),
                    "simulator".to_string(),
                )
            },
        }
    }

    /// The cloud endpoint, `None` for the simulator.
    pub fn cloud_url(&self) -> Option<&Url> {
        match &self.target {
            AzureTarget::Cloud { base_url, .. } => Some(base_url),
            AzureTarget::Simulator => None,
        }
    }
}
