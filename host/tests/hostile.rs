//! Hostile clients, each attack against the real binary: bodies sent slowly,
//! to nowhere or in bulk; forged hosts; and the rest of what a stranger on
//! the internet sends.

mod common;

use std::{
    io::Write,
    net::TcpStream,
    thread,
    time::{Duration, Instant},
};

use common::{Host, Table, connect, mount, rss_kib};
use serde_json::json;

/// A host serving the probe app at `/` with these top-level keys and these
/// keys of the probe's mount.
fn probe_host(top: serde_json::Value, probe: serde_json::Value) -> Host {
    let mut probe_mount = mount("probe", "/", "probe");
    for (key, value) in probe.as_object().unwrap() {
        probe_mount[key] = value.clone();
    }
    let mut table = json!({ "mounts": [probe_mount] });
    for (key, value) in top.as_object().unwrap() {
        table[key] = value.clone();
    }
    Host::start(Table::from_value(table))
}

/// What the host answers on `stream` until it closes or `within` passes;
/// `None` when nothing came in that time.
fn answer_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let (received, _) = common::read_until_close(stream);
    (!received.is_empty()).then(|| String::from_utf8_lossy(&received).into_owned())
}

/// Sends a request head announcing a body of `length` bytes, and `sent`
/// bytes of it.
fn start_upload(host: &Host, method: &str, path: &str, length: usize, sent: usize) -> TcpStream {
    let mut stream = connect(host.addr, Duration::from_secs(5));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n",
        host.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'x'; sent]).unwrap();
    stream
}

#[test]
fn a_body_no_route_takes_is_never_read() {
    let host = probe_host(json!({}), json!({}));
    for (method, path, status) in [
        // no such page
        ("POST", "/nowhere", "404"),
        // a page, not for this method
        ("PUT", "/only-post", "405"),
    ] {
        // the body is announced and never sent: the answer cannot wait for it
        let mut stream = start_upload(&host, method, path, 900_000, 0);
        let answer = answer_within(&mut stream, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{method} {path}: no answer while the body was unsent"));
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{method} {path}: {answer}"
        );
    }
    // a route that takes the body still gets it
    let echoed = host.request("POST", "/echo", &[], &[b'y'; 5000]).json();
    assert_eq!(echoed["body_len"], 5000);
}

#[test]
fn a_body_that_stops_arriving_gets_408_and_the_connection_closes() {
    let host = probe_host(json!({"body_read_timeout_ms": 400}), json!({}));
    let started = Instant::now();
    let mut stream = start_upload(&host, "POST", "/echo", 1000, 10);
    let answer =
        answer_within(&mut stream, Duration::from_secs(10)).expect("no answer to a stalled body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // a body that keeps coming, more slowly than the timeout allows in all
    // but faster than it between two reads, is received
    let mut stream = start_upload(&host, "POST", "/echo", 30, 0);
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(250));
        stream.write_all(&[b'z'; 10]).unwrap();
    }
    let answer = answer_within(&mut stream, Duration::from_secs(5)).expect("no answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"body_len\":30"), "{answer}");
}

/// The host's open files under `folder` (spool files show as deleted).
fn open_files_under(pid: u32, folder: &std::path::Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(folder))
        .count()
}

#[test]
fn large_bodies_wait_on_disk_not_in_memory() {
    let table = Table::from_value(json!({
        "mounts": [{
            "name": "probe", "prefix": "/", "library": common::library("probe"),
            "max_body_bytes": 16_000_000,
        }],
    }));
    let spool = table.dir.path().join("data/tmp");
    let host = Host::start_on(&table);
    let pid = host.child.id();
    assert_eq!(host.get("/").status, 200);
    let before = rss_kib(pid);
    // 40 uploads of 16 MB, each 2 MB in, then silent
    let uploads: Vec<TcpStream> = (0..40)
        .map(|_| start_upload(&host, "POST", "/echo", 16_000_000, 2_000_000))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_files_under(pid, &spool) < uploads.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_files_under(pid, &spool), uploads.len());
    // 80 MB arrived; memory holds next to none of it
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(
        grown < 30_000,
        "RSS grew by {grown} KiB for 80 MB of bodies"
    );
    // the others keep being answered
    assert_eq!(host.get("/").status, 200);
    // a spooled body that completes reaches the app whole
    let mut last = start_upload(&host, "POST", "/echo", 3_000_000, 3_000_000);
    let answer = answer_within(&mut last, Duration::from_secs(10)).expect("no answer");
    assert!(answer.contains("\"body_len\":3000000"), "{answer}");
    drop(uploads);
    // the spool files go with their requests
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_files_under(pid, &spool) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_files_under(pid, &spool), 0);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

