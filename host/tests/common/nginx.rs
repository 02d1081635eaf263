//! nginx in front of hosts, as in production (`docs/deploy.md`): an
//! upstream of them, a request retried on the next when one refuses or
//! fails (`proxy_next_upstream`), no host ever set aside (`max_fails=0`:
//! nginx's passive checks would set aside for `fail_timeout` each host a
//! rolling restart stops, until none is left), with the
//! `proxy_set_header` lines `trusted_proxies` expects. One process
//! (`master_process off`), so that killing it stops it whole; its files
//! in a temporary folder.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
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

/// Debian puts nginx in /usr/sbin, which a user's PATH may lack.
fn program() -> &'static str {
    if Path::new("/usr/sbin/nginx").is_file() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
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
        let dir = folder.path().display();
        let servers: String = upstreams
            .iter()
            .map(|addr| format!("        server {addr} max_fails=0;\n"))
            .collect();
        let config = format!(
            "daemon off;
master_process off;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream site {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 16m;
        location / {{
            proxy_pass http://site;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"
        );
        let file = folder.path().join("nginx.conf");
        std::fs::write(&file, config).unwrap();
        let child = Command::new(program())
            .args(["-p", &dir.to_string(), "-c"])
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
