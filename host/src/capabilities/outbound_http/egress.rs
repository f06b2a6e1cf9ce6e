//! Egress rules: which hosts a function's `fetch()` may reach.
//!
//! Two layers, both enforced by the host on every request and every redirect
//! hop (the guest follows redirects itself, so each hop is a new request):
//! - the function's allowlist (manifest `egress`), or the server's default
//!   when the manifest has none;
//! - SSRF protection ([`super::address`]), which the operator can lift for
//!   named internal hosts only (`--egress-allow-internal`).

use super::address;
use std::net::IpAddr;
use url::{Host, Url};

/// What a function whose manifest has no `egress` list may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum DefaultEgress {
    /// Any public host (internal addresses stay blocked).
    #[default]
    Public,
    /// Nothing: every function must list its hosts.
    None,
}

/// One allowlist entry: a host, `*.` and a domain (its subdomains, not the
/// domain itself), or `*` (any public host).
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Subdomains(String),
}

/// A function's allowlist, parsed from its manifest when it is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowlist(Vec<HostPattern>);

impl Allowlist {
    /// Parses the manifest's `egress` entries; the error names the bad entry.
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        entries.iter().map(|entry| parse_pattern(entry)).collect::<Result<_, _>>().map(Allowlist)
    }

    /// Whether `host` (already normalized by [`Destination::parse`]) is listed.
    pub fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|pattern| match pattern {
            HostPattern::Any => true,
            HostPattern::Exact(exact) => exact == host,
            HostPattern::Subdomains(domain) => {
                host.len() > domain.len() + 1 && host.ends_with(domain.as_str()) && host[..host.len() - domain.len()].ends_with('.')
            }
        })
    }
}

fn parse_pattern(entry: &str) -> Result<HostPattern, String> {
    let bad = |why: &str| {
        format!(
            "egress entry {entry:?} {why}; write a host name (api.example.com), a wildcard for its subdomains \
             (*.example.com), an IP address, or * for any public host"
        )
    };
    let entry = entry.trim();
    if entry == "*" {
        return Ok(HostPattern::Any);
    }
    if entry.contains("://") || entry.contains('/') || entry.contains('@') || entry.contains('?') {
        return Err(bad("is not a bare host (no scheme, path or credentials)"));
    }
    let (wildcard, host) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    if host.contains('*') {
        return Err(bad("has a * somewhere other than a leading *."));
    }
    // The WHATWG host parser, as for request URLs, so that the entry and the
    // URL are compared in the same normal form.
    let url = Url::parse(&format!("http://{host}/")).map_err(|_| bad("is not a valid host"))?;
    if url.port().is_some() || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("is not a valid host (ports are not part of an egress rule)"));
    }
    let normal = url.host_str().unwrap().trim_end_matches('.').to_owned();
    match (wildcard, url.host()) {
        (true, Some(Host::Domain(_))) => Ok(HostPattern::Subdomains(normal)),
        (true, _) => Err(bad("puts a wildcard in front of an IP address")),
        (false, _) => Ok(HostPattern::Exact(normal)),
    }
}

/// An internal host the operator allows functions to reach despite the SSRF
/// rules (`--egress-allow-internal host` or `host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalHost {
    host: String,
    port: Option<u16>,
}

impl std::str::FromStr for InternalHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let url = Url::parse(&format!("http://{}/", text.trim()))
            .map_err(|e| format!("--egress-allow-internal {text:?} is not a host or host:port ({e})"))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("--egress-allow-internal {text:?} has no host"))?;
        if url.path() != "/" || !url.username().is_empty() {
            return Err(format!("--egress-allow-internal {text:?} must be a host or host:port"));
        }
        Ok(InternalHost { host: host.trim_end_matches('.').to_owned(), port: url.port() })
    }
}

/// Where one outbound request goes, parsed by the same rules browsers use,
/// so that `http://2130706433/`, `http://0x7f.1/` and `http://127.1/` are
/// all recognised as 127.0.0.1 before anything is checked.
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: Url,
    /// Lower-case host, IPv6 without brackets, no trailing dot.
    pub host: String,
    pub port: u16,
    /// The host, when the URL names an IP address rather than a name.
    pub ip: Option<IpAddr>,
}