#[test]
fn a_request_for_another_host_is_refused_before_any_app_sees_it() {
    let site = common::blog::site_table_value();
    let mut site_with_proxy = site.clone();
    site_with_proxy["trusted_proxies"] = json!(["127.0.0.1"]);
    site_with_proxy["trusted_headers"] = json!({"x_host": 1});
    let host = Host::start(Table::from_value(site_with_proxy));
    let port = host.addr.port();
    // the feed's links would name the attacker's host
    for headers in [
        vec![("Host", "evil.example")],
        vec![("Host", "localhost.evil.example")],
        vec![("Host", "localhost"), ("X-Forwarded-Host", "evil.example")],
    ] {
        let response = common::send_raw(host.addr, &raw_get("/en/feed.xml", &headers), false);
        assert_eq!(response.status, 400, "{headers:?}");
        let body = response.text();
        assert_eq!(body.lines().count(), 1, "{body}");
        assert!(!body.contains("evil"), "{body}");
    }
    // static files and redirects too
    let static_file = raw_get("/static/style.css", &[("Host", "evil.example")]);
    assert_eq!(common::send_raw(host.addr, &static_file, false).status, 400);
    // this machine's names are served
    for name in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let feed = common::send_raw(
            host.addr,
            &raw_get("/en/feed.xml", &[("Host", &name)]),
            false,
        );
        assert_eq!(feed.status, 200, "{name}");
        assert!(feed.text().contains(&format!("http://{name}/")), "{name}");
    }
    // the host's own pages answer load balancers that name no site
    let health = raw_get("/_host/health", &[("Host", "10.1.2.3:5000")]);
    assert_eq!(common::send_raw(host.addr, &health, false).status, 200);
}

#[test]
fn listed_hosts_are_served_and_absolute_urls_come_from_public_url() {
    let host = probe_host(
        json!({
            "allowed_hosts": [".example.com", "blog.example.org"],
            "public_url": "https://www.example.com",
        }),
        json!({}),
    );
    for (name, status) in [
        ("example.com", 200),
        ("shop.example.com:8080", 200),
        ("blog.example.org", 200),
        ("www.example.com.evil.example", 400),
        ("localhost", 400),
    ] {
        let response = common::send_raw(host.addr, &raw_get("/echo", &[("Host", name)]), false);
        assert_eq!(response.status, status, "{name}");
        if status == 200 {
            // whatever allowed name was used, links carry the public one
            assert_eq!(
                response.json()["url"],
                "https://www.example.com/echo",
                "{name}"
            );
        }
    }
}

