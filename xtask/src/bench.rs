//! `cargo xtask bench`: measures the host against a bare hyper baseline
//! built in the same run, and reports ratios.
//!
//! Load comes from `wrk` (installed from Debian's packages when missing),
//! keep-alive, on 127.0.0.1 only. Host and baseline alternate (A B A B ...)
//! so that drift of the machine hits both; the medians are reported.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// Settings from the command line.
pub struct Options {
    /// Seconds per wrk run.
    pub seconds: u32,
    /// A B rounds per scenario.
    pub rounds: u32,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            seconds: 5,
            rounds: 3,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> Result<u32, String> {
                args.next()
                    .and_then(|value| value.parse().ok())
                    .filter(|value| *value > 0)
                    .ok_or_else(|| format!("{name} needs a positive number"))
            };
            match arg.as_str() {
                "--seconds" => options.seconds = number("--seconds")?,
                "--rounds" => options.rounds = number("--rounds")?,
                "--quick" => {
                    options.seconds = 2;
                    options.rounds = 1;
                }
                other => {
                    return Err(format!(
                        "unknown option {other:?} (use --seconds N, --rounds N, --quick)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// Requests completed in the whole run.
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Responses that were not 2xx/3xx.
    pub non_success: u64,
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(output: &str) -> Result<Run, String> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_success = 0;
    let mut requests = None;
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rps = value.parse::<f64>().ok(),
            (Some(count), Some("requests")) => requests = count.parse::<u64>().ok(),
            (Some("50%"), Some(value)) => p50 = duration_us(value),
            (Some("99%"), Some(value)) => p99 = duration_us(value),
            _ => {}
        }
        if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_success = count.trim().parse().unwrap_or(0);
        }
    }
    match (requests, rps, p50, p99) {
        (Some(requests), Some(requests_per_second), Some(p50_us), Some(p99_us)) => Ok(Run {
            requests,
            requests_per_second,
            p50_us,
            p99_us,
            non_success,
        }),
        _ => Err(format!("could not read wrk's report:\n{output}")),
    }
}

/// `498.00us`, `1.20ms`, `2.00s` → microseconds.
fn duration_us(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * scale)
}

/// What a run cost the machine, per request answered. The load generator
/// shares the cores with the server, so a server that is slower per request
/// also changes how the load generator runs: it waits for responses more
/// often, and each response then wakes it and preempts the server. These
/// figures show that, where requests per second only show the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    /// The server's CPU time (user + system), µs.
    pub server_cpu_us: f64,
    /// The part of it spent in user space (the server's own code, where
    /// the rest is the kernel's), µs.
    pub server_user_us: f64,
    /// Times a server thread was preempted (involuntary context switches).
    pub server_preempted: f64,
    /// The load generator's CPU time (user + system), µs.
    pub load_cpu_us: f64,
    /// Times a load generator thread went to sleep for want of a response
    /// (voluntary context switches).
    pub load_sleeps: f64,
}

/// Running totals that [`Cost`] is the difference of.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    server_cpu_us: f64,
    server_user_us: f64,
    server_preempted: u64,
    load_cpu_us: f64,
    load_sleeps: u64,
}

impl Totals {
    /// The totals now, for `server` and for the waited-for children (wrk).
    fn now(server: &Server) -> Totals {
        let (load_cpu_us, load_sleeps) = children_usage();
        let server_cpu = server.cpu_us();
        Totals {
            server_cpu_us: server_cpu.user + server_cpu.system,
            server_user_us: server_cpu.user,
            server_preempted: server.preemptions(),
            load_cpu_us,
            load_sleeps,
        }
    }

    /// What happened between `self` and `later`, per request of `requests`.
    fn per_request(self, later: Totals, requests: u64) -> Cost {
        let n = requests.max(1) as f64;
        Cost {
            server_cpu_us: (later.server_cpu_us - self.server_cpu_us) / n,
            server_user_us: (later.server_user_us - self.server_user_us) / n,
            server_preempted: later.server_preempted.saturating_sub(self.server_preempted) as f64
                / n,
            load_cpu_us: (later.load_cpu_us - self.load_cpu_us) / n,
            load_sleeps: later.load_sleeps.saturating_sub(self.load_sleeps) as f64 / n,
        }
    }
}

