//! Misbehaving clients: malformed requests, oversized headers, slow and idle
//! connections, too many connections, floods of panics.

mod common;

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::Duration,
};

use common::{Host, Table, connect, mount};
use serde_json::json;

fn host_with(limits: serde_json::Value, env: &[(&str, &str)]) -> Host {
    let mut table = json!({"mounts": [mount("probe", "/", "probe")]});
    for (key, value) in limits.as_object().unwrap() {
        table[key] = value.clone();
    }
    let table = Table::from_value(table);
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "info"));
    let host = Host::start_with_env(&table, &env);
    // keep the folder alive as long as the host
    std::mem::forget(table);
    host
}

/// Sends raw bytes and reads whatever comes back until the server closes
/// (or 5 s pass).
fn exchange(host: &Host, bytes: &[u8]) -> String {
    let mut stream = connect(host.addr, Duration::from_secs(5));
    // the server may close before reading everything: ignore write errors
    let _ = stream.write_all(bytes);
    let (received, error) = common::read_until_close(&mut stream);
    if let Some(error) = error {
        panic!("no answer and no close: {error}");
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn malformed_requests_get_a_4xx_or_a_close_and_the_host_keeps_serving() {
    let host = host_with(json!({}), &[]);
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(70_000)
    );
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("bad request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary junk", b"\x00\x01\x02\x03\r\n\r\n".to_vec()),
        ("unknown version", b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n".to_vec()),
        (
            "invalid byte in a header",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nBad\x01Name: v\r\n\r\n".to_vec(),
        ),
        (
            "conflicting Content-Length",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                .to_vec(),
        ),
        (
            "non-numeric Content-Length",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n".to_vec(),
        ),
        (
            "bad chunk size",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            "Transfer-Encoding with Content-Length (smuggling)",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /count HTTP/1.1\r\nHost: localhost\r\n\r\n"
                .to_vec(),
        ),
        ("absurd URI", long_uri.into_bytes()),
        (
            "missing Host in HTTP/1.1",
            b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        ),
    ];
    for (name, bytes) in &corpus {
        let answer = exchange(&host, bytes);
        let status_line = answer.lines().next().unwrap_or("");
        // RFC 9112 section 6.1: with both Transfer-Encoding and
        // Content-Length, a server may process the message by its
        // Transfer-Encoding, and must then close the connection (hyper does);
        // `exchange` reading to the end proves the close.
        let framed_by_te = name.starts_with("Transfer-Encoding with")
            && status_line.starts_with("HTTP/1.1 200")
            && answer.matches("HTTP/1.1").count() == 1;
        assert!(
            answer.is_empty() || status_line.starts_with("HTTP/1.1 4") || framed_by_te,
            "{name}: {status_line}"
        );
        // a smuggled second request must not run
        assert!(!answer.contains("\r\n\r\n1"), "{name}: {answer}");
        assert_eq!(host.get("/").status, 200, "after {name}");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let host = host_with(json!({}), &[]);
    let answer = exchange(
        &host,
        b"GET /count HTTP/1.1\r\nHost: localhost\r\n\r\nGET /post/two HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let first = answer.find("\r\n\r\n1").expect("the first answer");
    let second = answer.find("post two").expect("the second answer");
    assert!(first < second, "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
}

/// A request with `count` headers in all (`Host` and `Connection: close`
/// among them).
fn with_headers(count: usize) -> String {
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for index in 2..count {
        request.push_str(&format!("X-Header-{index}: v\r\n"));
    }
    request.push_str("\r\n");
    request
}

#[test]
fn the_default_header_limit_is_100() {
    let host = host_with(json!({}), &[]);
    let answer = exchange(&host, with_headers(100).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = exchange(&host, with_headers(101).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[test]
fn too_many_or_too_large_headers_get_431() {
    let host = host_with(json!({"max_headers": 20, "max_header_bytes": 16384}), &[]);
    let answer = exchange(&host, with_headers(21).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let large = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let answer = exchange(&host, large.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(host.get("/").status, 200);
}

#[test]
fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let host = host_with(json!({"header_read_timeout_ms": 500}), &[]);
    // slowloris: half a request, then nothing
    let mut slow = connect(host.addr, Duration::from_secs(10));
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let mut buffer = [0u8; 1024];
    let read = slow.read(&mut buffer).expect("closed, not timed out");
    let answer = String::from_utf8_lossy(&buffer[..read]);
    assert!(read == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // keep-alive: one request answered, then the idle connection is closed
    let mut idle = connect(host.addr, Duration::from_secs(10));
    idle.write_all(b"GET /count HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    loop {
        let read = idle.read(&mut buffer).expect("closed, not timed out");
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    assert_eq!(host.get("/").status, 200);
}

#[test]
fn a_slowloris_dribbling_its_head_is_closed_before_it_completes() {
    let host = host_with(json!({"header_read_timeout_ms": 500}), &[]);
    let mut slow = connect(host.addr, Duration::from_millis(100));
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // bytes keep coming, one every 100 ms, but the head would take 6 s
    let header = "X-Slow: ".to_owned() + &"s".repeat(52) + "\r\n";
    let mut buffer = [0u8; 1024];
    let mut closed = false;
    for byte in header.bytes() {
        if slow.write_all(&[byte]).is_err() {
            closed = true;
            break;
        }
        match slow.read(&mut buffer) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(read) => {
                let answer = String::from_utf8_lossy(&buffer[..read]);
                assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a head dribbled over 6 s was still being read");
    assert_eq!(host.get("/").status, 200);
}

#[test]
fn slow_handlers_and_slow_downloads_outlast_the_header_timeout() {
    const SIZE: u64 = 32 << 20;
    let mut probe = mount("probe", "/", "probe");
    probe["static_folder"] = json!("static");
    let table = Table::from_value(json!({"mounts": [probe], "header_read_timeout_ms": 500}));
    std::fs::create_dir_all(table.dir.path().join("static")).unwrap();
    std::fs::File::create(table.dir.path().join("static/big.bin"))
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    let host = Host::start(table);

    // a handler busy for longer than the timeout still answers (the
    // first call makes the mount's handlers run on its own threads, so the
    // connection's task waits while the second runs)
    assert_eq!(host.get("/sleep/200").text(), "slept 200");
    assert_eq!(host.get("/sleep/1200").text(), "slept 1200");

    // a client that pauses longer than the timeout while the response
    // waits in full socket buffers still gets all of it
    let mut stream = connect(host.addr, Duration::from_secs(10));
    stream
        .write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = stream.read(&mut buffer).unwrap() as u64;
    let head = String::from_utf8_lossy(&buffer[..received as usize]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let header_len = head.find("\r\n\r\n").unwrap() as u64 + 4;
    std::thread::sleep(Duration::from_millis(1500));
    loop {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        received += read as u64;
    }
    assert_eq!(received - header_len, SIZE);
}

#[test]
fn idle_http2_connections_are_closed_however_often_they_ping() {
    let host = host_with(json!({"header_read_timeout_ms": 500}), &[]);
    let mut stream = connect(host.addr, Duration::from_millis(100));
    // the preface and an empty SETTINGS frame, then only PINGs
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    let mut acks = 0;
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an idle HTTP/2 connection stayed open"
        );
        if stream.write_all(b"\0\0\x08\x06\0\0\0\0\0pingpong").is_err() {
            break started.elapsed();
        }
        match stream.read(&mut buffer) {
            Ok(0) => break started.elapsed(),
            Ok(read) => {
                let ack = b"\0\0\x08\x06\x01\0\0\0\0pingpong";
                acks += buffer[..read]
                    .windows(ack.len())
                    .filter(|w| w == ack)
                    .count();
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break started.elapsed(),
        }
    };
    // its PINGs were answered while it was open, and did not keep it open
    assert!(acks > 0);
    assert!(
        closed_after >= Duration::from_millis(400),
        "{closed_after:?}"
    );
}

#[test]
fn a_slow_http2_request_outlasts_the_idle_timeout() {
    let host = host_with(json!({"header_read_timeout_ms": 300}), &[]);
    // curl speaks HTTP/2 without TLS when told the server does
    let output = std::process::Command::new("curl")
        .args(["--silent", "--http2-prior-knowledge", "--max-time", "10"])
        .arg(format!("http://{}/sleep/1200", host.addr))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "slept 1200");
}

#[test]
fn beyond_the_connection_cap_clients_wait_instead_of_failing() {
    let host = host_with(
        json!({"max_connections": 2, "header_read_timeout_ms": 20000}),
        &[],
    );
    let first = TcpStream::connect(host.addr).unwrap();
    let second = TcpStream::connect(host.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(host.addr).unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let early = third.read(&mut buffer);
    assert!(
        matches!(&early, Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the third connection was served while two were open: {early:?}"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let read = third.read(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    drop(second);
}

/// Sends `count` requests on one keep-alive connection, reading each answer.
fn hammer(host: &Host, path: &str, count: usize) {
    let mut stream = connect(host.addr, Duration::from_secs(10));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut pending = Vec::new();
    let mut buffer = [0u8; 8192];
    for _ in 0..count {
        stream.write_all(request.as_bytes()).unwrap();
        loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 500"), "{head}");
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap();
                if pending.len() >= end + 4 + length {
                    pending.drain(..end + 4 + length);
                    break;
                }
            }
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "the host closed the connection");
            pending.extend_from_slice(&buffer[..read]);
        }
    }
}

#[test]
fn ten_thousand_panics_leave_the_host_serving_with_stable_memory() {
    // without RUST_BACKTRACE the app captures no backtrace per panic
    let host = host_with(json!({}), &[("RUST_BACKTRACE", "0")]);
    let pid = host.child.id();
    hammer(&host, "/panic", 1_000);
    let warm = common::rss_kib(pid);
    hammer(&host, "/panic", 9_000);
    let after = common::rss_kib(pid);
    assert!(
        after < warm + 10 * 1024,
        "RSS grew from {warm} KiB to {after} KiB over 9000 panics"
    );
    assert_eq!(host.get("/count").status, 200);
    let metrics = host.get("/_host/metrics").text();
    assert!(
        metrics.contains("host_handler_panics_total{app=\"probe\"} 10000"),
        "{metrics}"
    );
}
