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

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::AudioError;
use super::address::{AddressClass, classify};
use super::budget::{Buffer, Reservation};

/// Hostnames of metadata services, refused without resolving: inside a cloud they resolve to
/// the metadata address, and some resolvers answer them from a local table we cannot inspect.
const METADATA_HOSTS: [&str; 7] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
];

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
            .dns_resolver(Arc::new(GuardedResolver { policy: Arc::clone(&policy) }))
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

fn parse_url(raw: &str) -> Result<Url, AudioError> {
    Url::parse(raw.trim()).map_err(|_| AudioError::InvalidUrl("it is not a URL".to_owned()))
}

/// Everything about a URL that can be decided without the network.
pub(crate) fn vet_url(url: &Url, policy: &FetchPolicy) -> Result<(), AudioError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AudioError::InvalidUrl(format!("only http and https are allowed, not {}:", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AudioError::InvalidUrl("credentials in the URL are not allowed".to_owned()));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let ip = match url.host() {
        None => return Err(AudioError::InvalidUrl("the URL has no host".to_owned())),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            if name.is_empty() {
                return Err(AudioError::InvalidUrl("the URL has no host".to_owned()));
            }
            if METADATA_HOSTS.contains(&name) {
                return Err(AudioError::Forbidden(format!("{name} is a cloud metadata endpoint")));
            }
            // Named hosts are vetted by GuardedResolver when the connector asks for them.
            return Ok(());
        }
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if policy.allowed_addresses.contains(&SocketAddr::new(ip, port)) {
        return Ok(());
    }
    let class = classify(ip);
    if policy.admits(class) { Ok(()) } else { Err(AudioError::Forbidden(format!("{ip} is {class}"))) }
}

/// A name refused because one of its addresses is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves to {class}")]
pub(crate) struct Refusal {
    host: String,
    class: AddressClass,
}

/// Every address must be admitted: a name with one public and one loopback address would
/// otherwise reach loopback whenever the connector tries that one first.
pub(crate) fn vet_resolved(host: &str, addresses: &[IpAddr], policy: &FetchPolicy) -> Result<(), Refusal> {
    match addresses.iter().map(|ip| classify(*ip)).find(|class| !policy.admits(*class)) {
        Some(class) => Err(Refusal { host: host.to_owned(), class }),
        None => Ok(()),
    }
}

/// The client's resolver: looks a name up once, vets all its addresses, and returns exactly
/// those to the connector, so the check and the connection cannot disagree.
struct GuardedResolver {
    policy: Arc<FetchPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0 is replaced by the URL's port (or the scheme's default) by the connector.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
            vet_resolved(&host, &ips, &policy)?;
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
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
mod tests {
    use super::*;

    fn policy() -> FetchPolicy {
        FetchPolicy::default()
    }

    /// Parse and vet, as `fetch` does before any socket exists. `Ok` means the URL would go on
    /// to resolution or a connection.
    fn preflight(raw: &str, policy: &FetchPolicy) -> Result<(), AudioError> {
        vet_url(&parse_url(raw)?, policy)
    }

