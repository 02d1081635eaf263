//! nginx in front of hosts, configured as `nginx_conf` says, its files in
//! a temporary folder.

use std::{net::SocketAddr, path::Path, process::Child};

use super::Host;

/// nginx serving on a port of its own.
pub struct Nginx {
    pub server: Host,
    folder: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx proxying to `upstreams`.
    pub fn start(upstreams: &[SocketAddr]) -> Nginx {
        Nginx::started(|folder| super::nginx_conf::start(folder, upstreams))
    }

    /// Starts nginx proxying to a host on the Unix socket `socket`.
    pub fn to_socket(socket: &Path) -> Nginx {
        Nginx::started(|folder| super::nginx_conf::start_to_socket(folder, socket))
    }

    /// nginx as `start` starts it in a new temporary folder.
    fn started(start: impl FnOnce(&Path) -> Result<(Child, SocketAddr), String>) -> Nginx {
        let folder = tempfile::tempdir().unwrap();
        let (child, addr) = start(folder.path()).unwrap_or_else(|error| panic!("{error}"));
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
