//! nginx in front of hosts, configured as `docs/deploy.md` says: the
//! tests' cluster and `cargo xtask bench` both start it with this code
//! (std only, so that both can include it); and nginx serving static
//! files, the benchmark's second baseline.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// nginx's configuration: one process in the foreground (`master_process
/// off`, so that killing it stops it whole), its files in `dir`, listening
/// on 127.0.0.1:`port`, proxying to `upstreams`. A request is retried on
/// the next host when one refuses or fails (`proxy_next_upstream`), and no
/// host is ever set aside (`max_fails=0`: nginx's passive checks set aside
/// for `fail_timeout` each host a rolling restart stops, until none is
/// left). The `proxy_set_header` lines are those `trusted_proxies` expects.
fn config(dir: &Path, port: u16, upstreams: &[String]) -> String {
    let servers: String = upstreams
        .iter()
        .map(|upstream| format!("        server {upstream} max_fails=0;\n"))
        .collect();
    whole(
        dir,
        Processes::One,
        &format!(
            "    access_log off;
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
"
        ),
    )
}

/// nginx serving `root`'s files at `/static/` the way it is tuned for
/// static files, for the benchmark to compare the host with: a worker per
/// core (the host uses every core too), `sendfile`, `open_file_cache`
/// revalidated each second as the host's cache is, buffered access lines
/// (the host writes its own), and keep-alive connections never cut.
fn static_config(dir: &Path, port: u16, root: &Path) -> String {
    let (logs, root) = (dir.display(), root.display());
    whole(
        dir,
        Processes::WorkerPerCore,
        &format!(
            "    types {{ text/css css; application/octet-stream bin; }}
    access_log {logs}/access.log combined buffer=64k flush=1s;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 1s;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{
            alias {root}/;
        }}
    }}
"
        ),
    )
}

/// How nginx runs.
pub enum Processes {
    /// One process in the foreground (`master_process off`): killing it
    /// stops it whole.
    One,
    /// A master and a worker per core; stopped by SIGTERM to the master.
    WorkerPerCore,
}

/// A whole configuration around `http`, the inside of its `http` block:
/// nginx's files (logs, pid, temporary files) in `dir`.
pub fn whole(dir: &Path, processes: Processes, http: &str) -> String {
    let dir = dir.display();
    let processes = match processes {
        Processes::One => "master_process off;",
        Processes::WorkerPerCore => "worker_processes auto;",
    };
    format!(
        "daemon off;
{processes}
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}}}
"
    )
}

/// Starts nginx in front of `upstreams`, its files in `folder`, on a free
/// port of 127.0.0.1; the process and its address, once it accepts.
pub fn start(folder: &Path, upstreams: &[SocketAddr]) -> Result<(Child, SocketAddr), String> {
    let upstreams: Vec<String> = upstreams.iter().map(SocketAddr::to_string).collect();
    launch(folder, |port| config(folder, port, &upstreams))
}

/// Starts nginx in front of a host listening on the Unix socket `socket`.
pub fn start_to_socket(folder: &Path, socket: &Path) -> Result<(Child, SocketAddr), String> {
    let upstream = format!("unix:{}", socket.display());
    launch(folder, |port| config(folder, port, &[upstream]))
}

/// Starts nginx serving `root` at `/static/` ([`static_config`]): a master
/// and its workers; stop it with SIGTERM to the master (SIGKILL would
/// leave the workers running).
pub fn start_static(folder: &Path, root: &Path) -> Result<(Child, SocketAddr), String> {
    launch(folder, |port| static_config(folder, port, root))
}

/// Starts nginx with the configuration `config` makes for a free port.
pub fn launch(
    folder: &Path,
    config: impl FnOnce(u16) -> String,
) -> Result<(Child, SocketAddr), String> {
    let io = |error: std::io::Error| error.to_string();
    // nginx, run by root, writes its temporary files as `nobody`
    std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .map_err(io)?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(io)?
        .port();
    let file = folder.join("nginx.conf");
    std::fs::write(&file, config(port)).map_err(io)?;
    let mut child = Command::new(program())
        .arg("-p")
        .arg(folder)
        .arg("-c")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot run nginx ({error}): .ci/install installs it"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "nginx did not start: {}",
                std::fs::read_to_string(folder.join("error.log")).unwrap_or_default()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok((child, addr))
}

/// Debian puts nginx in /usr/sbin, which a user's PATH may lack.
fn program() -> &'static str {
    if Path::new("/usr/sbin/nginx").is_file() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}