/// CPU time and voluntary context switches of the children waited for so
/// far (the wrk runs: servers are waited for only when they are dropped).
fn children_usage() -> (f64, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the pointer it is given,
    // which points to one that is properly sized and aligned.
    #[allow(unsafe_code)]
    let result = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if result != 0 {
        return (0.0, 0);
    }
    // SAFETY: the call succeeded, so the struct is written (and it was
    // zeroed before: every field is an integer, for which zero is valid).
    #[allow(unsafe_code)]
    let usage = unsafe { usage.assume_init() };
    let micros = |time: libc::timeval| time.tv_sec as f64 * 1e6 + time.tv_usec as f64;
    (
        micros(usage.ru_utime) + micros(usage.ru_stime),
        u64::try_from(usage.ru_nvcsw).unwrap_or(0),
    )
}

/// CPU time of a process, in user space and in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct CpuTime<T> {
    user: T,
    system: T,
}

/// User and system clock ticks of a process, from its `/proc/PID/stat`.
fn cpu_ticks(stat: &str) -> Option<CpuTime<u64>> {
    // the command name, in parentheses, may hold spaces: count from after it
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields 14 and 15 of stat(5); the first after ')' is field 3
    Some(CpuTime {
        user: fields.get(11)?.parse().ok()?,
        system: fields.get(12)?.parse().ok()?,
    })
}

/// The number after `name` (e.g. `VmRSS:`) in a `/proc/.../status` file.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// A server process under test; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `command`, which must print `listening on http://ADDR` on stderr.
    fn start(mut command: Command) -> Result<Server, String> {
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
        Ok(Server { child, addr })
    }

    /// CPU time so far, µs, from /proc.
    fn cpu_us(&self) -> CpuTime<f64> {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let ticks = cpu_ticks(&stat).unwrap_or_default();
        let micros = |ticks: u64| ticks as f64 * 1e6 / ticks_per_second();
        CpuTime {
            user: micros(ticks.user),
            system: micros(ticks.system),
        }
    }

    /// Involuntary context switches of the server's threads so far, from
    /// /proc (threads that ended are not counted; the servers' threads live
    /// as long as they do).
    fn preemptions(&self) -> u64 {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|task| fs::read_to_string(task.path().join("status")).ok())
            .filter_map(|status| status_field(&status, "nonvoluntary_ctxt_switches:"))
            .sum()
    }

    /// Peak and current resident memory in KiB, from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name| status_field(&status, name).unwrap_or(0);
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wrk(addr: SocketAddr, path: &str, connections: u32, seconds: u32) -> Result<Run, String> {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "5s",
        ])
        .arg(format!("http://{addr}{path}"))
        .output()
        .map_err(|error| format!("cannot run wrk: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse_wrk(&String::from_utf8_lossy(&output.stdout))
}

/// Installs `package` from Debian's packages unless `program` runs.
fn ensure_installed(program: &str, package: &str) -> Result<(), String> {
    if Command::new(program).arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("bench: installing {package} from Debian's packages");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    };
    if apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", package]) {
        Ok(())
    } else {
        Err(format!(
            "{program} is missing and could not be installed (apt-get install {package})"
        ))
    }
}

/// User-space instructions per request for `path`, counted by callgrind
/// (`server` runs under valgrind): unlike requests per second, the count
/// does not move with the machine's other load, so it shows what a change
/// to the request path costs. Counted over 3 s of wrk with 8 connections,
/// after 2 s of warm-up.
fn instructions_per_request(server: &Command, path: &str, dir: &Path) -> Result<f64, String> {
    let out_file = dir.join("callgrind.out");
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(server.get_program())
        .args(server.get_args());
    for (name, value) in server.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let _ = fs::remove_file(dir.join("callgrind.out.1"));
    let running = Server::start(command)?;
    let pid = running.child.id().to_string();
    wrk(running.addr, path, 8, 2)?;
    control_callgrind("-z", &pid)?;
    let run = wrk(running.addr, path, 8, 3)?;
    control_callgrind("-d", &pid)?;
    let dump = dir.join("callgrind.out.1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let instructions = loop {
        let text = fs::read_to_string(&dump).unwrap_or_default();
        if let Some(total) = callgrind_total(&text) {
            break total;
        }
        if Instant::now() > deadline {
            return Err(format!("callgrind wrote no totals to {}", dump.display()));
        }
        thread::sleep(Duration::from_millis(200));
    };
    drop(running);
    if run.requests == 0 {
        return Err(format!("no request to {path} was answered under callgrind"));
    }
    Ok(instructions as f64 / run.requests as f64)
}

