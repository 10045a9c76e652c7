//! What kind of network an IP address belongs to, so `audio_url` can be kept to the public
//! internet. Classification only: nothing here resolves or connects.
//!
//! IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are classified by
//! that IPv4 address, because the kernel or a gateway will deliver them there: `::ffff:127.0.0.1`
//! is loopback, `64:ff9b::a9fe:a9fe` is the metadata service.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network an address belongs to. Only [`AddressClass::Public`] may be fetched by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable unicast.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), IPv6 unique-local fc00::/7 and site-local fec0::/10.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// Instance metadata and host-agent endpoints of the clouds we might run on.
    CloudMetadata,
    /// 0.0.0.0/8 and `::`; connecting to them reaches the local host on Linux.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 100.64.0.0/10, carrier-grade NAT space that providers also use inside their networks.
    SharedCgnat,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// Everything else that is not global unicast: 240/4, 192.0.0/24, IPv6 outside 2000::/3,
    /// Teredo and other IETF protocol assignments, discard-only, local-use NAT64.
    Reserved,
}

impl AddressClass {
    pub fn is_public(self) -> bool {
        self == Self::Public
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "a public address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::CloudMetadata => "a cloud metadata address",
            Self::Unspecified => "an unspecified address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "a broadcast address",
            Self::Documentation => "a documentation address",
            Self::SharedCgnat => "a shared (CGNAT) address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved address",
        })
    }
}

pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Metadata endpoints inside otherwise ordinary ranges. Checked before the ranges, so that
/// 100.100.100.200 is not waved through as CGNAT-with-allow-private and 168.63.129.16 (a
/// public-looking address) is not treated as public.
const METADATA_V4: [Ipv4Addr; 5] = [
    // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack instance metadata.
    Ipv4Addr::new(169, 254, 169, 254),
    // AWS ECS task metadata / credentials.
    Ipv4Addr::new(169, 254, 170, 2),
    // AWS EKS Pod Identity agent.
    Ipv4Addr::new(169, 254, 170, 23),
    // Alibaba Cloud.
    Ipv4Addr::new(100, 100, 100, 200),
    // Azure WireServer (host agent; hands out certificates and extension settings).
    Ipv4Addr::new(168, 63, 129, 16),
];

/// AWS instance metadata over IPv6 (Nitro).
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    if METADATA_V4.contains(&ip) {
        return CloudMetadata;
    }
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Unspecified,
        (127, _, _) => Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Private,
        (169, 254, _) => LinkLocal,
        (100, 64..=127, _) => SharedCgnat,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (198, 18..=19, _) => Benchmarking,
        (224..=239, _, _) => Multicast,
        _ if ip == Ipv4Addr::BROADCAST => Broadcast,
        // 192.0.0/24: IETF protocol assignments; 192.88.99/24: retired 6to4 relay anycast;
        // 240/4: reserved for future use.
        (192, 0, 0) | (192, 88, 99) | (240..=255, _, _) => Reserved,
        _ => Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if ip.is_unspecified() {
        return Unspecified;
    }
    if ip.is_loopback() {
        return Loopback;
    }
    if METADATA_V6.contains(&ip) {
        return CloudMetadata;
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let s = ip.segments();
    match s[0] {
        0xff00..=0xffff => Multicast,
        0xfe80..=0xfebf => LinkLocal,
        0xfec0..=0xfeff | 0xfc00..=0xfdff => Private,
        0x2001 if s[1] == 0x0db8 => Documentation,
        0x2001 if s[1] == 0x0002 && s[2] == 0 => Benchmarking,
        // 2001::/23 holds Teredo (whose embedded addresses are obfuscated) and other protocol
        // assignments; none of them is a place audio is served from.
        0x2001 if s[1] < 0x0200 => Reserved,
        0x3fff if s[1] < 0x1000 => Documentation,
        // Only 2000::/3 is allocated as global unicast.
        0x2000..=0x3fff => Public,
        _ => Reserved,
    }
}

