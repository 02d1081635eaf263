//! The servers under test: started from a command, found by the address
//! they print, killed when dropped; and how long the host takes to start.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::stats::median;

/// A server process under test; stopped when dropped.
pub(super) struct Server {
    child: Child,
    pub(super) addr: SocketAddr,
    /// Serves with child processes (nginx's workers): its cost is the
    /// tree's, and it is stopped with SIGTERM, which its master passes on.
    pub(super) tree: bool,
    /// nginx's files, removed when it stops.
    _folder: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `command`, which must print `listening on http://ADDR` on stderr.
    pub(super) fn start(mut command: Command) -> Result<Server, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start {command:?}: {error}"))?;
        let stderr = child.stderr.take().expect("piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = sender.send(addr.trim().to_owned());
                    break;
                }
                line.clear();
            }
            // Keep draining so the server never blocks on a full pipe, in
            // large reads: the host's access lines arrive here at some 15
            // MB/s under load, and splitting them into lines took CPU from
            // the two cores being measured.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let addr = receiver
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("{command:?} did not start listening"))?;
        let addr = addr
            .parse()
            .map_err(|_| format!("bad listening address {addr:?}"))?;
        Ok(Server {
            child,
            addr,
            tree: false,
            _folder: None,
        })
    }

    /// nginx serving the folder `root` at `/static/`, tuned as for static
    /// files (`nginx_conf`): the second baseline, for the host's static
    /// files.
    pub(super) fn nginx_static(root: &Path) -> Result<Server, String> {
        let folder = tempfile::tempdir().map_err(|error| error.to_string())?;
        let (child, addr) = super::nginx_conf::start_static(folder.path(), root)?;
        Ok(Server {
            child,
            addr,
            tree: true,
            _folder: Some(folder),
        })
    }

    /// The process id, for what `/proc` says of it.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.tree {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A status code from one plain GET.
pub(super) fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    listener.local_addr().map_err(|error| error.to_string())
}

/// Median time from exec to the first 200 on `/`, over five starts.
pub(super) fn startup_ms(host: &Path, table: &Path) -> Result<f64, String> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let addr = free_port()?;
        let started = Instant::now();
        let mut child = Command::new(host)
            .args(["serve", "--listen", &addr.to_string(), "--config"])
            .arg(table)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| error.to_string())?;
        let deadline = started + Duration::from_secs(20);
        let outcome = loop {
            if status_of(addr, "/m0/hello") == Some(200) || status_of(addr, "/hello") == Some(200) {
                break Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
            if Instant::now() > deadline {
                break Err("the host did not answer 200 within 20 s".to_owned());
            }
            thread::sleep(Duration::from_micros(500));
        };
        let _ = child.kill();
        let _ = child.wait();
        times.push(outcome?);
    }
    Ok(median(&mut times))
}
