//! The nginx configuration in front of hosts, as `docs/deploy.md` gives
//! it: the tests' cluster and `cargo xtask bench` both use this one
//! (std only, so that both can include it).

use std::{net::SocketAddr, path::Path};

/// nginx's configuration: one process in the foreground (`master_process
/// off`, so that killing it stops it whole), its files in `dir`, listening
/// on 127.0.0.1:`port`, proxying to `upstreams`. A request is retried on
/// the next host when one refuses or fails (`proxy_next_upstream`), and no
/// host is ever set aside (`max_fails=0`: nginx's passive checks set aside
/// for `fail_timeout` each host a rolling restart stops, until none is
/// left). The `proxy_set_header` lines are those `trusted_proxies` expects.
pub fn config(dir: &Path, port: u16, upstreams: &[SocketAddr]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|addr| format!("        server {addr} max_fails=0;\n"))
        .collect();
    format!(
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
    )
}

/// Debian puts nginx in /usr/sbin, which a user's PATH may lack.
pub fn program() -> &'static str {
    if Path::new("/usr/sbin/nginx").is_file() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}