#[test]
fn host_check_warns_of_a_public_listen_address_without_allowed_hosts() {
    let warned = |extra: serde_json::Value| {
        let mut table = json!({"listen": "0.0.0.0:0", "mounts": [mount("probe", "/", "probe")]});
        for (key, value) in extra.as_object().unwrap() {
            table[key] = value.clone();
        }
        let output = Table::from_value(table).run("check");
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let open = warned(json!({}));
    assert!(
        open.contains(
            "warn  listen 0.0.0.0:0 reaches beyond this machine but allowed_hosts is not set"
        ),
        "{open}"
    );
    let listed = warned(json!({"allowed_hosts": ["blog.example.com"]}));
    assert!(!listed.contains("warn"), "{listed}");
    let any = warned(json!({"allowed_hosts": ["*"]}));
    assert!(any.contains("public_url is not set"), "{any}");
}

/// A `GET` with these headers (the first should be `Host`), closing after.
fn raw_get(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut raw = format!("GET {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("Connection: close\r\n\r\n");
    raw.into_bytes()
}

#[test]
fn control_characters_never_break_the_feed_and_absurd_pages_are_404() {
    use common::blog::{Client, PASSWORD, create_user};
    let table = common::blog::site_table();
    create_user(&table, "ed");
    let host = Host::start_on(&table);
    let mut editor = Client::new(&host);
    assert_eq!(editor.log_in("/admin", "ed", PASSWORD).status, 303);
    editor.create_post("Bell\u{7}ing \u{1b}[31mred", "bells", "a\u{0}b\u{1}c", true);
    let feed = host.get("/en/feed.xml");
    assert_eq!(feed.status, 200);
    let xml = feed.text();
    assert!(xml.contains("<title>Bell"), "{xml}");
    assert!(
        !xml.chars()
            .any(|c| c < ' ' && !matches!(c, '\t' | '\n' | '\r')),
        "{xml:?}"
    );
    assert!(xml.contains("ing [31mred</title>"), "{xml}");
    for page in [
        "4294967295",
        "2147483648",
        "99999999999999999999",
        "0",
        "-1",
        "x",
        "2",
    ] {
        let response = host.get(&format!("/en/?page={page}"));
        assert_eq!(response.status, 404, "?page={page}");
    }
    assert_eq!(host.get("/en/?page=1").status, 200);
}

/// The permission bits of `path`.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn what_the_host_writes_only_its_user_may_read() {
    use common::blog::{Client, PASSWORD, create_user, sample_png};
    let table = common::blog::site_table();
    create_user(&table, "ed");
    let host = Host::start_on(&table);
    let mut editor = Client::new(&host);
    assert_eq!(editor.log_in("/admin", "ed", PASSWORD).status, 303);
    let token = editor.csrf_token("/admin/images");
    let uploaded = editor.post_multipart(
        "/admin/images",
        &[("csrf_token", &token)],
        ("image", "photo.png", &sample_png()),
    );
    assert_eq!(uploaded.status, 303, "{}", uploaded.text());
    let dir = table.dir.path();
    let data = dir.join("data");
    let uploads: Vec<_> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(uploads.len(), 1);
    let mut expected = vec![
        (data.clone(), 0o700),
        (data.join("app.db"), 0o600),
        (data.join("secret.key"), 0o600),
        (data.join("host.pid"), 0o600),
        (data.join("uploads"), 0o700),
        (uploads[0].clone(), 0o600),
        (dir.join("logs"), 0o750),
        (dir.join("logs/host.log"), 0o640),
        (dir.join("logs/app_admin.log"), 0o640),
    ];
    // the write-ahead log, while there is one, as private as its database
    let wal = data.join("app.db-wal");
    if wal.exists() {
        expected.push((wal, 0o600));
    }
    for (path, mode) in expected {
        assert_eq!(
            mode_of(&path),
            mode,
            "{}: {:04o}",
            path.display(),
            mode_of(&path)
        );
    }
}

#[test]
fn a_data_folder_others_could_read_is_closed_and_a_readable_secret_refused() {
    use std::os::unix::fs::PermissionsExt;
    let table = Table::from_value(json!({"mounts": [mount("probe", "/", "probe")]}));
    let data = table.dir.path().join("data");
    // as an older release left it
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    {
        let host = Host::start_on(&table);
        assert_eq!(host.get("/").status, 200);
        assert_eq!(mode_of(&data), 0o700);
    }
    let secret = data.join("secret.key");
    std::fs::write(&secret, [7u8; 64]).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = table.run_args(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("chmod 600 {}", secret.display())),
        "{stderr}"
    );
}

