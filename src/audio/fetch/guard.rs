//! What a URL may reach, decided before any socket exists and again on every name the client
//! resolves: steps 1 and 2 of the flow in `fetch`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::FetchPolicy;
use crate::audio::AudioError;
use crate::audio::address::{AddressClass, classify};

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

pub(super) fn parse_url(raw: &str) -> Result<Url, AudioError> {
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
    pub(super) class: AddressClass,
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
pub(super) struct GuardedResolver {
    policy: Arc<FetchPolicy>,
}

impl GuardedResolver {
    pub(super) fn new(policy: Arc<FetchPolicy>) -> Self {
        Self { policy }
    }
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