fn control_callgrind(command: &str, pid: &str) -> Result<(), String> {
    let status = Command::new("callgrind_control")
        .args([command, pid])
        .stdout(Stdio::null())
        .status()
        .map_err(|error| format!("cannot run callgrind_control: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("callgrind_control {command} {pid} failed"))
    }
}

/// The instruction count of a complete callgrind dump: its `totals:` line,
/// the last one written.
fn callgrind_total(dump: &str) -> Option<u64> {
    if !dump.ends_with('\n') {
        return None;
    }
    dump.lines()
        .rev()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|total| total.trim().parse().ok())
}

/// A status code from one plain GET.
fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
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
fn startup_ms(host: &Path, table: &Path) -> Result<f64, String> {
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
            if status_of(addr, "/m0/") == Some(200) || status_of(addr, "/") == Some(200) {
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

/// A side's median run and what it cost.
#[derive(Debug, Clone, Copy)]
struct Measured {
    run: Run,
    cost: Cost,
}

/// Two sides measured in alternating rounds.
struct Compared {
    a: Measured,
    b: Measured,
    /// Ratios a / b, each the median of the rounds' own ratios: the two
    /// runs of a round follow each other, so a machine that speeds up or
    /// slows down between rounds moves both.
    ratios: Ratios,
    /// Each round's ratio of requests per second, in order.
    rounds: Vec<f64>,
}

/// Each round's own ratio a / b of `figure`.
fn round_ratios(a: &[(Run, Cost)], b: &[(Run, Cost)], figure: fn(&(Run, Cost)) -> f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(a, b)| figure(a) / figure(b))
        .collect()
}

/// Paired ratios a / b.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ratios {
    requests_per_second: f64,
    p99: f64,
    server_cpu: f64,
}

impl Ratios {
    /// The median over rounds of each figure's ratio `a / b` within the
    /// round.
    fn paired(a: &[(Run, Cost)], b: &[(Run, Cost)]) -> Ratios {
        let ratio = |figure: fn(&(Run, Cost)) -> f64| median(&mut round_ratios(a, b, figure));
        Ratios {
            requests_per_second: ratio(|(run, _)| run.requests_per_second),
            p99: ratio(|(run, _)| run.p99_us),
            server_cpu: ratio(|(_, cost)| cost.server_cpu_us),
        }
    }
}

struct Row {
    name: String,
    /// a: the host, b: the baseline.
    compared: Compared,
}

/// One wrk run against `server`, and what it cost per request.
fn measured_run(
    server: &Server,
    path: &str,
    connections: u32,
    seconds: u32,
) -> Result<(Run, Cost), String> {
    let before = Totals::now(server);
    let run = wrk(server.addr, path, connections, seconds)?;
    let after = Totals::now(server);
    Ok((run, before.per_request(after, run.requests)))
}

/// Runs `rounds` alternating A B pairs and keeps the medians and the paired
/// ratios.
fn compare(
    options: &Options,
    a: (&Server, &str),
    b: (&Server, &str),
    connections: u32,
) -> Result<Compared, String> {
    let mut runs_a = Vec::new();
    let mut runs_b = Vec::new();
    for _ in 0..options.rounds {
        runs_a.push(measured_run(a.0, a.1, connections, options.seconds)?);
        runs_b.push(measured_run(b.0, b.1, connections, options.seconds)?);
    }
    Ok(Compared {
        a: median_measured(&runs_a),
        b: median_measured(&runs_b),
        ratios: Ratios::paired(&runs_a, &runs_b),
        rounds: round_ratios(&runs_a, &runs_b, |(run, _)| run.requests_per_second),
    })
}

/// The median of each figure over `runs` (requests and errors: the sums).
fn median_measured(runs: &[(Run, Cost)]) -> Measured {
    let pick =
        |field: fn(&(Run, Cost)) -> f64| median(&mut runs.iter().map(field).collect::<Vec<_>>());
    Measured {
        run: Run {
            requests: runs.iter().map(|(run, _)| run.requests).sum(),
            requests_per_second: pick(|(run, _)| run.requests_per_second),
            p50_us: pick(|(run, _)| run.p50_us),
            p99_us: pick(|(run, _)| run.p99_us),
            non_success: runs.iter().map(|(run, _)| run.non_success).sum(),
        },
        cost: Cost {
            server_cpu_us: pick(|(_, cost)| cost.server_cpu_us),
            server_user_us: pick(|(_, cost)| cost.server_user_us),
            server_preempted: pick(|(_, cost)| cost.server_preempted),
            load_cpu_us: pick(|(_, cost)| cost.load_cpu_us),
            load_sleeps: pick(|(_, cost)| cost.load_sleeps),
        },
    }
}

