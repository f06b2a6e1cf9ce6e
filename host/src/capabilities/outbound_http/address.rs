//! Which IP addresses a function may never reach (SSRF protection).
//!
//! A function runs inside the operator's network, so `fetch()` could reach
//! what the public cannot: the loopback interface, the private network, a
//! cloud provider's metadata service. Every address a request would connect
//! to (each one DNS returned, or the literal in the URL) is checked here, on
//! every redirect hop, unless the operator allowed that host explicitly.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible,
//! NAT64, 6to4) are judged by the IPv4 address inside them, so that
//! `[::ffff:127.0.0.1]` is as loopback as `127.0.0.1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is out of bounds, in words for the function's author.
pub fn forbidden_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    let reason = match (a, b, c) {
        (0, ..) => "a \"this network\" address (0.0.0.0/8)",
        (10, ..) => "a private address (10.0.0.0/8)",
        (100, 64..=127, _) => "a carrier-grade NAT address (100.64.0.0/10)",
        (127, ..) => "a loopback address (127.0.0.0/8)",
        (169, 254, _) => "a link-local address (169.254.0.0/16, where cloud metadata services live)",
        (172, 16..=31, _) => "a private address (172.16.0.0/12)",
        (192, 0, 0) => "an IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address (TEST-NET)",
        (192, 88, 99) => "a 6to4 relay anycast address (192.88.99.0/24)",
        (192, 168, _) => "a private address (192.168.0.0/16)",
        (198, 18..=19, _) => "a benchmarking address (198.18.0.0/15)",
        (224..=239, ..) => "a multicast address (224.0.0.0/4)",
        (240..=255, ..) => "a reserved or broadcast address (240.0.0.0/4)",
        _ => return None,
    };
    Some(reason)
}

fn forbidden_v6(address: Ipv6Addr) -> Option<&'static str> {
    if let Some(embedded) = embedded_v4(address) {
        return forbidden_v4(embedded);
    }
    let segments = address.segments();
    let reason = match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "the unspecified address (::)",
        [0, 0, 0, 0, 0, 0, 0, 1] => "the loopback address (::1)",
        [0x0100, 0, 0, 0, ..] => "a discard-only address (100::/64)",
        [0x2001, 0x0db8, ..] => "a documentation address (2001:db8::/32)",
        // Teredo tunnels reach IPv4 hosts we cannot see from here.
        [0x2001, 0x0000, ..] => "a Teredo tunnel address (2001::/32)",
        // ORCHID and the other IETF special-purpose blocks under 2001::/23.
        [0x2001, 0x0000..=0x01ff, ..] => "an IETF special-purpose address (2001::/23)",
        [first, ..] if first & 0xfe00 == 0xfc00 => "a unique local (private) address (fc00::/7)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "a link-local address (fe80::/10)",
        [first, ..] if first & 0xffc0 == 0xfec0 => "a site-local address (fec0::/10)",
        [first, ..] if first & 0xff00 == 0xff00 => "a multicast address (ff00::/8)",
        _ => return None,
    };
    Some(reason)
}

/// The IPv4 address an IPv6 address stands for, in the forms that route to
/// an IPv4 host: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`, deprecated but still parsed by resolvers), IPv4-translated
/// (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`, and the local-use
/// `64:ff9b:1::/48`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = address.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(low),
        [0, 0, 0, 0, 0xffff, 0, ..] => Some(low),
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, ..] => Some(low),
        [0x0064, 0xff9b, 0, 0, 0, 0, ..] => Some(low),
        [0x0064, 0xff9b, 0x0001, ..] => Some(low),
        [0x2002, high, low_half, ..] => {
            Some(Ipv4Addr::new((high >> 8) as u8, high as u8, (low_half >> 8) as u8, low_half as u8))
        }
        _ => None,
    }
}

/// Host names that name internal services whatever they resolve to.
pub fn forbidden_host_name(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.');
    let is = |suffix: &str| host == suffix || host.ends_with(&format!(".{suffix}"));
    if is("localhost") {
        Some("the local machine (localhost)")
    } else if host == "metadata.google.internal" || host == "metadata" || is("internal") && host.starts_with("metadata.") {
        Some("a cloud metadata service")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> bool {
        forbidden_reason(text.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_ipv4_ranges_are_refused() {
        for address in [
            "0.0.0.0", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.255.254", "169.254.169.254",
            "172.16.0.1", "172.31.255.255", "192.0.0.170", "192.0.2.1", "192.168.1.1", "198.18.0.1", "198.51.100.7",
            "203.0.113.9", "224.0.0.251", "239.255.255.250", "240.0.0.1", "255.255.255.255",
        ] {
            assert!(forbidden(address), "{address} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
            "192.169.0.1", "2606:4700:4700::1111", "2a00:1450:4001:80e::200e", "64:ff9b::808:808", "2002:0808:0808::1",
        ] {
            assert!(!forbidden(address), "{address} should pass");
        }
    }

    #[test]
    fn internal_ipv6_ranges_are_refused() {
        for address in [
            "::", "::1", "fc00::1", "fd00:ec2::254", "fe80::1", "fec0::1", "ff02::1", "2001:db8::1", "2001:0:4136:e378::1",
            "100::1",
        ] {
            assert!(forbidden(address), "{address} should be refused");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_by_the_ipv4_inside() {
        for address in [
            "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254", "::127.0.0.1", "::ffff:0:10.0.0.1",
            "64:ff9b::127.0.0.1", "64:ff9b:1::a00:1", "2002:7f00:0001::", "2002:c0a8:0101::1", "::ffff:0.0.0.0",
        ] {
            assert!(forbidden(address), "{address} should be refused");
        }
        assert!(!forbidden("::ffff:8.8.8.8"));
    }

    #[test]
    fn internal_host_names_are_refused_whatever_they_resolve_to() {
        for host in ["localhost", "LOCALHOST.".to_lowercase().as_str(), "api.localhost", "metadata.google.internal", "metadata"] {
            assert!(forbidden_host_name(host).is_some(), "{host} should be refused");
        }
        assert!(forbidden_host_name("example.com").is_none());
        assert!(forbidden_host_name("notlocalhost.com").is_none());
    }
}
