//! nginx in front of hosts, configured as `nginx_conf` says, its files in
//! a temporary folder.

use std::net::SocketAddr;

use super::Host;

/// nginx serving on a port of its own.
pub struct Nginx {
    pub server: Host,
    folder: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx proxying to `upstreams`.
    pub fn start(upstreams: &[SocketAddr]) -> Nginx {
        let folder = tempfile::tempdir().unwrap();
        let (child, addr) = super::nginx_conf::start(folder.path(), upstreams)
            .unwrap_or_else(|error| panic!("{error}"));
        Nginx {
            server: Host::adopt(child, addr),
            folder,
        }
    }

    /// Starts nginx proxying to a host on the Unix socket `socket`.
    pub fn to_socket(socket: &std::path::Path) -> Nginx {
        let folder = tempfile::tempdir().unwrap();
        let (child, addr) = super::nginx_conf::start_to_socket(folder.path(), socket)
            .unwrap_or_else(|error| panic!("{error}"));
        Nginx {
            server: Host::adopt(child, addr),
            folder,
        }
    }

    /// nginx's error log so far.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("error.log")).unwrap_or_default()
    }
}
