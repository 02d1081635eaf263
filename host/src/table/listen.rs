//! Where the host listens: a TCP address and port, or a Unix socket's path
//! (`unix:/run/host/host.sock`), as gunicorn's `--bind` takes both; pure.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    str::FromStr,
};

/// Where the host listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// An address and port (port 0 picks a free one).
    Tcp(SocketAddr),
    /// A Unix socket at this path: for a proxy on the same machine.
    Unix(PathBuf),
}

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes
/// with the closing NUL).
const MAX_SOCKET_PATH: usize = 107;

impl Listen {
    /// `127.0.0.1:5000`, `[::1]:5000` or `unix:PATH`; a relative `PATH` is
    /// taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Listen, String> {
        let Some(path) = text.strip_prefix("unix:") else {
            return text.parse().map(Listen::Tcp).map_err(|_| {
                format!(
                    "{text:?} is not an address with a port (e.g. \"127.0.0.1:5000\") nor a socket (\"unix:/run/host/host.sock\")"
                )
            });
        };
        if path.is_empty() {
            return Err(
                "\"unix:\" needs the socket's path, e.g. \"unix:/run/host/host.sock\"".to_owned(),
            );
        }
        let path = base.join(path);
        let length = path.as_os_str().len();
        if length > MAX_SOCKET_PATH {
            return Err(format!(
                "the socket path {} is {length} bytes long; a Unix socket's path holds at most {MAX_SOCKET_PATH}: choose a shorter one",
                path.display()
            ));
        }
        Ok(Listen::Unix(path))
    }

    /// The IP address, for a TCP address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Listen::Tcp(address) => Some(address.ip()),
            Listen::Unix(_) => None,
        }
    }

    /// Whether clients on other machines may reach it: a TCP address other
    /// than loopback (a socket's file is this machine's alone).
    pub fn reaches_beyond(&self) -> bool {
        self.ip().is_some_and(|ip| !ip.is_loopback())
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(address) => write!(f, "{address}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// As the command line writes it: a relative socket path is the working
/// folder's.
impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        Listen::parse(text, Path::new(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_sockets_parse() {
        let base = Path::new("/srv/site");
        let rows: [(&str, Result<Listen, &str>); 8] = [
            (
                "127.0.0.1:5000",
                Ok(Listen::Tcp("127.0.0.1:5000".parse().unwrap())),
            ),
            ("[::1]:0", Ok(Listen::Tcp("[::1]:0".parse().unwrap()))),
            (
                "unix:/run/host/host.sock",
                Ok(Listen::Unix("/run/host/host.sock".into())),
            ),
            (
                "unix:run/host.sock",
                Ok(Listen::Unix("/srv/site/run/host.sock".into())),
            ),
            ("unix:", Err("needs the socket's path")),
            ("localhost:5000", Err("not an address with a port")),
            ("5000", Err("not an address with a port")),
            (
                "unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
                Err("at most 107"),
            ),
        ];
        for (text, expected) in rows {
            match (Listen::parse(text, base), expected) {
                (Ok(listen), Ok(expected)) => assert_eq!(listen, expected, "{text}"),
                (Err(error), Err(part)) => assert!(error.contains(part), "{text}: {error}"),
                (outcome, expected) => panic!("{text}: {outcome:?}, expected {expected:?}"),
            }
        }
        assert_eq!(
            Listen::Unix("/run/h.sock".into()).to_string(),
            "unix:/run/h.sock"
        );
        assert!(!Listen::Unix("/run/h.sock".into()).reaches_beyond());
        assert!(Listen::Tcp("0.0.0.0:80".parse().unwrap()).reaches_beyond());
        assert!(!Listen::Tcp("127.0.0.1:80".parse().unwrap()).reaches_beyond());
    }
}
