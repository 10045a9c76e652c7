use std::net::IpAddr;

use super::guard::{parse_url, vet_resolved, vet_url};
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
