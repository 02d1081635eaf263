//! Requests that come through a reverse proxy: `X-Forwarded-For`, `-Proto`,
//! `-Host` and `-Prefix`, honoured only from the configured
//! `trusted_proxies` (Werkzeug's `ProxyFix`, without having to count hops).
//! Pure: no I/O.

use std::{
    borrow::Cow,
    net::{IpAddr, SocketAddr},
};

use http::HeaderMap;

use crate::table::{TrustedProxies, normalize_prefix};

/// Who the client is and what URL it asked for, proxies considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The client's address: `ip:port` of the peer, or the IP a trusted
    /// proxy reported.
    pub client: Cow<'a, str>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host the client asked for, if a trusted proxy said.
    pub host: Option<String>,
    /// The prefix the proxy removed before passing the request on
    /// (`/site`), `""` if none.
    pub prefix: String,
}

fn first_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The request's origin: the peer itself, unless the peer is a trusted
/// proxy, whose forwarding headers then say who the client was. `peer_text`
/// is `peer` as text, made once per connection.
pub fn origin<'a>(
    trusted: &TrustedProxies,
    peer: SocketAddr,
    peer_text: &'a str,
    headers: &HeaderMap,
) -> Origin<'a> {
    let mut origin = Origin {
        client: Cow::Borrowed(peer_text),
        scheme: "http",
        host: None,
        prefix: String::new(),
    };
    if !trusted.trusts(peer.ip()) {
        return origin;
    }
    // X-Forwarded-For lists the hops left to right; the client is the
    // rightmost address that is not one of our proxies (the ones to its
    // left could be forged by the client).
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    if let Some(client) = hops
        .iter()
        .rev()
        .find(|hop| !trusted.trusts(**hop))
        .or(hops.first())
    {
        origin.client = Cow::Owned(client.to_string());
    }
    match first_value(headers, "x-forwarded-proto") {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => origin.scheme = "https",
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => origin.scheme = "http",
        _ => {}
    }
    let plausible_host = |host: &&str| {
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    };
    if let Some(host) = first_value(headers, "x-forwarded-host").filter(plausible_host) {
        origin.host = Some(host.to_owned());
    }
    if let Some(prefix) =
        first_value(headers, "x-forwarded-prefix").and_then(|prefix| normalize_prefix(prefix).ok())
    {
        origin.prefix = prefix;
    }
    origin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8"]).unwrap()
    }

    /// The origin of a request from `peer` with `headers`.
    fn from(peer: &'static str, headers: &HeaderMap) -> Origin<'static> {
        origin(&trusted(), peer.parse().unwrap(), peer, headers)
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let forwarded = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "example.com"),
            ("x-forwarded-prefix", "/site/"),
        ]);
        let from_proxy = from("127.0.0.1:4000", &forwarded);
        assert_eq!(
            from_proxy,
            Origin {
                client: "203.0.113.9".into(),
                scheme: "https",
                host: Some("example.com".into()),
                prefix: "/site".into(),
            }
        );
        let from_anyone = from("198.51.100.7:5000", &forwarded);
        assert_eq!(
            from_anyone,
            Origin {
                client: "198.51.100.7:5000".into(),
                scheme: "http",
                host: None,
                prefix: String::new(),
            }
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let rows = [
            // a forged first entry is ignored
            ("1.1.1.1, 203.0.113.9", "203.0.113.9"),
            // our own proxies in the chain are skipped
            ("203.0.113.9, 10.1.2.3", "203.0.113.9"),
            ("10.0.0.5, 10.1.2.3", "10.0.0.5"),
            ("garbage, 203.0.113.9", "203.0.113.9"),
        ];
        for (chain, client) in rows {
            let origin = from("10.9.9.9:1", &headers(&[("x-forwarded-for", chain)]));
            assert_eq!(origin.client, client, "{chain}");
        }
    }

    #[test]
    fn implausible_values_are_ignored() {
        let origin = from(
            "127.0.0.1:1",
            &headers(&[
                ("x-forwarded-proto", "gopher"),
                ("x-forwarded-host", "evil.com/path"),
                ("x-forwarded-prefix", "no-slash"),
            ]),
        );
        assert_eq!(origin.scheme, "http");
        assert_eq!(origin.host, None);
        assert_eq!(origin.prefix, "");
        let shouted = from("127.0.0.1:1", &headers(&[("x-forwarded-proto", "HTTPS")]));
        assert_eq!(shouted.scheme, "https");
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["proxy.local"]).is_err());
        assert!(TrustedProxies::parse(["::1", "fd00::/8"]).is_ok());
    }
}
