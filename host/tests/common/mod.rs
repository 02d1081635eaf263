//! Test support: builds the app libraries once per run, starts the real
//! `host` binary on an ephemeral port with a temporary mount table, and talks
//! raw HTTP/1.1 to it (so odd paths reach the server byte for byte).

#![allow(dead_code)]

pub mod blog;
pub mod nginx;
pub mod nginx_conf;
pub mod postgres;
pub mod s3;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

/// The real host binary.
pub fn host_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_host"))
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host is in the workspace")
        .to_owned()
}

/// `target/<profile>`, where cargo put the host binary and puts the apps.
fn profile_dir() -> PathBuf {
    host_binary()
        .parent()
        .expect("the binary is in a profile folder")
        .to_owned()
}

/// The cargo target folder (`target/`).
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("profile folder is in the target folder")
        .to_owned()
}

/// Builds every app library the tests load, once per test binary:
/// `cargo test` does not produce the apps' `.so` files
/// (`docs/architecture.md`, "Tests and the `.so` files").
pub fn build_apps() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = env!("CARGO");
        let target = profile_dir()
            .parent()
            .expect("profile folder is in the target folder")
            .to_owned();
        let run = |args: &[&str]| {
            let status = Command::new(cargo)
                .args(args)
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(workspace_root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo {args:?} failed");
        };
        run(&[
            "build",
            "-p",
            "frontend",
            "-p",
            "admin",
            "-p",
            "archive",
            "-p",
            "probe",
            "-p",
            "plain-cdylib",
        ]);
        run(&[
            "build",
            "--manifest-path",
            "testdata/abi-mismatch/Cargo.toml",
        ]);
        run(&[
            "build",
            "--manifest-path",
            "testdata/contract-1.0/Cargo.toml",
        ]);
    });
}

/// The probe app built with `panic = "abort"` (its own profile, so it is
/// compiled only by the test that needs it).
pub fn panic_abort_library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = profile_dir().parent().unwrap().to_owned();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--profile", "panic-abort-fixture", "-p", "probe"])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(workspace_root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the panic-abort fixture failed");
            target.join("panic-abort-fixture").join("libprobe.so")
        })
        .clone()
}