/// Writes the site the benchmark serves: two mounts like the default table
/// (with a ~200 KB file in the static folder), and the same `.so` mounted 100
/// times.
fn write_tables(root: &Path, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let io = |error: std::io::Error| error.to_string();
    let static_dir = dir.join("static");
    fs::create_dir_all(&static_dir).map_err(io)?;
    fs::copy(
        root.join("shared/static/style.css"),
        static_dir.join("style.css"),
    )
    .map_err(io)?;
    let big: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
    fs::write(static_dir.join("big.bin"), big).map_err(io)?;
    let apps = root.join("apps");
    let frontend = apps.join("libfrontend.so");
    let admin = apps.join("libadmin.so");
    let two = table_json(
        &[
            ("frontend", "/".to_owned(), &frontend),
            ("admin", "/admin".to_owned(), &admin),
        ],
        &static_dir,
        dir,
    );
    let hundred: Vec<(String, String)> = (0..100)
        .map(|i| (format!("m{i}"), format!("/m{i}")))
        .collect();
    let hundred = table_json(
        &hundred
            .iter()
            .map(|(name, prefix)| (name.as_str(), prefix.clone(), &frontend))
            .collect::<Vec<_>>(),
        &static_dir,
        dir,
    );
    let two_file = dir.join("plugins-2.json");
    let hundred_file = dir.join("plugins-100.json");
    fs::write(&two_file, two).map_err(io)?;
    fs::write(&hundred_file, hundred).map_err(io)?;
    Ok((two_file, hundred_file))
}

/// Posts the benchmark imports before it starts the host.
const POSTS: usize = 12;

/// The markdown of the benchmark's post `number`: about 3 KB in six
/// sections, each with a paragraph, a list and a code block.
fn post_markdown(number: usize) -> String {
    let paragraph = "This is a paragraph with *emphasis*, **strong text**, a \
                     [link](https://example.com/page) and `inline code`. "
        .repeat(4);
    let mut text = format!("# Post {number}\n\n");
    for section in 1..=6 {
        let _ = write!(
            text,
            "## Section {section}\n\n{paragraph}\n\n- item one\n- item two with \
             [a link](https://example.org)\n- item three\n\n\
             ```rust\nfn main() {{ println!(\"hello {section}\"); }}\n```\n\n"
        );
    }
    text
}

