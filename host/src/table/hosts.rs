//! The hosts a site answers for (Django's `ALLOWED_HOSTS`) and the public
//! URL it builds absolute links from. A request for any other `Host` is
//! refused before an app sees it, so no page, feed or redirect is ever
//! built from a name an attacker chose (cache poisoning, password-reset
//! links to the attacker's site). Pure: no I/O.

use std::net::IpAddr;

use super::Listen;

/// The names the site answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// Exact names, lowercase, without port or trailing dot.
    exact: Vec<String>,
    /// Domains whose subdomains are allowed too (`.example.com` is kept as
    /// `example.com`).
    domains: Vec<String>,
    /// `*`: any host.
    any: bool,
    /// Whether the operator wrote the list (else it is the loopback default).
    pub written: bool,
}

/// The name in a `Host` value: no port, no brackets, no trailing dot
/// (`[::1]:5000` → `::1`, `Example.COM.:80` → `Example.COM`). Borrowed:
/// every request's `Host` is looked up, and compared ignoring case.
fn name_of(host: &str) -> &str {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        // a byte search: `rsplit_once`'s char searcher cost a request 150
        // instructions
        None => match host.bytes().rposition(|b| b == b':') {
            Some(colon) if host.as_bytes()[colon + 1..].iter().all(u8::is_ascii_digit) => {
                &host[..colon]
            }
            _ => host,
        },
    };
    name.trim_end_matches('.')
}

impl AllowedHosts {
    /// The hosts the table lists (`None`: it lists none): exact names,
    /// `.example.com` for a domain and its subdomains, `*` for any. Without
    /// a list: the listen address's own host (unless it listens on every
    /// address), `localhost`, `127.0.0.1` and `::1`, and the public URL's
    /// host.
    pub fn parse(
        written: Option<&[String]>,
        listen: &Listen,
        public: Option<&PublicUrl>,
    ) -> Result<AllowedHosts, (usize, String)> {
        let mut hosts = AllowedHosts {
            exact: Vec::new(),
            domains: Vec::new(),
            any: false,
            written: written.is_some(),
        };
        let Some(written) = written else {
            hosts.exact = ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec();
            if let Some(ip) = listen.ip().filter(|ip| !ip.is_unspecified()) {
                hosts.exact.push(ip.to_string());
            }
            hosts
                .exact
                .extend(public.map(|url| name_of(&url.host).to_owned()));
            return Ok(hosts);
        };
        for (index, entry) in written.iter().enumerate() {
            let entry = entry.trim();
            if entry == "*" {
                hosts.any = true;
            } else if let Some(domain) = entry.strip_prefix('.') {
                check_name(domain).map_err(|why| (index, format!("{entry:?} {why}")))?;
                hosts.domains.push(domain.to_ascii_lowercase());
            } else {
                check_name(entry).map_err(|why| (index, format!("{entry:?} {why}")))?;
                hosts.exact.push(name_of(entry).to_ascii_lowercase());
            }
        }
        hosts
            .exact
            .extend(public.map(|url| name_of(&url.host).to_owned()));
        Ok(hosts)
    }

    /// Whether a request for `host` (a `Host` header's value) is served.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = name_of(host);
        self.exact
            .iter()
            .any(|exact| exact.eq_ignore_ascii_case(name))
            || self.domains.iter().any(|domain| {
                // `domain` or `<anything>.domain`; byte offsets are safe as
                // a non-ASCII name never equals an ASCII domain's tail
                let Some(split) = name.len().checked_sub(domain.len()) else {
                    return false;
                };
                name.is_char_boundary(split)
                    && name[split..].eq_ignore_ascii_case(domain)
                    && (split == 0 || name[..split].ends_with('.'))
            })
    }

    /// Whether any host at all is served (`*`).
    pub fn any(&self) -> bool {
        self.any
    }
}

/// What an entry of `allowed_hosts` may be: a name or an address, without
/// scheme, port or path.
fn check_name(name: &str) -> Result<(), &'static str> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if plain || name.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(
            "is not a host name: give a name (\"blog.example.com\"), a domain with its subdomains (\".example.com\"), an address, or \"*\" for any",
        )
    }
}

/// The site's public address (`public_url`), which absolute URLs use
/// whatever `Host` a request named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host, with its port if it has one.
    pub host: String,
}

impl PublicUrl {
    /// `https://blog.example.com` (a trailing `/` allowed, no other path).
    pub fn parse(url: &str) -> Result<PublicUrl, String> {
        let fix =
            "give the scheme and host the site is reached at, e.g. \"https://blog.example.com\"";
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(format!("{url:?} is not an http or https URL: {fix}"));
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        let valid = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
            });
        if !valid {
            return Err(format!(
                "{url:?} has a path, query or character a host cannot have: {fix} (a path prefix comes from the proxy's X-Forwarded-Prefix)"
            ));
        }
        Ok(PublicUrl {
            scheme,
            host: host.to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(address: &str) -> Listen {
        Listen::Tcp(address.parse().unwrap())
    }

    fn written(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|entry| (*entry).to_owned()).collect();
        AllowedHosts::parse(Some(&entries), &listen("0.0.0.0:80"), None).unwrap()
    }

    #[test]
    fn hosts_match_by_name_domain_or_star() {
        let hosts = written(&["blog.example.org", ".example.com", "192.0.2.7"]);
        for (host, expected) in [
            ("blog.example.org", true),
            ("Blog.Example.ORG:8080", true),
            ("blog.example.org.", true),
            ("www.blog.example.org", false),
            ("example.com", true),
            ("www.example.com", true),
            ("a.b.example.com:443", true),
            ("badexample.com", false),
            ("example.com.evil.example", false),
            ("192.0.2.7:5000", true),
            ("evil.example", false),
            ("localhost", false),
            ("", false),
        ] {
            assert_eq!(hosts.allows(host), expected, "{host}");
        }
        assert!(written(&["*"]).allows("anything.example"));
    }

    #[test]
    fn without_a_list_only_this_machine_and_the_listen_address_are_served() {
        let hosts = AllowedHosts::parse(None, &listen("192.0.2.7:5000"), None).unwrap();
        for (host, expected) in [
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("[::1]:5000", true),
            ("192.0.2.7:5000", true),
            ("evil.example", false),
        ] {
            assert_eq!(hosts.allows(host), expected, "{host}");
        }
        assert!(!hosts.written);
        let public = PublicUrl::parse("https://blog.example.com/").unwrap();
        let hosts = AllowedHosts::parse(None, &listen("0.0.0.0:5000"), Some(&public)).unwrap();
        assert!(hosts.allows("blog.example.com"));
        assert!(!hosts.allows("0.0.0.0:5000"));
    }

    #[test]
    fn bad_entries_and_urls_are_refused_with_the_fix() {
        for entry in ["http://example.com", "example.com/path", "", "exa mple.com"] {
            let entries = vec![entry.to_owned()];
            let (_, error) =
                AllowedHosts::parse(Some(&entries), &listen("0.0.0.0:80"), None).unwrap_err();
            assert!(error.contains("is not a host name"), "{entry}: {error}");
        }
        assert_eq!(
            PublicUrl::parse("https://Blog.example.com:8443").unwrap(),
            PublicUrl {
                scheme: "https",
                host: "blog.example.com:8443".into()
            }
        );
        for url in [
            "blog.example.com",
            "https://blog.example.com/site",
            "ftp://x",
            "https://",
        ] {
            assert!(PublicUrl::parse(url).is_err(), "{url}");
        }
    }
}
