//! Placeholder until the SSRF-safe fetcher lands (branch `audio`).

use std::time::Duration;

use bytes::Bytes;

use super::AudioError;

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub max_bytes: usize,
    pub allow_private: bool,
    pub timeout: Duration,
    pub max_redirects: u8,
    pub allowed_addresses: Vec<std::net::SocketAddr>,
}

#[derive(Clone)]
pub struct AudioFetcher {
    _policy: FetchPolicy,
}

impl AudioFetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        Self { _policy: policy }
    }

    pub async fn fetch(&self, _url: &str) -> Result<Bytes, AudioError> {
        Err(AudioError::Forbidden("not implemented".into()))
    }
}
