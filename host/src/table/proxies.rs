//! The reverse proxies whose forwarding headers the host believes
//! (`trusted_proxies`: addresses and networks), and how much of each header
//! (`trusted_headers`: how many proxies' worth, Werkzeug's `ProxyFix`).

use std::net::IpAddr;

use ipnet::IpNet;

/// Addresses and networks (`10.0.0.1`, `::1`, `10.0.0.0/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Parses addresses and networks; the error names the entry.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Networks, String> {
        entries
            .into_iter()
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{entry:?} is not an address or a network (e.g. \"10.0.0.0/8\")")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Networks)
    }

    /// Whether `address` (IPv4-mapped IPv6 seen as IPv4) is in one of them.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The addresses and networks whose forwarding headers are believed, and
/// how many hops of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Networks,
    /// How many hops of each header to believe.
    pub headers: TrustedHeaders,
}

/// How many values of each forwarding header, counted from the right, come
/// from proxies the host trusts: each proxy in the chain appends one. 0
/// ignores the header. The defaults are Werkzeug's: one proxy's
/// `X-Forwarded-For` and `-Proto`; `-Host` and `-Prefix` only when the
/// table says so, since a proxy that does not set them passes on the
/// client's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedHeaders {
    /// `X-Forwarded-For`: the client's address.
    pub x_for: usize,
    /// `X-Forwarded-Proto`: `http` or `https`.
    pub x_proto: usize,
    /// `X-Forwarded-Host`: the host the client asked for.
    pub x_host: usize,
    /// `X-Forwarded-Prefix`: the path prefix the proxy removed.
    pub x_prefix: usize,
}

impl Default for TrustedHeaders {
    fn default() -> TrustedHeaders {
        TrustedHeaders {
            x_for: 1,
            x_proto: 1,
            x_host: 0,
            x_prefix: 0,
        }
    }
}

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<TrustedProxies, String> {
        Ok(TrustedProxies {
            networks: Networks::parse(entries)?,
            headers: TrustedHeaders::default(),
        })
    }

    /// Whether any proxy is trusted.
    pub fn any(&self) -> bool {
        !self.networks.is_empty()
    }

    /// Whether `address` (IPv4-mapped IPv6 seen as IPv4) is a trusted proxy.
    pub fn trusts(&self, address: IpAddr) -> bool {
        self.networks.contains(address)
    }
}