#[test]
fn host_reload_signals_only_the_host_serving_this_table() {
    let table = Table::from_value(json!({"mounts": [mount("probe", "/", "probe")]}));
    let data = table.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // a stale pid file naming a process that is not the host
    let mut bystander = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    for stale in [
        format!("{}\n", bystander.id()),
        format!(
            "{}\nstarted 1\nserves {}\n",
            bystander.id(),
            table.file.display()
        ),
    ] {
        std::fs::write(data.join("host.pid"), stale).unwrap();
        let output = table.run("reload");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("nothing was signalled"), "{stderr}");
    }
    thread::sleep(Duration::from_millis(200));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander was signalled"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    // the host itself is reloaded
    let host = Host::start_on(&table);
    assert_eq!(host.get("/").status, 200);
    let output = table.run("reload");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // another table's reload does not touch it
    let other = Table::from_value(json!({
        "data_dir": data.display().to_string(),
        "mounts": [mount("probe", "/", "probe")],
    }));
    let output = other.run("reload");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("reload it with that mount table"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn health_details_and_metrics_are_for_administrators_only() {
    let host = Host::start(Table::from_value(json!({
        "trusted_proxies": ["127.0.0.1"],
        "admin_allow": ["192.0.2.0/24"],
        "mounts": [
            mount("probe", "/", "probe"),
            {"name": "broken", "prefix": "/broken", "library": "apps/nope.so"},
        ],
    })));
    let from =
        |client: &str, path: &str| host.request("GET", path, &[("X-Forwarded-For", client)], b"");
    // a stranger, through the proxy
    let bare = from("203.0.113.9", "/_host/health");
    assert_eq!(bare.status, 503);
    assert_eq!(bare.text(), r#"{"status":"degraded"}"#);
    assert_eq!(from("203.0.113.9", "/_host/metrics").status, 404);
    // an administrator's network, through the proxy; the proxy itself
    for detailed in [
        from("192.0.2.44", "/_host/health"),
        host.get("/_host/health"),
    ] {
        assert_eq!(detailed.status, 503);
        let report = detailed.json();
        assert_eq!(report["mounts"][1]["state"], "failed");
        assert!(
            report["mounts"][1]["error"]
                .as_str()
                .unwrap()
                .contains("nope.so")
        );
    }
    let metrics = from("192.0.2.44", "/_host/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("host_requests_total"),
        "{}",
        metrics.text()
    );
}

#[test]
fn debug_pages_are_refused_where_others_could_see_them() {
    for (listen, proxies) in [
        ("0.0.0.0:0", json!([])),
        ("127.0.0.1:0", json!(["127.0.0.1"])),
    ] {
        let table = Table::from_value(json!({
            "listen": listen,
            "trusted_proxies": proxies,
            "allowed_hosts": ["localhost"],
            "mounts": [mount("probe", "/", "probe")],
        }));
        let output = table.run_args(&["serve", "--debug"]);
        assert!(!output.status.success(), "{listen} {proxies}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--debug shows backtraces to this machine's clients"),
            "{stderr}"
        );
    }
}

#[test]
fn one_client_address_cannot_take_every_connection() {
    let host = probe_host(json!({"max_connections_per_address": 4}), json!({}));
    let held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = connect(host.addr, Duration::from_secs(5));
            // a request in progress: its head is not finished
            stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    // the fifth is closed at once, unanswered
    let mut fifth = connect(host.addr, Duration::from_secs(5));
    let _ = fifth.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(answer_within(&mut fifth, Duration::from_secs(5)), None);
    // one closes: there is room again
    drop(held);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(host.get("/").status, 200);
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let table = Table::from_value(json!({"mounts": [mount("probe", "/", "probe")]}));
    let host = Host::start_through(&table, &["prlimit", "--nofile=256:4096"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", host.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{open_files}");
}

#[test]
fn app_responses_carry_safe_headers_unless_the_table_says_otherwise() {
    let mut relaxed = mount("relaxed", "/relaxed", "probe");
    relaxed["headers"] = json!({"X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "", "Strict-Transport-Security": "max-age=60"});
    let host = Host::start(Table::from_value(json!({
        "mounts": [mount("probe", "/", "probe"), relaxed],
    })));
    let page = host.get("/echo");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        page.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // a page with no session cookie either way may be cached
    assert_eq!(page.header("cache-control"), None);
    let changed = host.get("/relaxed/echo");
    assert_eq!(changed.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(changed.header("referrer-policy"), None);
    assert_eq!(
        changed.header("strict-transport-security"),
        Some("max-age=60")
    );
    assert_eq!(changed.header("x-content-type-options"), Some("nosniff"));
    // a request that carries the mount's session cookie: never cached
    let with_session = host.request("GET", "/echo", &[("Cookie", "a=1; probe_session=xyz")], b"");
    assert_eq!(with_session.header("cache-control"), Some("no-store"));
    let other_cookie = host.request("GET", "/echo", &[("Cookie", "xprobe_session=1")], b"");
    assert_eq!(other_cookie.header("cache-control"), None);
}

#[test]
fn a_session_cookie_being_set_is_never_cached() {
    use common::blog::Client;
    let host = Host::start(common::blog::site_table());
    let mut client = Client::new(&host);
    // the login form sets the session (its CSRF token)
    let form = client.get("/en/login");
    assert!(form.header("set-cookie").is_some());
    assert_eq!(form.header("cache-control"), Some("no-store"));
    // the public home page, without a cookie, may be cached
    let home = host.get("/en/");
    assert_eq!(home.header("cache-control"), None);
}

#[test]
fn only_images_are_stored_and_uploads_are_served_sandboxed() {
    let host = probe_host(json!({}), json!({}));
    for extension in ["html", "svg", "js", "txt"] {
        let refused = host.request(
            "POST",
            &format!("/uploads-store?ext={extension}"),
            &[],
            b"<script>",
        );
        assert_eq!(refused.status, 409, "{extension}");
        assert!(
            refused.text().contains("is not one the host stores"),
            "{}",
            refused.text()
        );
    }
    let stored = host.request("POST", "/uploads-store?ext=png", &[], b"png bytes");
    assert_eq!(stored.status, 200, "{}", stored.text());
    let served = host.get(&format!("/uploads/{}", stored.text()));
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-security-policy"), Some("sandbox"));
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
}
