//! Static folders served by the real host: bytes, headers, conditional and
//! range requests, traversal attempts, streaming of a 1 GiB file.

mod common;

use std::{
    io::{Read, Write},
    time::Duration,
};

use common::{Host, Table, connect, mount};
use serde_json::json;

const CSS: &str = "body { color: #123; }\n/* shared stylesheet */\n";
const SECRET: &str = "TOP-SECRET-CONTENT";

/// Frontend at `/` and admin at `/admin`, both serving `static/`, beside a
/// `secret.txt` that must never be served, and a symlink escaping to it.
fn site() -> Host {
    let mut frontend = mount("frontend", "/", "frontend");
    frontend["static_folder"] = json!("static");
    let mut admin = mount("admin", "/admin", "admin");
    admin["static_folder"] = json!("static");
    admin["static_max_age"] = json!(3600);
    let table = Table::new(vec![frontend, admin]);
    let dir = table.dir.path();
    std::fs::create_dir_all(dir.join("static/sub")).unwrap();
    std::fs::create_dir_all(dir.join("static/dir")).unwrap();
    std::fs::write(dir.join("static/style.css"), CSS).unwrap();
    std::fs::write(dir.join("static/sub/a b.txt"), "spaced").unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(dir.join("static/data.bin"), &binary).unwrap();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("static/escape.txt")).unwrap();
    std::os::unix::fs::symlink("style.css", dir.join("static/inner.css")).unwrap();
    Host::start(table)
}

#[test]
fn both_mounts_serve_the_same_file_with_nginx_headers() {
    let host = site();
    let front = host.get("/static/style.css");
    let admin = host.get("/admin/static/style.css");
    for response in [&front, &admin] {
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), CSS);
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(
            response.header("content-length"),
            Some(CSS.len().to_string().as_str())
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("accept-ranges"), Some("bytes"));
        assert!(response.header("etag").unwrap().starts_with('"'));
        assert!(response.header("last-modified").unwrap().ends_with("GMT"));
    }
    assert_eq!(front.header("etag"), admin.header("etag"));
    assert_eq!(front.header("cache-control"), Some("no-cache"));
    assert_eq!(admin.header("cache-control"), Some("public, max-age=3600"));

    let binary = host.get("/static/data.bin");
    assert_eq!(
        binary.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        binary.body,
        (0..=255u8).cycle().take(10_000).collect::<Vec<u8>>()
    );
    assert_eq!(host.get("/static/sub/a%20b.txt").text(), "spaced");
    // a symlink that stays inside the folder is served
    assert_eq!(host.get("/static/inner.css").text(), CSS);
}

#[test]
fn validators_turn_into_304() {
    let host = site();
    let first = host.get("/static/style.css");
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let get = |headers: &[(&str, &str)]| host.request("GET", "/static/style.css", headers, b"");

    let cached = get(&[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    assert_eq!(get(&[("If-None-Match", &format!("W/{etag}"))]).status, 304);
    assert_eq!(get(&[("If-None-Match", "\"stale\"")]).status, 200);
    assert_eq!(get(&[("If-Modified-Since", &modified)]).status, 304);
    assert_eq!(
        get(&[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]).status,
        200
    );
    // If-None-Match wins over If-Modified-Since
    assert_eq!(
        get(&[
            ("If-None-Match", "\"stale\""),
            ("If-Modified-Since", &modified)
        ])
        .status,
        200
    );
    assert_eq!(get(&[("If-Match", "\"stale\"")]).status, 412);
}

#[test]
fn head_gives_the_headers_without_the_body() {
    let host = site();
    let response = host.request("HEAD", "/admin/static/style.css", &[], b"");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    assert_eq!(
        response.header("content-length"),
        Some(CSS.len().to_string().as_str())
    );
    assert_eq!(
        response.header("content-type"),
        Some("text/css; charset=utf-8")
    );
}

#[test]
fn single_byte_ranges_416_and_if_range() {
    let host = site();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let range = |value: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("Range", value)];
        headers.extend_from_slice(extra);
        host.request("GET", "/static/data.bin", &headers, b"")
    };
    let rows = [
        ("bytes=0-9", 0usize, 9usize),
        ("bytes=9990-", 9990, 9999),
        ("bytes=-5", 9995, 9999),
        ("bytes=100-199", 100, 199),
        ("bytes=9998-20000", 9998, 9999),
    ];
    for (value, start, end) in rows {
        let response = range(value, &[]);
        assert_eq!(response.status, 206, "{value}");
        assert_eq!(response.body, data[start..=end], "{value}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes {start}-{end}/10000").as_str()),
            "{value}"
        );
    }
    let unsatisfiable = range("bytes=10000-", &[]);
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */10000"));
    let etag = host
        .get("/static/data.bin")
        .header("etag")
        .unwrap()
        .to_owned();
    let fresh = range("bytes=0-9", &[("If-Range", &etag)]);
    assert_eq!(fresh.status, 206);
    let stale = range("bytes=0-9", &[("If-Range", "\"stale\"")]);
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, data);
}

#[test]
fn nothing_outside_the_folder_and_no_folder_is_ever_served() {
    let host = site();
    let targets = [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/admin/static/..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/style.css%00",
        "/static/%00../secret.txt",
        "/static/../../secret.txt",
        "/static/escape.txt",
        "/admin/static/escape.txt",
        "/static/dir",
        "/static/dir/",
        "/static/",
        "/static",
        "/static/missing.css",
    ];
    for target in targets {
        let response = host.get(target);
        assert_eq!(response.status, 404, "{target}: {}", response.text());
        assert!(
            !response.text().contains(SECRET),
            "{target} leaked the file"
        );
    }
    // the host still serves normally afterwards
    assert_eq!(host.get("/static/style.css").status, 200);
}

#[test]
fn only_get_and_head_are_allowed() {
    let host = site();
    for method in ["POST", "PUT", "DELETE"] {
        let response = host.request(method, "/static/style.css", &[], b"x");
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
    }
}

#[test]
fn a_one_gib_file_streams_with_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let mut frontend = mount("frontend", "/", "frontend");
    frontend["static_folder"] = json!("static");
    let table = Table::new(vec![frontend]);
    std::fs::create_dir_all(table.dir.path().join("static")).unwrap();
    // sparse: no disk used, reads as zeros
    std::fs::File::create(table.dir.path().join("static/huge.bin"))
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    let host = Host::start(table);
    let pid = host.child.id();
    assert_eq!(host.get("/en/").status, 200);
    let before = common::rss_kib(pid);

    let mut stream = connect(host.addr, Duration::from_secs(60));
    write!(
        stream,
        "GET /static/huge.bin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host.addr
    )
    .unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    let mut received: u64 = 0;
    let mut peak = before;
    let mut head = Vec::new();
    loop {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        if head.len() < 4096 && received == 0 {
            head.extend_from_slice(&buffer[..read.min(4096)]);
        }
        received += read as u64;
        if received % (64 << 20) < read as u64 {
            peak = peak.max(common::rss_kib(pid));
        }
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    let header_len = head.find("\r\n\r\n").unwrap() as u64 + 4;
    assert_eq!(received - header_len, SIZE);
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 50,
        "RSS grew by {growth_mib} MiB while streaming 1 GiB"
    );
}
