//! Compression by the real host: static files and app pages in brotli or
//! gzip as the client accepts, decoded back to the originals (gzip by the
//! system's `gzip`, brotli by the brotli crate's decoder); precompressed
//! siblings; large files compressed as they are sent; never a range, a
//! small file, an image, a mount with `compress: false`, or a signed-in
//! user's page.

mod common;

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    time::{Duration, SystemTime},
};

use common::{
    Host, HttpResponse, Table,
    blog::{Client, PASSWORD, create_user, site_table},
    mount,
};
use serde_json::json;

/// A stylesheet of about 6 KB.
fn stylesheet() -> String {
    (0..120)
        .map(|i| format!(".rule-{i} {{ margin: {i}px; color: #{i:03}; }}\n"))
        .collect()
}

/// A script of about 700 KB: larger than the host keeps in memory.
fn large_script() -> String {
    (0..20_000)
        .map(|i| format!("function f{i}(x) {{ return x * {i} + {}; }}\n", i % 7))
        .collect()
}

/// Frontend at `/` serving `static/` compressed; admin at `/admin`
/// serving the same folder with `compress: false`.
fn site() -> (Host, std::path::PathBuf) {
    let mut frontend = mount("frontend", "/", "frontend");
    frontend["static_folder"] = json!("static");
    let mut admin = mount("admin", "/admin", "admin");
    admin["static_folder"] = json!("static");
    admin["compress"] = json!(false);
    let table = Table::new(vec![frontend, admin]);
    let folder = table.dir.path().join("static");
    std::fs::create_dir_all(&folder).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(folder.join(name), bytes).unwrap();
    write("style.css", stylesheet().as_bytes());
    write("tiny.css", b"body { color: red; }\n");
    write("logo.png", &vec![7u8; 6000]);
    write("big.js", large_script().as_bytes());
    // siblings whose content differs from the file's, to tell them apart
    write("pre.css", stylesheet().as_bytes());
    write("pre.css.br", &brotli(b"/* the brotli sibling */"));
    write("pre.css.gz", &gzip(b"/* the gzip sibling */"));
    write("big2.js", large_script().as_bytes());
    write("big2.js.gz", &gzip(b"/* the large file's gzip sibling */"));
    // a sibling left from an older version of the file
    write("stale.css", stylesheet().as_bytes());
    write("stale.css.gz", &gzip(b"/* an old version */"));
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(folder.join("stale.css.gz"))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    (Host::start(table), folder)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        encoder.write_all(bytes).unwrap();
    }
    out
}

/// `body` decoded as `Content-Encoding` says: gzip by the system's `gzip`
/// (another implementation than the host's), brotli by the brotli crate's
/// decoder (apart from its encoder).
fn decoded(response: &HttpResponse) -> Vec<u8> {
    match response.header("content-encoding") {
        None => response.body.clone(),
        Some("br") => {
            let mut out = Vec::new();
            brotli::Decompressor::new(response.body.as_slice(), 4096)
                .read_to_end(&mut out)
                .expect("a valid brotli stream");
            out
        }
        Some("gzip") => {
            let mut gunzip = Command::new("gzip")
                .arg("-dc")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("gzip is installed");
            let mut stdin = gunzip.stdin.take().unwrap();
            let body = response.body.clone();
            let writer = std::thread::spawn(move || stdin.write_all(&body).unwrap());
            let output = gunzip.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(output.status.success(), "gzip -d refused the body");
            output.stdout
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
}

/// Whether a `Vary` header of `response` names `Accept-Encoding`.
fn varies(response: &HttpResponse) -> bool {
    response
        .headers
        .iter()
        .any(|(name, value)| name == "vary" && value.eq_ignore_ascii_case("accept-encoding"))
}

fn get(host: &Host, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    host.request("GET", path, headers, b"")
}

#[test]
fn text_files_go_out_compressed_as_the_client_accepts() {
    let (host, _folder) = site();
    let original = stylesheet().into_bytes();
    let rows: [(Option<&str>, Option<&str>); 7] = [
        (Some("br"), Some("br")),
        (Some("gzip"), Some("gzip")),
        (Some("gzip, deflate, br, zstd"), Some("br")),
        (Some("br;q=0, gzip"), Some("gzip")),
        (Some("br;q=0.5, gzip;q=0.8"), Some("gzip")),
        (Some("identity"), None),
        (None, None),
    ];
    let mut etags = Vec::new();
    for (accept, expected) in rows {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let response = get(&host, "/static/style.css", &headers);
        assert_eq!(response.status, 200, "{accept:?}");
        assert_eq!(response.header("content-encoding"), expected, "{accept:?}");
        assert_eq!(
            response.header("vary"),
            Some("accept-encoding"),
            "{accept:?}"
        );
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8")
        );
        assert!(
            decoded(&response) == original,
            "{accept:?}: decodes to the file"
        );
        if expected.is_some() {
            assert!(response.body.len() < original.len() / 3, "{accept:?}");
            // ranges are offered on the file as it is only
            assert_eq!(response.header("accept-ranges"), None);
        } else {
            assert_eq!(response.header("accept-ranges"), Some("bytes"));
        }
        etags.push((expected, response.header("etag").unwrap().to_owned()));
    }
    // one tag per representation: the same encoding, the same tag
    for (encoding, etag) in &etags {
        for (other_encoding, other) in &etags {
            assert_eq!(encoding == other_encoding, etag == other, "{etag} {other}");
        }
    }
}

#[test]
fn conditional_requests_name_the_encoding() {
    let (host, _folder) = site();
    let brotli = get(&host, "/static/style.css", &[("Accept-Encoding", "br")]);
    let identity = get(&host, "/static/style.css", &[]);
    let tag = brotli.header("etag").unwrap();
    let plain_tag = identity.header("etag").unwrap();
    let not_modified = get(
        &host,
        "/static/style.css",
        &[("Accept-Encoding", "br"), ("If-None-Match", tag)],
    );
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some(tag));
    assert_eq!(not_modified.header("vary"), Some("accept-encoding"));
    // the client's copy is the other representation: it gets this one
    let other = get(
        &host,
        "/static/style.css",
        &[("Accept-Encoding", "br"), ("If-None-Match", plain_tag)],
    );
    assert_eq!(other.status, 200);
    assert_eq!(other.header("content-encoding"), Some("br"));
    let plain = get(&host, "/static/style.css", &[("If-None-Match", plain_tag)]);
    assert_eq!(plain.status, 304);
}