impl Destination {
    pub fn parse(uri: &http::Uri) -> Result<Destination, String> {
        let text = uri.to_string();
        let url = Url::parse(&text).map_err(|e| format!("the URL {text} is not valid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("the URL {text} is not http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a URL with credentials in it (user:password@) cannot be fetched; send an Authorization header".into());
        }
        let (host, ip) = match url.host() {
            Some(Host::Domain(name)) => (name.trim_end_matches('.').to_owned(), None),
            Some(Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
            Some(Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
            None => return Err(format!("the URL {text} has no host")),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Destination { url, host, port, ip })
    }

    /// How the URL names the host, for messages: `[::1]`, `127.0.0.1`, `example.com`.
    pub fn shown_host(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        }
    }
}

/// The server's egress settings.
#[derive(Debug, Clone, Default)]
pub struct EgressRules {
    pub default: DefaultEgress,
    pub internal: Vec<InternalHost>,
}

/// How a request that passed the rules must be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Through the resolver that refuses internal addresses.
    Public,
    /// The operator allowed this internal host: no address checks.
    Internal,
}

impl EgressRules {
    /// Checks a destination against the function's allowlist (or the
    /// default) and the SSRF rules that can be checked before DNS.
    pub fn check(&self, allowlist: Option<&Allowlist>, destination: &Destination) -> Result<Route, String> {
        let host = &destination.host;
        let listed = match allowlist {
            Some(list) => list.allows(host),
            None => self.default == DefaultEgress::Public,
        };
        if !listed {
            return Err(match allowlist {
                Some(_) => format!(
                    "{} is not in this function's egress allowlist; add it to \"egress\" in the deployment manifest",
                    destination.shown_host()
                ),
                None => format!(
                    "{} cannot be reached: this server allows outbound requests only to hosts a function lists in \
                     \"egress\" in its deployment manifest",
                    destination.shown_host()
                ),
            });
        }
        let internal = self.internal.iter().any(|allowed| {
            allowed.host == *host && allowed.port.is_none_or(|port| port == destination.port)
        });
        if internal {
            return Ok(Route::Internal);
        }
        if let Some(ip) = destination.ip {
            if let Some(reason) = address::forbidden_reason(ip) {
                return Err(refused(&destination.shown_host(), ip, reason));
            }
        } else if let Some(reason) = address::forbidden_host_name(host) {
            return Err(format!(
                "{host} cannot be reached: it names {reason}; functions may not reach internal addresses (an \
                 operator can allow a host with --egress-allow-internal)"
            ));
        }
        Ok(Route::Public)
    }
}

/// The message for an address the SSRF rules refuse.
pub fn refused(host: &str, ip: IpAddr, reason: &str) -> String {
    let subject = if host.trim_matches(['[', ']']) == ip.to_string() {
        host.to_owned()
    } else {
        format!("{host} resolves to {ip}, which")
    };
    format!(
        "{subject} is {reason}; functions may not reach internal addresses (an operator can allow a host with \
         --egress-allow-internal)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(url: &str) -> Destination {
        Destination::parse(&url.parse().unwrap()).unwrap()
    }

    fn public() -> EgressRules {
        EgressRules::default()
    }

    #[test]
    fn allowlist_matches_exact_hosts_and_subdomain_wildcards() {
        let list = Allowlist::parse(&["api.stripe.com".into(), "*.openai.com".into(), "10.0.0.5".into()]).unwrap();
        assert!(list.allows("api.stripe.com"));
        assert!(!list.allows("stripe.com"));
        assert!(!list.allows("evil-api.stripe.com"));
        assert!(list.allows("api.openai.com"));
        assert!(list.allows("a.b.openai.com"));
        assert!(!list.allows("openai.com"));
        assert!(!list.allows("notopenai.com"));
        assert!(list.allows("10.0.0.5"));
        let upper = Allowlist::parse(&["API.Example.COM.".into()]).unwrap();
        assert!(upper.allows("api.example.com"));
    }

    #[test]
    fn bad_allowlist_entries_are_refused_with_the_entry_named() {
        for entry in ["https://api.stripe.com", "api.stripe.com/v1", "user@host", "api.*.com", "*.10.0.0.1", "host:443", "", "exa mple.com"] {
            let error = Allowlist::parse(&[entry.to_owned()]).unwrap_err();
            assert!(error.contains(&format!("{entry:?}")), "{error}");
        }
    }

    #[test]
    fn ip_spellings_are_normalized_before_any_check() {
        for url in [
            "http://127.0.0.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/",
            "http://0x7f.0.0.1/", "http://017700000001/", "http://127.000.000.001/", "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/", "http://[::1]/", "http://0/",
            "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://localhost:8080/",
            "http://LOCALHOST./", "http://192.168.0.1/", "http://10.0.0.1/", "http://100.100.100.200/", "http://[fe80::1]/",
            "http://metadata.google.internal/computeMetadata/v1/", "http://0.0.0.0/",
        ] {
            let error = public().check(None, &destination(url)).unwrap_err();
            assert!(error.contains("--egress-allow-internal"), "{url}: {error}");
        }
        assert_eq!(public().check(None, &destination("https://example.com/")), Ok(Route::Public));
        assert_eq!(public().check(None, &destination("http://8.8.8.8/")), Ok(Route::Public));
    }

    #[test]
    fn the_operator_can_allow_an_internal_host_and_port() {
        let rules = EgressRules {
            internal: vec!["127.0.0.1".parse().unwrap(), "db.internal:5432".parse().unwrap()],
            ..EgressRules::default()
        };
        assert_eq!(rules.check(None, &destination("http://127.0.0.1:9999/x")), Ok(Route::Internal));
        assert_eq!(rules.check(None, &destination("http://2130706433:9999/x")), Ok(Route::Internal));
        assert_eq!(rules.check(None, &destination("http://db.internal:5432/")), Ok(Route::Internal));
        assert_eq!(rules.check(None, &destination("http://db.internal:80/")), Ok(Route::Public));
        assert!(rules.check(None, &destination("http://127.0.0.2/")).is_err());
    }

    #[test]
    fn the_allowlist_comes_before_everything_else() {
        let list = Allowlist::parse(&["api.example.com".into()]).unwrap();
        let error = public().check(Some(&list), &destination("https://other.example.com/")).unwrap_err();
        assert!(error.contains("not in this function's egress allowlist"), "{error}");
        let none = EgressRules { default: DefaultEgress::None, ..EgressRules::default() };
        assert!(none.check(None, &destination("https://example.com/")).unwrap_err().contains("lists in \"egress\""));
        assert_eq!(none.check(Some(&list), &destination("https://api.example.com/")), Ok(Route::Public));
    }

    #[test]
    fn credentials_in_urls_are_refused() {
        let error = Destination::parse(&"http://user:pw@example.com/".parse().unwrap()).unwrap_err();
        assert!(error.contains("credentials"), "{error}");
    }
}