/// The IPv4 address an IPv6 address will actually deliver to, for the forms that embed one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT translated), ::a.b.c.d (compatible).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        // 64:ff9b::/96, the well-known NAT64 prefix.
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 2002:AABB:CCDD::/48, 6to4.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn class(ip: &str) -> AddressClass {
        classify(ip.parse().expect("test address literal"))
    }

    #[track_caller]
    fn assert_all(expected: AddressClass, ips: &[&str]) {
        for ip in ips {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn loopback_in_both_families() {
        assert_all(Loopback, &["127.0.0.1", "127.255.255.254", "127.1.2.3", "::1"]);
    }

    #[test]
    fn rfc1918_and_unique_local_are_private() {
        assert_all(
            Private,
            &[
                "10.0.0.1",
                "10.255.255.255",
                "172.16.0.1",
                "172.31.255.254",
                "192.168.0.1",
                "192.168.255.255",
                "fc00::1",
                "fd12:3456:789a::1",
                "fec0::1",
            ],
        );
    }

    #[test]
    fn the_edges_of_172_16_slash_12_are_public() {
        assert_all(Public, &["172.15.255.255", "172.32.0.0"]);
    }

    #[test]
    fn cloud_metadata_endpoints_are_named_as_such() {
        assert_all(
            CloudMetadata,
            &[
                "169.254.169.254",
                "169.254.170.2",
                "169.254.170.23",
                "100.100.100.200",
                "168.63.129.16",
                "fd00:ec2::254",
            ],
        );
    }

    #[test]
    fn link_local_in_both_families() {
        assert_all(LinkLocal, &["169.254.0.1", "169.254.1.1", "fe80::1", "febf::1"]);
    }

    #[test]
    fn cgnat_space_is_shared_not_public() {
        assert_all(SharedCgnat, &["100.64.0.1", "100.127.255.254"]);
        assert_all(Public, &["100.63.255.255", "100.128.0.0"]);
    }

    #[test]
    fn unspecified_addresses_are_refused_as_such() {
        assert_all(Unspecified, &["0.0.0.0", "0.1.2.3", "::"]);
    }

    #[test]
    fn multicast_broadcast_benchmarking_and_documentation() {
        assert_all(Multicast, &["224.0.0.1", "239.255.255.250", "ff02::1", "ff05::1:3"]);
        assert_all(Broadcast, &["255.255.255.255"]);
        assert_all(Benchmarking, &["198.18.0.1", "198.19.255.254", "2001:2::1"]);
        assert_all(Documentation, &["192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "3fff::1"]);
    }

    #[test]
    fn reserved_space_is_not_public() {
        assert_all(
            Reserved,
            &["240.0.0.1", "192.0.0.8", "192.88.99.1", "2001::1", "100::1", "64:ff9b:1::1", "4000::1"],
        );
    }

    #[test]
    fn ipv6_forms_embedding_ipv4_take_the_class_of_the_ipv4() {
        assert_eq!(class("::ffff:127.0.0.1"), Loopback);
        assert_eq!(class("::ffff:169.254.169.254"), CloudMetadata);
        assert_eq!(class("::ffff:10.0.0.1"), Private);
        assert_eq!(class("::ffff:0:127.0.0.1"), Loopback);
        assert_eq!(class("::127.0.0.1"), Loopback);
        assert_eq!(class("64:ff9b::a9fe:a9fe"), CloudMetadata);
        assert_eq!(class("64:ff9b::7f00:1"), Loopback);
        assert_eq!(class("2002:7f00:1::"), Loopback);
        assert_eq!(class("2002:a9fe:a9fe::1"), CloudMetadata);
        assert_eq!(class("2002:c0a8:101::"), Private);
    }

    #[test]
    fn every_non_public_ipv4_class_keeps_its_class_inside_ipv6() {
        assert_eq!(class("::ffff:0.0.0.0"), Unspecified);
        assert_eq!(class("::ffff:255.255.255.255"), Broadcast);
        assert_eq!(class("::ffff:224.0.0.1"), Multicast);
        assert_eq!(class("::ffff:169.254.1.1"), LinkLocal);
        assert_eq!(class("64:ff9b::6440:1"), SharedCgnat);
        assert_eq!(class("64:ff9b::c000:20a"), Documentation);
        assert_eq!(class("2002:c612:1::"), Benchmarking);
        assert_eq!(class("::ffff:240.0.0.1"), Reserved);
        assert_eq!(class("::ffff:168.63.129.16"), CloudMetadata);
    }

    #[test]
    fn embedded_public_ipv4_stays_public() {
        assert_all(Public, &["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]);
    }

    #[test]
    fn ordinary_internet_hosts_are_public() {
        assert_all(Public, &["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001::200e"]);
        assert!(class("8.8.8.8").is_public());
        assert!(!class("127.0.0.1").is_public());
    }
}