    fn forbidden(class: &str) -> impl Fn(&AudioError) -> bool + '_ {
        move |error| matches!(error, AudioError::Forbidden(message) if message.contains(class))
    }

    fn invalid(error: &AudioError) -> bool {
        matches!(error, AudioError::InvalidUrl(_))
    }

    #[test]
    fn hostile_urls_are_refused_before_any_socket() {
        type Check<'a> = Box<dyn Fn(&AudioError) -> bool + 'a>;
        let cases: Vec<(&str, Check)> = vec![
            ("http://127.0.0.1/", Box::new(forbidden("loopback"))),
            ("http://127.0.0.1:6379/", Box::new(forbidden("loopback"))),
            ("http://[::1]/", Box::new(forbidden("loopback"))),
            ("http://10.0.0.1/", Box::new(forbidden("private"))),
            ("http://172.16.5.4:8080/", Box::new(forbidden("private"))),
            ("http://192.168.1.1/admin", Box::new(forbidden("private"))),
            ("http://[fd12::1]/", Box::new(forbidden("private"))),
            ("http://169.254.1.1/", Box::new(forbidden("link-local"))),
            ("http://[fe80::1]/", Box::new(forbidden("link-local"))),
            ("http://169.254.169.254/latest/meta-data/", Box::new(forbidden("metadata"))),
            ("http://[fd00:ec2::254]/", Box::new(forbidden("metadata"))),
            ("http://100.100.100.200/", Box::new(forbidden("metadata"))),
            ("http://metadata.google.internal/computeMetadata/v1/", Box::new(forbidden("metadata"))),
            ("http://METADATA.google.internal./", Box::new(forbidden("metadata"))),
            ("http://2130706433/", Box::new(forbidden("loopback"))),
            ("http://0x7f.1/", Box::new(forbidden("loopback"))),
            ("http://0177.0.0.1/", Box::new(forbidden("loopback"))),
            ("http://0x7f000001/", Box::new(forbidden("loopback"))),
            ("http://127.1/", Box::new(forbidden("loopback"))),
            ("http://[0:0:0:0:0:ffff:7f00:1]/", Box::new(forbidden("loopback"))),
            ("http://\u{24dc}etadata.google.internal/", Box::new(forbidden("metadata"))),
            ("http://metadata.google.internal%2e/", Box::new(forbidden("metadata"))),
            ("http://2852039166/", Box::new(forbidden("metadata"))),
            ("http://[::ffff:127.0.0.1]/", Box::new(forbidden("loopback"))),
            ("http://[::ffff:a9fe:a9fe]/", Box::new(forbidden("metadata"))),
            ("http://[64:ff9b::a9fe:a9fe]/", Box::new(forbidden("metadata"))),
            ("http://0.0.0.0/", Box::new(forbidden("unspecified"))),
            ("http://100.64.0.1/", Box::new(forbidden("CGNAT"))),
            ("http://0/", Box::new(forbidden("unspecified"))),
            ("http://[::]/", Box::new(forbidden("unspecified"))),
            ("http://169.254.170.2/v2/credentials", Box::new(forbidden("metadata"))),
            ("http://168.63.129.16/machine", Box::new(forbidden("metadata"))),
            ("http://instance-data/latest/", Box::new(forbidden("metadata"))),
            ("http://metadata.azure.internal/", Box::new(forbidden("metadata"))),
            ("http://[fec0::1]/", Box::new(forbidden("private"))),
            ("http://[::127.0.0.1]/", Box::new(forbidden("loopback"))),
            ("http://[64:ff9b::7f00:1]/", Box::new(forbidden("loopback"))),
            ("http://[2002:a9fe:a9fe::1]/", Box::new(forbidden("metadata"))),
            ("http://[2002:c0a8:101::1]/", Box::new(forbidden("private"))),
            ("http://224.0.0.1/", Box::new(forbidden("multicast"))),
            ("http://[ff02::1]/", Box::new(forbidden("multicast"))),
            ("http://255.255.255.255/", Box::new(forbidden("broadcast"))),
            ("http://192.0.2.10/", Box::new(forbidden("documentation"))),
            ("http://[2001:db8::1]/", Box::new(forbidden("documentation"))),
            ("http://198.18.0.1/", Box::new(forbidden("benchmarking"))),
            ("http://240.0.0.1/", Box::new(forbidden("reserved"))),
            ("http://[2001::1]/", Box::new(forbidden("reserved"))),
            ("http://10.1/", Box::new(forbidden("private"))),
            ("http://0xa9.0xfe.0xa9.0xfe/", Box::new(forbidden("metadata"))),
            ("http://%31%30.0.0.1/", Box::new(forbidden("private"))),
            ("file:///etc/passwd", Box::new(invalid)),
            ("gopher://127.0.0.1:6379/_FLUSHALL", Box::new(invalid)),
            ("ftp://example.com/a.wav", Box::new(invalid)),
            ("data:audio/wav;base64,UklGRg==", Box::new(invalid)),
            ("https://user:pass@example.com/a.wav", Box::new(invalid)),
            ("https://user@example.com/a.wav", Box::new(invalid)),
            ("http://:80/a.wav", Box::new(invalid)),
            ("http://./a.wav", Box::new(invalid)),
            ("not a url", Box::new(invalid)),
            ("", Box::new(invalid)),
        ];
        assert!(cases.len() >= 15);
        for (url, expected) in &cases {
            match preflight(url, &policy()) {
                Err(error) => assert!(expected(&error), "{url}: unexpected {error:?}"),
                Ok(()) => panic!("{url} passed the pre-flight check"),
            }
        }
    }

    #[test]
    fn a_name_resolving_to_loopback_is_refused_by_the_resolver_check() {
        let localhost: [IpAddr; 2] = ["127.0.0.1".parse().expect("literal"), "::1".parse().expect("literal")];
        let refusal = vet_resolved("localhost", &localhost, &policy()).expect_err("loopback");
        assert_eq!(refusal.to_string(), "localhost resolves to a loopback address");
    }

    #[test]
    fn one_non_public_address_among_public_ones_refuses_the_name() {
        let mixed: [IpAddr; 2] = ["8.8.8.8".parse().expect("literal"), "10.1.2.3".parse().expect("literal")];
        let refusal = vet_resolved("rebind.example", &mixed, &policy()).expect_err("private");
        assert_eq!(refusal.class, AddressClass::Private);
    }

    #[test]
    fn a_name_resolving_only_to_public_addresses_passes() {
        let public: [IpAddr; 2] = ["8.8.8.8".parse().expect("literal"), "2606:4700::1111".parse().expect("literal")];
        assert_eq!(vet_resolved("audio.example", &public, &policy()), Ok(()));
    }

    #[test]
    fn public_urls_pass_the_pre_flight_check() {
        for url in ["https://cdn.example.com/a.wav", "http://8.8.8.8/a.wav", "https://[2606:4700::1111]/a.ogg"] {
            assert_eq!(preflight(url, &policy()), Ok(()), "{url}");
        }
    }

    #[test]
    fn allow_private_admits_loopback_but_never_metadata() {
        let dev = FetchPolicy { allow_private: true, ..policy() };
        assert_eq!(preflight("http://127.0.0.1:8080/a.wav", &dev), Ok(()));
        assert_eq!(preflight("http://10.0.0.1/a.wav", &dev), Ok(()));
        assert!(preflight("http://169.254.169.254/", &dev).is_err());
        assert!(preflight("http://metadata.google.internal/", &dev).is_err());
        let metadata: [IpAddr; 1] = ["169.254.169.254".parse().expect("literal")];
        assert!(vet_resolved("sneaky.example", &metadata, &dev).is_err());
    }

    #[test]
    fn an_allowed_address_matches_ip_and_port_exactly() {
        let sidecar = FetchPolicy { allowed_addresses: vec!["127.0.0.1:9000".parse().expect("literal")], ..policy() };
        assert_eq!(preflight("http://127.0.0.1:9000/a.wav", &sidecar), Ok(()));
        assert!(preflight("http://127.0.0.1:9001/a.wav", &sidecar).is_err());
        assert!(preflight("http://127.0.0.2:9000/a.wav", &sidecar).is_err());
        assert!(preflight("http://[::ffff:127.0.0.1]:9000/a.wav", &sidecar).is_err());
    }

    #[test]
    fn a_relative_redirect_resolves_against_the_current_url() {
        let current = Url::parse("https://cdn.example.com/a/b.wav").expect("literal");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::LOCATION, "/c.wav".parse().expect("literal"));
        let next = redirect_target(&current, &headers).expect("joins");
        assert_eq!(next.as_str(), "https://cdn.example.com/c.wav");
        headers.insert(reqwest::header::LOCATION, "//127.0.0.1/x".parse().expect("literal"));
        let next = redirect_target(&current, &headers).expect("joins");
        assert!(matches!(vet_url(&next, &policy()), Err(AudioError::Forbidden(_))));
    }
}
