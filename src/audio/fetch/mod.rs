//! Fetching learner audio from an `audio_url` without letting the URL reach inside our network
//! (SSRF).
//!
//! Flow, for the first URL and again for every redirect hop:
//! 1. [`vet_url`] (pure): http/https only, no credentials, a host; metadata hostnames refused by
//!    name; IP-literal hosts classified directly (the `url` crate has already turned
//!    `2130706433`, `0x7f.1` and `0177.0.0.1` into `127.0.0.1`).
//! 2. Named hosts are resolved by [`GuardedResolver`], the client's only resolver. It refuses the
//!    whole name unless every address is allowed, and hands the connector exactly the addresses
//!    it vetted: there is no second lookup a rebinding DNS server could answer differently.
//! 3. Redirects are never followed by reqwest; each `Location` goes back to step 1.
//! 4. The body is counted while it streams; the whole fetch runs under one timeout.
//!
//! Steps 1 and 2, what a URL may reach, are in `guard.rs`; the hops and the body here.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use url::Url;

use super::AudioError;
use super::address::AddressClass;
use super::budget::{Buffer, Reservation};

mod guard;

use guard::{GuardedResolver, Refusal, parse_url, vet_url};

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Largest body accepted (`AUDIO_MAX_BYTES`).
    pub max_bytes: usize,
    /// Let loopback, private, link-local and other non-public addresses through
    /// (`AUDIO_FETCH_ALLOW_PRIVATE`, dev only). Cloud metadata stays refused even then.
    pub allow_private: bool,
    /// Bound on the whole fetch: every hop, and the body.
    pub timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
    /// Exact socket addresses allowed whatever their class (tests, sidecars). They match URLs
    /// that name the address literally, `http://127.0.0.1:9000/`: for a hostname the resolver
    /// cannot know the port, so a name resolving to one of these is still refused.
    pub allowed_addresses: Vec<SocketAddr>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            allow_private: false,
            timeout: Duration::from_secs(15),
            max_redirects: 3,
            allowed_addresses: Vec::new(),
        }
    }
}

impl FetchPolicy {
    fn admits(&self, class: AddressClass) -> bool {
        class.is_public() || (self.allow_private && class != AddressClass::CloudMetadata)
    }
}

/// Fetches audio by URL under a [`FetchPolicy`]. Cheap to clone; clones share one connection
/// pool.
#[derive(Clone)]
pub struct AudioFetcher {
    /// Redirects off, proxies off, and [`GuardedResolver`] as its only resolver.
    client: reqwest::Client,
    policy: Arc<FetchPolicy>,
}

impl AudioFetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on our behalf, past the resolver's check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
            .build()
            // Only TLS backend initialisation can fail here; it is the failure
            // `reqwest::Client::new()` panics on, and it happens once, at startup.
            .expect("the HTTP client for audio fetching could not be built");
        Self { client, policy }
    }

    /// The recording at `url`, its bytes counted by nobody (tools and tests).
    pub async fn fetch(&self, url: &str) -> Result<Bytes, AudioError> {
        self.fetch_within(url, &Reservation::uncounted()).await
    }

    /// The recording at `url`, each allocation of its body held in `reservation` before it is
    /// made.
    pub async fn fetch_within(&self, url: &str, reservation: &Reservation) -> Result<Bytes, AudioError> {
        let url = parse_url(url)?;
        tokio::time::timeout(self.policy.timeout, self.follow(url, reservation))
            .await
            .unwrap_or(Err(AudioError::Timeout))
    }

    async fn follow(&self, mut url: Url, reservation: &Reservation) -> Result<Bytes, AudioError> {
        let mut redirects: u8 = 0;
        loop {
            vet_url(&url, &self.policy)?;
            let response = self.client.get(url.clone()).send().await.map_err(request_error)?;
            let status = response.status();
            if is_redirect(status) {
                if redirects >= self.policy.max_redirects {
                    return Err(AudioError::Fetch(format!(
                        "audio host redirected more than {} times",
                        self.policy.max_redirects
                    )));
                }
                redirects += 1;
                url = redirect_target(&url, response.headers())?;
                continue;
            }
            if !status.is_success() {
                return Err(AudioError::Fetch(format!("audio host answered {}", status.as_u16())));
            }
            return read_capped(response, self.policy.max_bytes, reservation).await;
        }
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

fn redirect_target(current: &Url, headers: &reqwest::header::HeaderMap) -> Result<Url, AudioError> {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
        .ok_or_else(|| AudioError::Fetch("audio host redirected without a usable Location".to_owned()))?;
    current
        .join(location.trim())
        .map_err(|_| AudioError::InvalidUrl("the audio host redirected to something that is not a URL".to_owned()))
}

fn request_error(error: reqwest::Error) -> AudioError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return AudioError::Forbidden(refusal.to_string());
        }
        cause = current.source();
    }
    if error.is_timeout() {
        AudioError::Timeout
    } else if error.is_connect() {
        AudioError::Fetch("could not connect to the audio host".to_owned())
    } else {
        AudioError::Fetch("the audio host did not answer".to_owned())
    }
}

/// Reads the body, never holding more than `max_bytes` plus the chunk in hand: a
/// `Content-Length` may be absent or lie, so it only lets us refuse early, and bounds how far
/// the buffer grows ahead of the bytes (a host that declares 10 MB and drips holds little).
async fn read_capped(
    mut response: reqwest::Response,
    max_bytes: usize,
    reservation: &Reservation,
) -> Result<Bytes, AudioError> {
    let too_large = AudioError::TooLarge { limit: max_bytes };
    let declared = response.content_length();
    if declared.is_some_and(|declared| declared > max_bytes as u64) {
        return Err(too_large);
    }
    // `declared` is at most `max_bytes` here, so the cast cannot truncate.
    let mut body = Buffer::new(reservation.clone(), declared.map(|declared| declared as usize), max_bytes);
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        if error.is_timeout() {
            AudioError::Timeout
        } else {
            AudioError::Fetch("the audio host broke off the transfer".to_owned())
        }
    })? {
        // body.len() <= max_bytes is kept by this check, so the subtraction cannot underflow.
        if chunk.len() > max_bytes - body.len() {
            return Err(too_large);
        }
        body.extend(&chunk).await.map_err(|_| AudioError::Overloaded)?;
    }
    Ok(body.into_bytes())
}

#[cfg(test)]
mod tests;
