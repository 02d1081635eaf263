//! An S3-compatible store of the test's own: moto's server (from PyPI,
//! which `.ci/install tests` puts in `target/tools/moto`), listening on
//! 127.0.0.1 on a free port, with one bucket, stopped when dropped.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{HttpResponse, send_raw, target_dir};

/// The bucket every store has.
pub const BUCKET: &str = "uploads";

/// A running store.
pub struct S3 {
    server: Child,
    pub addr: SocketAddr,
}

impl S3 {
    /// Starts the server and makes [`BUCKET`]; panics, saying why, when it
    /// cannot.
    pub fn start() -> S3 {
        let program = target_dir().join("tools/moto/bin/moto_server");
        assert!(
            program.is_file(),
            "{} is missing: run .ci/install tests (it installs moto's S3 server from PyPI)",
            program.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "moto's server did not start");
            thread::sleep(Duration::from_millis(100));
        }
        let s3 = S3 { server, addr };
        let made = s3.request("PUT", &format!("/{BUCKET}"));
        assert_eq!(made.status, 200, "{}", made.text());
        s3
    }

    /// The environment a host needs to reach the store (any credentials
    /// do: moto checks none).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://{}", self.addr)),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
    }

    /// A request to the store as its owner: moto checks no signature, but
    /// treats a request without one as anonymous, which may not read the
    /// host's private objects.
    pub fn request(&self, method: &str, path: &str) -> HttpResponse {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        send_raw(self.addr, request.as_bytes(), method == "HEAD")
    }

    /// The keys in [`BUCKET`], sorted.
    pub fn keys(&self) -> Vec<String> {
        let listing = self.request("GET", &format!("/{BUCKET}?list-type=2"));
        assert_eq!(listing.status, 200, "{}", listing.text());
        let text = listing.text();
        let mut keys: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
