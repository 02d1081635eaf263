//! nginx in front of hosts, configured as `nginx_conf` says, its files in
//! a temporary folder.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

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
        // nginx, run by root, writes its temporary files as `nobody`
        std::fs::set_permissions(
            folder.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = super::nginx_conf::config(folder.path(), port, upstreams);
        let file = folder.path().join("nginx.conf");
        std::fs::write(&file, config).unwrap();
        let child = Command::new(super::nginx_conf::program())
            .arg("-p")
            .arg(folder.path())
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run nginx ({error}): .ci/install tests installs it")
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(folder.path().join("error.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(50));
        }
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