/// Starts the site's database afresh with [`POSTS`] posts, imported the
/// way a user would (`host cmd admin import-post`).
fn seed_posts(host_binary: &Path, table: &Path, dir: &Path) -> Result<(), String> {
    let io = |error: std::io::Error| error.to_string();
    match fs::remove_dir_all(dir.join("data")) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io(error)),
        _ => {}
    }
    let posts = dir.join("posts");
    fs::create_dir_all(&posts).map_err(io)?;
    let mut files = Vec::new();
    for number in 1..=POSTS {
        let file = posts.join(format!("post-{number}.md"));
        fs::write(&file, post_markdown(number)).map_err(io)?;
        files.push(file);
    }
    let output = Command::new(host_binary)
        .args(["cmd", "--config"])
        .arg(table)
        .args(["admin", "import-post"])
        .args(&files)
        .output()
        .map_err(|error| format!("{}: {error}", host_binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "importing the benchmark's posts failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// A mount table as JSON text (xtask has no JSON dependency; the values are
/// plain names and paths).
fn table_json(mounts: &[(&str, String, &PathBuf)], static_dir: &Path, dir: &Path) -> String {
    let entries: Vec<String> = mounts
        .iter()
        .map(|(name, prefix, library)| {
            format!(
                "    {{\"name\": \"{name}\", \"prefix\": \"{prefix}\", \"library\": \"{}\", \"static_folder\": \"{}\", \"databases\": [\"blog\"]}}",
                library.display(),
                static_dir.display()
            )
        })
        .collect();
    // every mount on the blog's database, as in the shipped table
    format!(
        "{{\n  \"data_dir\": \"{}\",\n  \"log_dir\": \"{}\",\n  \"databases\": {{\"blog\": {{\"url\": \"sqlite:app.db\"}}}},\n  \"mounts\": [\n{}\n  ]\n}}\n",
        dir.join("data").display(),
        dir.join("logs").display(),
        entries.join(",\n")
    )
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The figures the targets are about; `None` where the scenario was not
/// measured.
struct Figures {
    /// `/hello` at 64 connections, host / baseline requests per second.
    hello: Option<f64>,
    /// Its p99 latency, host / baseline.
    hello_p99: Option<f64>,
    /// The small static file against the baseline's hello, requests per
    /// second.
    small_static: Option<f64>,
    /// 100 mounts / 2 mounts, requests per second.
    mounts: Option<f64>,
    startup_two_ms: Option<f64>,
    startup_hundred_ms: Option<f64>,
    /// The host's resident memory after all the load.
    rss_mib: Option<f64>,
}

/// One target, and whether this run met it.
#[derive(Debug, PartialEq)]
struct Target {
    what: &'static str,
    goal: &'static str,
    measured: String,
    met: bool,
}

/// The targets of issue 3, judged on `figures`.
fn targets(figures: &Figures) -> Vec<Target> {
    // ratios with three decimals, so that one just under its goal does
    // not read as the goal
    let judge = |what, goal, figure: Option<f64>, unit: &str, met: fn(f64) -> bool| Target {
        what,
        goal,
        measured: figure.map_or_else(
            || "not measured".to_owned(),
            |value| match unit {
                "" => format!("{value:.3}"),
                unit => format!("{value:.1}{unit}"),
            },
        ),
        met: figure.is_some_and(met),
    };
    vec![
        judge(
            "hello through the ABI, req/s against the baseline",
            "≥ 0.90",
            figures.hello,
            "",
            |ratio| ratio >= 0.90,
        ),
        judge(
            "hello p99 latency against the baseline's",
            "≤ 1.5",
            figures.hello_p99,
            "",
            |ratio| ratio <= 1.5,
        ),
        judge(
            "small static file, req/s against the baseline's hello",
            "≥ 0.55",
            figures.small_static,
            "",
            |ratio| ratio >= 0.55,
        ),
        judge(
            "100 mounts against 2, req/s",
            "≥ 0.97",
            figures.mounts,
            "",
            |ratio| ratio >= 0.97,
        ),
        judge(
            "start-up to the first 200, 2 mounts",
            "< 100 ms",
            figures.startup_two_ms,
            " ms",
            |ms| ms < 100.0,
        ),
        judge(
            "start-up to the first 200, 100 mounts",
            "< 1000 ms",
            figures.startup_hundred_ms,
            " ms",
            |ms| ms < 1000.0,
        ),
        judge(
            "host RSS after the load",
            "< 40 MiB",
            figures.rss_mib,
            " MiB",
            |mib| mib < 40.0,
        ),
    ]
}

/// The whole benchmark; returns the report.
pub fn run(root: &Path, release: &Path, options: &Options) -> Result<String, String> {
    ensure_installed("wrk", "wrk")?;
    ensure_installed("valgrind", "valgrind")?;
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir).map_err(|error| error.to_string())?;
    // The previous run's log files: every request writes an access line, some
    // GB of them per run, which filled the disk after a few runs.
    let logs = out_dir.join("logs");
    match fs::remove_dir_all(&logs) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot remove {}: {error}", logs.display()));
        }
        _ => {}
    }
    let (two_mounts, hundred_mounts) = write_tables(root, &out_dir)?;
    let host_binary = release.join("host");
    seed_posts(&host_binary, &two_mounts, &out_dir)?;
    let host_command = |table: &Path| {
        let mut command = Command::new(&host_binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(table)
            // The default log level: access lines are part of the cost.
            .env_remove("RUST_LOG");
        command
    };
    let baseline_command = || {
        let mut command = Command::new(release.join("baseline"));
        command.arg("127.0.0.1:0");
        command
    };
    let host = Server::start(host_command(&two_mounts))?;
    let baseline = Server::start(baseline_command())?;

    let scenarios = [
        ("`/hello` (hello through the ABI)", "/hello"),
        ("`/admin/hello`", "/admin/hello"),
        ("`/` (blog home page: ten posts from the database)", "/"),
        (
            "`/post/post-12` (a post: 3 KB of markdown)",
            "/post/post-12",
        ),
        (
            "`/static/style.css` (small static file)",
            "/static/style.css",
        ),
        ("`/static/big.bin` (200 KB static file)", "/static/big.bin"),
        ("404 (`/no/such/page`)", "/no/such/page"),
    ];
    // Warm both up first, unmeasured: the first scenario should not pay for
    // log buffers and allocator arenas growing to their working size.
    for server in [&host, &baseline] {
        wrk(server.addr, "/hello", 64, 2)?;
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for connections in [64, 1] {
        for (name, path) in scenarios {
            let expected = if path.starts_with("/no/") { 404 } else { 200 };
            match status_of(host.addr, path) {
                Some(status) if status == expected => {}
                other => {
                    if connections == 64 {
                        skipped.push(format!(
                            "{name}: the host answers {other:?}, not {expected}, so it is not measured"
                        ));
                    }
                    continue;
                }
            }
            eprintln!("bench: {name}, {connections} connection(s)");
            let compared = compare(
                options,
                (&host, path),
                // the same hello body, byte for byte, as `/hello`
                (&baseline, "/hello"),
                connections,
            )?;
            rows.push((
                connections,
                Row {
                    name: name.to_owned(),
                    compared,
                },
            ));
        }
    }
    let (peak_kib, rss_kib) = host.memory_kib();

    eprintln!("bench: 100 mounts against 2 mounts");
    let hundred = Server::start(host_command(&hundred_mounts))?;
    // warmed up like the others before it is measured
    wrk(hundred.addr, "/m50/hello", 64, 2)?;
    let mounts = compare(
        options,
        (&hundred, "/m50/hello"),
        (&host, "/admin/hello"),
        64,
    )?;
    drop(hundred);
    drop(host);
    drop(baseline);

    eprintln!("bench: start-up times");
    let startup_two = startup_ms(&host_binary, &two_mounts)?;
    let startup_hundred = startup_ms(&host_binary, &hundred_mounts)?;

    eprintln!("bench: instructions per request, under callgrind");
    let host_instructions =
        instructions_per_request(&host_command(&two_mounts), "/hello", &out_dir)?;
    let baseline_instructions = instructions_per_request(&baseline_command(), "/hello", &out_dir)?;
    // the same path depth under both tables: only the number of mounts differs
    let hundred_instructions =
        instructions_per_request(&host_command(&hundred_mounts), "/m50/hello", &out_dir)?;
    let two_instructions =
        instructions_per_request(&host_command(&two_mounts), "/admin/hello", &out_dir)?;

    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Benchmark: host against a bare hyper baseline\n\n\
         {} rounds of {} s per side, alternating host and baseline; medians, and for \
         ratios the median of each round's own ratio. \
         Load: wrk, keep-alive, on 127.0.0.1; {} cores.\n",
        options.rounds,
        options.seconds,
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        report,
        "| scenario | conns | host req/s | baseline req/s | ratio | host p50 | host p99 | baseline p50 | baseline p99 | p99 ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (connections, row) in &rows {
        let Compared {
            a: host,
            b: baseline,
            ratios,
            ..
        } = &row.compared;
        let _ = writeln!(
            report,
            "| {} | {connections} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {:.2} |",
            row.name,
            host.run.requests_per_second,
            baseline.run.requests_per_second,
            ratios.requests_per_second,
            format_us(host.run.p50_us),
            format_us(host.run.p99_us),
            format_us(baseline.run.p50_us),
            format_us(baseline.run.p99_us),
            ratios.p99,
        );
    }
    let _ = writeln!(
        report,
        "\nWhat each request cost the machine (medians; the servers' CPU time, with its \
         user-space part in parentheses, and preemptions from /proc, wrk's CPU time and \
         sleeps from getrusage). wrk shares the \
         two cores: where a server takes longer per request, wrk more often runs out of \
         responses and sleeps, and each response then wakes it and preempts the server.\n\n\
         | scenario | conns | host CPU/req (user) | baseline CPU/req (user) | CPU ratio | wrk CPU/req, host / baseline | wrk sleeps/req, host / baseline | server preempted/req, host / baseline |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (connections, row) in &rows {
        let (host, baseline) = (row.compared.a.cost, row.compared.b.cost);
        let _ = writeln!(
            report,
            "| {} | {connections} | {:.2} µs ({:.2}) | {:.2} µs ({:.2}) | {:.2} | {:.2} / {:.2} µs | {:.3} / {:.3} | {:.3} / {:.3} |",
            row.name,
            host.server_cpu_us,
            host.server_user_us,
            baseline.server_cpu_us,
            baseline.server_user_us,
            row.compared.ratios.server_cpu,
            host.load_cpu_us,
            baseline.load_cpu_us,
            host.load_sleeps,
            baseline.load_sleeps,
            host.server_preempted,
            baseline.server_preempted,
        );
    }
    for line in &skipped {
        let _ = writeln!(report, "\nNot measured: {line}");
    }
    let _ = writeln!(
        report,
        "\n| measure | value |\n|---|---:|\n\
         | 100 mounts `/m50/hello` req/s | {:.0} |\n\
         | 2 mounts `/admin/hello` req/s | {:.0} |\n\
         | ratio 100 mounts / 2 mounts | {:.3} |\n\
         | start-up to first 200, 2 mounts | {startup_two:.1} ms |\n\
         | start-up to first 200, 100 mounts | {startup_hundred:.1} ms |\n\
         | host peak RSS (after all load) | {:.1} MiB |\n\
         | host RSS after the load | {:.1} MiB |\n\
         | user-space instructions per `/hello` request, host (callgrind) | {host_instructions:.0} |\n\
         | user-space instructions per `/hello` request, baseline (callgrind) | {baseline_instructions:.0} |\n\
         | instructions ratio host/baseline | {:.2} |\n\
         | user-space instructions per `/m50/hello` request, 100 mounts (callgrind) | {hundred_instructions:.0} |\n\
         | user-space instructions per `/admin/hello` request, 2 mounts (callgrind) | {two_instructions:.0} |\n\
         | instructions ratio 100 mounts / 2 mounts | {:.3} |",
        mounts.a.run.requests_per_second,
        mounts.b.run.requests_per_second,
        mounts.ratios.requests_per_second,
        peak_kib as f64 / 1024.0,
        rss_kib as f64 / 1024.0,
        host_instructions / baseline_instructions,
        hundred_instructions / two_instructions,
    );
    let at_64 = |path: &str| {
        rows.iter()
            .find(|(connections, row)| *connections == 64 && row.name.starts_with(path))
            .map(|(_, row)| &row.compared)
    };
    let hello = at_64("`/hello` ").ok_or("the hello scenario was not measured")?;
    let figures = Figures {
        hello: Some(hello.ratios.requests_per_second),
        hello_p99: Some(hello.ratios.p99),
        small_static: at_64("`/static/style.css` ").map(|row| row.ratios.requests_per_second),
        mounts: Some(mounts.ratios.requests_per_second),
        startup_two_ms: Some(startup_two),
        startup_hundred_ms: Some(startup_hundred),
        rss_mib: Some(rss_kib as f64 / 1024.0),
    };
    let _ = writeln!(
        report,
        "\n## Targets\n\n\
         The `/hello` ratio of each round, in order: {}.\n\n\
         | target | goal | this run | |\n|---|---|---:|---|",
        hello
            .rounds
            .iter()
            .map(|ratio| format!("{ratio:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for target in targets(&figures) {
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} |",
            target.what,
            target.goal,
            target.measured,
            if target.met { "met" } else { "missed" }
        );
    }
    let _ = writeln!(
        report,
        "\nhello ratio host/baseline: {:.2}",
        hello.ratios.requests_per_second
    );
    fs::write(out_dir.join("report.md"), &report).map_err(|error| error.to_string())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 5s test @ http://127.0.0.1:5000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  300.00us   9.00ms   90.00%
    Req/Sec    31.00k     2.00k   35.00k    70.00%
  Latency Distribution
     50%  498.00us
     75%    1.10ms
     90%    1.30ms
     99%    2.50ms
  300000 requests in 5.00s, 40.00MB read
  Non-2xx or 3xx responses: 12
Requests/sec:  60000.50
Transfer/sec:      8.00MB
";

    #[test]
    fn wrk_reports_are_read() {
        let run = parse_wrk(WRK).unwrap();
        assert_eq!(run.requests, 300_000);
        assert_eq!(run.requests_per_second, 60000.5);
        assert_eq!(run.p50_us, 498.0);
        assert_eq!(run.p99_us, 2500.0);
        assert_eq!(run.non_success, 12);
        assert!(parse_wrk("garbage").is_err());
    }

    #[test]
    fn callgrind_totals_are_read() {
        let dump =
            "version: 1\nevents: Ir\nsummary: 199068285\n\nfn=(1) main\n0 5\n\ntotals: 199068290\n";
        assert_eq!(callgrind_total(dump), Some(199_068_290));
        // still being written
        assert_eq!(callgrind_total(&dump[..dump.len() - 3]), None);
        assert_eq!(callgrind_total("events: Ir\nsummary: 5\n"), None);
    }

    #[test]
    fn the_benchmark_posts_are_titled_and_about_3_kb() {
        let post = post_markdown(7);
        assert!(post.starts_with("# Post 7\n\n## Section 1\n"), "{post}");
        assert_eq!(post.matches("## Section").count(), 6);
        assert!((2_500..4_000).contains(&post.len()), "{} bytes", post.len());
    }

    #[test]
    fn cpu_ticks_are_read_past_a_command_name_with_spaces() {
        let stat = "4242 (tokio rt) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1234 567 0 0 20 0 4 0 100 1000000 300 18446744073709551615";
        assert_eq!(
            cpu_ticks(stat),
            Some(CpuTime {
                user: 1234,
                system: 567
            })
        );
        assert_eq!(cpu_ticks("4242 (host) S 1 2"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn status_fields_are_read() {
        let status = "Name:\ttokio-rt-worker\nVmRSS:\t   31904 kB\n\
                      voluntary_ctxt_switches:\t1417\nnonvoluntary_ctxt_switches:\t11392\n";
        assert_eq!(
            status_field(status, "nonvoluntary_ctxt_switches:"),
            Some(11392)
        );
        assert_eq!(status_field(status, "voluntary_ctxt_switches:"), Some(1417));
        assert_eq!(status_field(status, "VmRSS:"), Some(31904));
        assert_eq!(status_field("Name:\thost\n", "VmRSS:"), None);
    }

    #[test]
    fn a_waited_for_child_is_counted_and_our_own_stat_is_read() {
        let (cpu_before, _) = children_usage();
        let status = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let (cpu_after, _) = children_usage();
        assert!(cpu_after > cpu_before, "{cpu_before} -> {cpu_after}");
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&own).is_some());
        assert!(ticks_per_second() > 0.0);
    }

    #[test]
    fn costs_are_per_request() {
        let before = Totals {
            server_cpu_us: 1_000.0,
            server_user_us: 400.0,
            server_preempted: 10,
            load_cpu_us: 500.0,
            load_sleeps: 7,
        };
        let after = Totals {
            server_cpu_us: 3_000.0,
            server_user_us: 1_000.0,
            server_preempted: 30,
            load_cpu_us: 1_500.0,
            load_sleeps: 107,
        };
        let cost = before.per_request(after, 200);
        assert_eq!(
            cost,
            Cost {
                server_cpu_us: 10.0,
                server_user_us: 3.0,
                server_preempted: 0.1,
                load_cpu_us: 5.0,
                load_sleeps: 0.5,
            }
        );
    }

    #[test]
    fn targets_are_judged_at_their_bounds() {
        let figures = |hello| Figures {
            hello: Some(hello),
            hello_p99: Some(1.5),
            small_static: None,
            mounts: Some(0.969),
            startup_two_ms: Some(99.9),
            startup_hundred_ms: Some(1000.0),
            rss_mib: Some(39.9),
        };
        let verdicts = |hello| {
            targets(&figures(hello))
                .into_iter()
                .map(|target| (target.measured, target.met))
                .collect::<Vec<_>>()
        };
        let expected = |hello: &str, hello_met| {
            vec![
                (hello.to_owned(), hello_met),
                ("1.500".to_owned(), true),
                ("not measured".to_owned(), false),
                ("0.969".to_owned(), false),
                ("99.9 ms".to_owned(), true),
                ("1000.0 ms".to_owned(), false),
                ("39.9 MiB".to_owned(), true),
            ]
        };
        assert_eq!(verdicts(0.90), expected("0.900", true));
        // judged on the figure, not on its text
        assert_eq!(verdicts(0.89996), expected("0.900", false));
        assert_eq!(verdicts(0.899), expected("0.899", false));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn ratios_pair_the_runs_of_each_round() {
        let round = |requests_per_second: f64, p99_us: f64, server_cpu_us: f64| {
            let run = Run {
                requests: 1,
                requests_per_second,
                p50_us: 1.0,
                p99_us,
                non_success: 0,
            };
            let cost = Cost {
                server_cpu_us,
                ..Cost::default()
            };
            (run, cost)
        };
        // a runs at 0.9 of b in two rounds; in the second the machine
        // slowed down while b ran
        let a = [
            round(90.0, 1.0, 10.0),
            round(60.0, 2.0, 20.0),
            round(45.0, 5.0, 30.0),
        ];
        let b = [
            round(100.0, 2.0, 5.0),
            round(40.0, 1.0, 10.0),
            round(50.0, 4.0, 10.0),
        ];
        assert_eq!(
            Ratios::paired(&a, &b),
            Ratios {
                requests_per_second: 0.9,
                p99: 1.25,
                server_cpu: 2.0,
            }
        );
        // the ratio of the medians would take that round's slow b against
        // a's from another round: 60 / 50
        let medians = (median_measured(&a), median_measured(&b));
        assert_eq!(
            medians.0.run.requests_per_second / medians.1.run.requests_per_second,
            1.2
        );
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration_us("12.50us"), Some(12.5));
        assert_eq!(duration_us("1.5ms"), Some(1500.0));
        assert_eq!(duration_us("2.00s"), Some(2_000_000.0));
        assert_eq!(duration_us("2m"), None);
    }
}
