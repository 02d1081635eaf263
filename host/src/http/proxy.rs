//! Requests that come through a reverse proxy: `X-Forwarded-For`, `-Proto`,
//! `-Host` and `-Prefix`, honoured only from the configured
//! `trusted_proxies`, and of each only as many values, counted from the
//! right, as `trusted_headers` says proxies appended (Werkzeug's
//! `ProxyFix`): what lies further left was written by the client. Pure: no
//! I/O.

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

impl Origin<'_> {
    /// The client's address without its port.
    pub fn ip(&self) -> Option<IpAddr> {
        self.client
            .parse::<SocketAddr>()
            .map(|address| address.ip())
            .or_else(|_| self.client.parse::<IpAddr>())
            .ok()
    }
}

/// The value `hops` places from the right of the header `name` (all its
/// lines, comma-separated), if there are that many: `None` for 0 hops.
fn hop<'h>(headers: &'h HeaderMap, name: &str, hops: usize) -> Option<&'h str> {
    if hops == 0 {
        return None;
    }
    let values = || {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
    };
    let count = values().count();
    let index = count.checked_sub(hops)?;
    values()
        .nth(index)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// A path prefix made only of characters that need no escaping anywhere
/// (letters, digits, `-._~` and `/`): it goes into every link the apps
/// build.
fn plain_path(prefix: &str) -> bool {
    prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'))
}

/// The request's origin: the peer itself, unless the peer is a trusted
/// proxy, whose forwarding headers then say who the client was. `peer_text`
/// is `peer` as text, made once per connection. A Unix socket's peer
/// (`None`) is trusted: only a process of this machine that the socket
/// file's permissions let in can connect, the proxy.
pub fn origin<'a>(
    trusted: &TrustedProxies,
    peer: Option<SocketAddr>,
    peer_text: &'a str,
    headers: &HeaderMap,
) -> Origin<'a> {
    let mut origin = Origin {
        client: Cow::Borrowed(peer_text),
        scheme: "http",
        host: None,
        prefix: String::new(),
    };
    if peer.is_some_and(|peer| !trusted.trusts(peer.ip())) {
        return origin;
    }
    let hops = trusted.headers;
    if let Some(client) =
        hop(headers, "x-forwarded-for", hops.x_for).and_then(|hop| hop.parse::<IpAddr>().ok())
    {
        origin.client = Cow::Owned(client.to_string());
    }
    match hop(headers, "x-forwarded-proto", hops.x_proto) {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => origin.scheme = "https",
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => origin.scheme = "http",
        _ => {}
    }
    let plausible_host = |host: &&str| {
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    };
    if let Some(host) = hop(headers, "x-forwarded-host", hops.x_host).filter(plausible_host) {
        origin.host = Some(host.to_owned());
    }
    if let Some(prefix) = hop(headers, "x-forwarded-prefix", hops.x_prefix)
        .filter(|prefix| plain_path(prefix))
        .and_then(|prefix| normalize_prefix(prefix).ok())
    {
        origin.prefix = prefix;
    }
    origin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TrustedHeaders;

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

    /// Proxies at 127.0.0.1 and in 10.0.0.0/8, trusted for `hops` hops of
    /// every header.
    fn trusted(hops: usize) -> TrustedProxies {
        let mut proxies = TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8"]).unwrap();
        proxies.headers = TrustedHeaders {
            x_for: hops,
            x_proto: hops,
            x_host: hops,
            x_prefix: hops,
        };
        proxies
    }

    /// The origin of a request from `peer` with `headers`, one hop of each
    /// header trusted.
    fn from(peer: &'static str, headers: &HeaderMap) -> Origin<'static> {
        origin(&trusted(1), Some(peer.parse().unwrap()), peer, headers)
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
    fn a_unix_sockets_peer_is_a_trusted_proxy() {
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let none = TrustedProxies::parse(std::iter::empty()).unwrap();
        let origin = origin(&none, None, "unix:", &forwarded);
        assert_eq!(origin.client, "203.0.113.9");
        let direct = super::origin(&none, None, "unix:", &HeaderMap::new());
        assert_eq!(direct.client, "unix:");
        assert_eq!(direct.ip(), None, "never this machine's loopback");
    }

    #[test]
    fn each_header_is_believed_for_its_own_number_of_hops() {
        let forwarded = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-prefix", "/forged"),
        ]);
        let peer = "10.9.9.9:1";
        // Werkzeug's defaults: one hop of -For and -Proto, no -Host or -Prefix
        let defaults = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let origin_of = |proxies: &TrustedProxies| {
            origin(proxies, Some(peer.parse().unwrap()), peer, &forwarded)
        };
        let one = origin_of(&defaults);
        assert_eq!(one.client, "10.1.2.3");
        assert_eq!(one.scheme, "https");
        assert_eq!(one.host, None);
        assert_eq!(one.prefix, "");
        // two proxies in a row: the client is the second value from the right
        assert_eq!(origin_of(&trusted(2)).client, "203.0.113.9");
        // a forged first entry is never reached
        assert_eq!(origin_of(&trusted(3)).client, "1.1.1.1");
        // more hops trusted than values present: the header is ignored
        let four = origin_of(&trusted(4));
        assert_eq!(four.client, peer);
        assert_eq!(four.host, None);
        assert_eq!(four.scheme, "http");
    }

    #[test]
    fn implausible_values_are_ignored() {
        let origin = from(
            "127.0.0.1:1",
            &headers(&[
                ("x-forwarded-proto", "gopher"),
                ("x-forwarded-host", "evil.com/path"),
                ("x-forwarded-prefix", "no-slash"),
                ("x-forwarded-for", "not-an-address"),
            ]),
        );
        assert_eq!(origin.scheme, "http");
        assert_eq!(origin.host, None);
        assert_eq!(origin.prefix, "");
        assert_eq!(origin.client, "127.0.0.1:1");
        let shouted = from("127.0.0.1:1", &headers(&[("x-forwarded-proto", "HTTPS")]));
        assert_eq!(shouted.scheme, "https");
        for prefix in ["/a\"b", "/<script>", "/it's", "/%2e%2e", "/a/../b", "/a b"] {
            let origin = from("127.0.0.1:1", &headers(&[("x-forwarded-prefix", prefix)]));
            assert_eq!(origin.prefix, "", "{prefix}");
        }
        let plain = from(
            "127.0.0.1:1",
            &headers(&[("x-forwarded-prefix", "/blog-2/en_GB.x~")]),
        );
        assert_eq!(plain.prefix, "/blog-2/en_GB.x~");
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["proxy.local"]).is_err());
        assert!(TrustedProxies::parse(["::1", "fd00::/8"]).is_ok());
    }
}