#[test]
fn ranges_small_files_images_and_uncompressed_mounts_go_out_as_they_are() {
    let (host, _folder) = site();
    let original = stylesheet().into_bytes();
    let accept = ("Accept-Encoding", "gzip, br");
    let range = get(
        &host,
        "/static/style.css",
        &[accept, ("Range", "bytes=0-99")],
    );
    assert_eq!(range.status, 206);
    assert_eq!(range.header("content-encoding"), None);
    assert_eq!(range.body, &original[..100]);
    for path in ["/static/tiny.css", "/static/logo.png"] {
        let response = get(&host, path, &[accept]);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("content-encoding"), None, "{path}");
        assert_eq!(response.header("vary"), None, "{path}");
    }
    let off = get(&host, "/admin/static/style.css", &[accept]);
    assert_eq!(off.status, 200);
    assert_eq!(off.header("content-encoding"), None);
    assert_eq!(off.header("vary"), None);
    assert_eq!(off.body, original);
}

#[test]
fn precompressed_siblings_are_served_when_not_older_than_the_file() {
    let (host, folder) = site();
    let read = |name: &str| std::fs::read(folder.join(name)).unwrap();
    let brotli = get(&host, "/static/pre.css", &[("Accept-Encoding", "br")]);
    assert_eq!(brotli.header("content-encoding"), Some("br"));
    assert_eq!(brotli.body, read("pre.css.br"));
    assert_eq!(decoded(&brotli), b"/* the brotli sibling */");
    let gzip = get(&host, "/static/pre.css", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.body, read("pre.css.gz"));
    // an hour older than its file: compressed from the file instead
    let stale = get(&host, "/static/stale.css", &[("Accept-Encoding", "gzip")]);
    assert_eq!(stale.header("content-encoding"), Some("gzip"));
    assert!(decoded(&stale) == stylesheet().as_bytes());
    // a large file's sibling, sent with its length
    let large = get(&host, "/static/big2.js", &[("Accept-Encoding", "gzip")]);
    assert_eq!(large.header("content-encoding"), Some("gzip"));
    assert_eq!(
        large.header("content-length"),
        Some(read("big2.js.gz").len().to_string().as_str())
    );
    assert_eq!(decoded(&large), b"/* the large file's gzip sibling */");
}

#[test]
fn large_files_are_compressed_as_they_are_sent() {
    let (host, _folder) = site();
    let original = large_script().into_bytes();
    for encoding in ["br", "gzip"] {
        let response = get(&host, "/static/big.js", &[("Accept-Encoding", encoding)]);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-encoding"), Some(encoding));
        assert_eq!(response.header("content-length"), None, "{encoding}");
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert!(response.body.len() < original.len() / 4, "{encoding}");
        assert!(
            decoded(&response) == original,
            "{encoding}: decodes to the file"
        );
    }
    let head = host.request("HEAD", "/static/big.js", &[("Accept-Encoding", "br")], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), Some("br"));
    assert!(head.body.is_empty());
}

#[test]
fn pages_are_compressed_unless_they_are_a_signed_in_users() {
    let table = site_table();
    create_user(&table, "ada");
    let host = Host::start(table);
    let accept = ("Accept-Encoding", "br, gzip");
    let plain = host.get("/en/");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert!(varies(&plain), "{:?}", plain.headers);
    assert!(plain.body.len() > 1024, "the page is worth compressing");
    // pages are offered in gzip only (brotli's state costs too much per page)
    let gzip = get(&host, "/en/", &[accept]);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert!(gzip.body.len() < plain.body.len() / 2);
    assert!(decoded(&gzip) == plain.body, "decodes to the page");
    let brotli_only = get(&host, "/en/", &[("Accept-Encoding", "br")]);
    assert_eq!(brotli_only.header("content-encoding"), None);
    assert!(brotli_only.body == plain.body);

    let mut client = Client::new(&host);
    assert_eq!(client.log_in("/admin", "ada", PASSWORD).status, 303);
    let private = client.send("GET", "/admin/posts/new", &[accept], b"");
    assert_eq!(private.status, 200);
    assert!(private.body.len() > 1024);
    assert_eq!(private.header("content-encoding"), None);
    assert_eq!(private.header("cache-control"), Some("no-store"));
}
