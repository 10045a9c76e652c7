//! Where each upstream's calls go, and with which credential.

use url::Url;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid, parse_http_url};

/// A credential: never printed by `Debug`, so settings can be logged safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

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

/// Azure Speech from `AZURE_SPEECH_KEY` and a region or endpoint; the simulator without a key
/// (refused in Kubernetes).
pub(super) fn azure_target<F: Fn(&str) -> Option<String>>(
    vars: &Vars<'_, F>,
    kubernetes: bool,
) -> Result<AzureTarget, ConfigError> {
    Ok(match vars.get(AZURE_SPEECH_KEY).filter(|key| !key.trim().is_empty()) {
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
    })
}

/// Gemini from `GEMINI_API_KEY`; the simulator without one (refused in Kubernetes).
pub(super) fn gemini_target<F: Fn(&str) -> Option<String>>(
    vars: &Vars<'_, F>,
    kubernetes: bool,
) -> Result<GeminiTarget, ConfigError> {
    Ok(match vars.get(GEMINI_API_KEY).filter(|key| !key.trim().is_empty()) {
        Some(key) => {
            let base =
                vars.get(GEMINI_BASE_URL).unwrap_or_else(|| "https://generativelanguage.googleapis.com".to_string());
            GeminiTarget::Cloud {
                base_url: parse_http_url(GEMINI_BASE_URL, &base)?,
                key: Secret(key.trim().to_string()),
            }
        }
        None if kubernetes => return Err(invalid(GEMINI_API_KEY, "is required when running in Kubernetes")),
        None => GeminiTarget::Simulator,
    })
}