/// The built library of an app crate, e.g. `library("probe")`.
pub fn library(crate_name: &str) -> PathBuf {
    build_apps();
    let path = profile_dir().join(format!("lib{}.so", crate_name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A program built by the test fixtures, e.g. `binary("old-host")`.
pub fn binary(name: &str) -> PathBuf {
    build_apps();
    let path = profile_dir().join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A mount-table entry for an app crate's library.
pub fn mount(name: &str, prefix: &str, crate_name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "prefix": prefix,
        "library": library(crate_name),
    })
}

/// A temporary folder holding a mount table.
pub struct Table {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    /// What the site needs while the table lives (its PostgreSQL server).
    pub services: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl Table {
    /// Writes `{"mounts": [...]}` (plus `extra` top-level keys) to a new
    /// `plugins.json`.
    pub fn new(mounts: Vec<serde_json::Value>) -> Table {
        Table::from_value(serde_json::json!({ "mounts": mounts }))
    }

    pub fn from_value(value: serde_json::Value) -> Table {
        Table::from_text(&serde_json::to_string_pretty(&value).unwrap())
    }

    pub fn from_text(text: &str) -> Table {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugins.json");
        std::fs::write(&file, text).unwrap();
        Table {
            dir,
            file,
            services: Vec::new(),
        }
    }

    /// Runs `host <command> --config <table>` to completion.
    pub fn run(&self, command: &str) -> Output {
        self.run_args(&[command])
    }

    /// Runs `host <args...> --config <table>` to completion.
    pub fn run_args(&self, args: &[&str]) -> Output {
        Command::new(host_binary())
            .args(args)
            .arg("--config")
            .arg(&self.file)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    }
}

/// A running host; killed when dropped.
pub struct Host {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _table: Option<Table>,
}

impl Host {
    /// Starts `host serve` on the table, listening on an ephemeral port.
    pub fn start(table: Table) -> Host {
        let mut host = Host::start_on(&table);
        host._table = Some(table);
        host
    }

    /// Like [`Host::start`], borrowing the table.
    pub fn start_on(table: &Table) -> Host {
        Host::start_with_env(table, &[("RUST_LOG", "info")])
    }

    /// Like [`Host::start_on`] with these environment variables.
    pub fn start_with_env(table: &Table, env: &[(&str, &str)]) -> Host {
        let args = [
            "serve".as_ref(),
            "--config".as_ref(),
            table.file.as_os_str(),
        ];
        Host::spawn(table.dir.path(), &args, env)
    }

    /// `host <command...> --config <table>` on an ephemeral port.
    pub fn start_command(table: &Table, command: &[&str]) -> Host {
        let mut args: Vec<&std::ffi::OsStr> = command.iter().map(|arg| arg.as_ref()).collect();
        args.extend(["--config".as_ref(), table.file.as_os_str()]);
        Host::spawn(table.dir.path(), &args, &[("RUST_LOG", "info")])
    }

    /// `host <args...>` in `dir`, on an ephemeral port.
    pub fn start_args(dir: &Path, args: &[&std::ffi::OsStr]) -> Host {
        Host::spawn(dir, args, &[("RUST_LOG", "info")])
    }

    /// Like [`Host::start_on`], the host allowed onto one CPU only
    /// (`taskset`), as in a container limited to one CPU.
    /// Starts `host serve` for `table` listening on the Unix socket
    /// `socket` (its `addr` is unusable: see [`unix_request`]).
    pub fn start_on_socket(table: &Table, socket: &Path) -> Host {
        let args = [
            "serve".as_ref(),
            "--config".as_ref(),
            table.file.as_os_str(),
        ];
        let listen = format!("unix:{}", socket.display());
        Host::spawn_on(
            Command::new(host_binary()),
            table.dir.path(),
            &args,
            &[],
            &listen,
        )
    }

    pub fn start_on_one_cpu(table: &Table) -> Host {
        let args = [
            "serve".as_ref(),
            "--config".as_ref(),
            table.file.as_os_str(),
        ];
        // the first CPU this process may use, e.g. `0` of `0-1`
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let cpu: String = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let mut command = Command::new("taskset");
        command.args(["--cpu-list", &cpu]).arg(host_binary());
        Host::spawn_command(command, table.dir.path(), &args, &[("RUST_LOG", "info")])
    }

    /// Like [`Host::start_on`], started by `wrapper`: a program and its
    /// arguments that runs the command after them in its place (`prlimit
    /// --nofile=256:4096`).
    pub fn start_through(table: &Table, wrapper: &[&str]) -> Host {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(host_binary());
        let args = [
            "serve".as_ref(),
            "--config".as_ref(),
            table.file.as_os_str(),
        ];
        Host::spawn_command(command, table.dir.path(), &args, &[("RUST_LOG", "info")])
    }

    /// Like [`Host::start_with_env`], listening on `listen` (a port chosen
    /// before, that a restarted host takes again).
    pub fn start_listening(table: &Table, listen: SocketAddr, env: &[(&str, &str)]) -> Host {
        let args = [
            "serve".as_ref(),
            "--config".as_ref(),
            table.file.as_os_str(),
        ];
        Host::spawn_on(
            Command::new(host_binary()),
            table.dir.path(),
            &args,
            env,
            &listen.to_string(),
        )
    }

    /// A running server of another kind (nginx), to talk to as to a host;
    /// killed when dropped.
    pub fn adopt(child: Child, addr: SocketAddr) -> Host {
        Host {
            child,
            addr,
            log: Arc::new(Mutex::new(String::new())),
            _table: None,
        }
    }

    fn spawn(dir: &Path, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Host {
        Host::spawn_command(Command::new(host_binary()), dir, args, env)
    }

    /// Runs `command` (the host binary, or a program that runs it) with
    /// `args` in `dir`, on an ephemeral port.
    fn spawn_command(
        command: Command,
        dir: &Path,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Host {
        Host::spawn_on(command, dir, args, env, "127.0.0.1:0")
    }

    fn spawn_on(
        mut command: Command,
        dir: &Path,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
        listen: &str,
    ) -> Host {
        build_apps();
        let mut child = command
            .args(args)
            .args(["--listen", listen])
            .current_dir(dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (address_sender, address_receiver) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    // up to a space or, in a JSON line, the string's end
                    let addr = addr.split(|c: char| c == '"' || c.is_whitespace()).next();
                    let _ = address_sender.send(addr.unwrap_or_default().to_owned());
                } else if line.contains("listening on unix:") {
                    // no address to reach it by: see `unix_request`
                    let _ = address_sender.send("0.0.0.0:0".to_owned());
                }
            }
        });
        let addr = match address_receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the host did not start listening; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Host {
            child,
            addr,
            log,
            _table: None,
        }
    }

    /// Everything the host wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log file `<name>.log` of the table the host owns
    /// contains `needle` (up to 10 s: lines are written every 50 ms); the
    /// file's text.
    pub fn wait_for_log_file(&self, name: &str, needle: &str) -> String {
        let table = self._table.as_ref().expect("the host owns its table");
        let file = table.dir.path().join("logs").join(format!("{name}.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle` (up to 10 s); the log.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        send_raw(self.addr, &bytes, method == "HEAD")
    }

    /// Sends `GET path` from another thread (a new connection).
    pub fn get_in_background(&self, path: &str) -> thread::JoinHandle<HttpResponse> {
        let addr = self.addr;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        thread::spawn(move || send_raw(addr, request.as_bytes(), false))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (up to 30 s).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the host did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// Sends `GET path` over the Unix socket `socket` and reads the response.
pub fn unix_request(socket: &Path, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", socket.display()));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    stream.write_all(raw.as_bytes()).unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    parse_response(&received, false)
}

/// A new connection to `addr` whose reads give up after `read_timeout`.
pub fn connect(addr: SocketAddr, read_timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    stream
}

/// Sends raw bytes on a new connection and reads one response (the server
/// closes the connection after it, as asked).
/// Reads what the server sends until it closes (a reset counts as a
/// close); the bytes, and the error that ended the reading otherwise (a
/// read timeout, say).
pub fn read_until_close(stream: &mut TcpStream) -> (Vec<u8>, Option<std::io::Error>) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (received, None),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return (received, None);
            }
            Err(error) => return (received, Some(error)),
        }
    }
}

pub fn send_raw(addr: SocketAddr, bytes: &[u8], head: bool) -> HttpResponse {
    let mut stream = connect(addr, Duration::from_secs(30));
    stream.write_all(bytes).unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    parse_response(&received, head)
}

pub fn parse_response(received: &[u8], head: bool) -> HttpResponse {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(received) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!(
            "incomplete response ({other:?}): {:?}",
            String::from_utf8_lossy(received)
        ),
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|header| {
            (
                header.name.to_ascii_lowercase(),
                String::from_utf8_lossy(header.value).into_owned(),
            )
        })
        .collect();
    let mut body = received[header_len..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    if let Some(length) = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
    {
        if !head {
            assert_eq!(
                body.len(),
                length,
                "body length differs from Content-Length"
            );
        }
        body.truncate(length);
    }
    HttpResponse {
        status: response.code.unwrap(),
        headers,
        body,
    }
}

/// The body of a chunked message (`Transfer-Encoding: chunked`), whole.
fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = chunked
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .expect("a chunk size line");
        let size_text = std::str::from_utf8(&chunked[..line_end]).unwrap();
        let size_text = size_text.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size_text, 16).expect("a hexadecimal chunk size");
        chunked = &chunked[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunked[..size]);
        assert_eq!(&chunked[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        chunked = &chunked[size + 2..];
    }
}

/// Copies the folder `from` into `to`, folders inside too.
pub fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            // git keeps no modes but the executable bit; the host that
            // wrote a fixture's secret key made it 0600, and a key others
            // may read is refused
            if entry.file_name() == "secret.key" {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
}

/// Every file below `folder` with its bytes and modification time: equal
/// snapshots mean nothing was created, removed or written.
pub fn snapshot(
    folder: &Path,
) -> std::collections::BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(path.clone(), (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    files
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}
