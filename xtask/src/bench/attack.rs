//! `cargo xtask attack`: the slow-body flood against the shipped site. 300
//! connections each announce a 16 MB body for `POST /admin/en/login` and send
//! 200 KB of it every 5 s for 30 s, while one client keeps asking for the
//! home page; reports the host's peak memory, its memory once the attackers
//! left, and how the ordinary requests fared.
//!
//! The table is the repository's `plugins.json` with its paths made
//! absolute, its data and logs under `target/attack`, and the connection
//! cap per address raised to let all 300 in from 127.0.0.1 (a botnet has
//! many addresses): what is measured is the body handling.

use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{
    servers::{Server, status_of},
    site::seed_posts,
    stats::median,
    usage::memory_kib,
};

/// Attacking connections.
const CONNECTIONS: usize = 300;
/// What each announces.
const ANNOUNCED: usize = 16_000_000;
/// What each sends at a time...
const CHUNK: usize = 200 * 1024;
/// ...this often...
const EVERY: Duration = Duration::from_secs(5);
/// ...for this long.
const LASTS: Duration = Duration::from_secs(30);

/// Runs the attack; the report.
pub fn run(root: &Path, release: &Path) -> Result<String, String> {
    let dir = root.join("target/attack");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let table = write_table(root, &dir)?;
    let host_binary = release.join("host");
    seed_posts(&host_binary, &table, &dir)?;
    let mut command = Command::new(&host_binary);
    command
        .args(["serve", "--config"])
        .arg(&table)
        .args(["--listen", "127.0.0.1:0"]);
    let host = Server::start(command)?;
    if status_of(host.addr, "/en/") != Some(200) {
        return Err("the site does not answer / with 200".to_owned());
    }
    let pid = host.pid();
    let (_, before) = memory_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (addr, stop, sent) = (host.addr, Arc::clone(&stop), Arc::clone(&sent));
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || attack(addr, &stop, &sent))
                .map_err(|error| error.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut peak = before;
    let started = Instant::now();
    while started.elapsed() < LASTS {
        let asked = Instant::now();
        match status_of(host.addr, "/en/") {
            Some(200) => latencies.push(asked.elapsed().as_secs_f64() * 1000.0),
            _ => failures += 1,
        }
        peak = peak.max(memory_kib(pid).1);
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.join();
    }
    // jemalloc gives freed pages back within a second; idle threads of the
    // runtime's blocking pool end after ten
    thread::sleep(Duration::from_secs(3));
    let (_, soon_after) = memory_kib(pid);
    thread::sleep(Duration::from_secs(10));
    let (high_water, after) = memory_kib(pid);
    let served = status_of(host.addr, "/en/");
    let middle = median(&mut latencies);
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN);
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(format!(
        "slow-body flood: {CONNECTIONS} connections announcing {ANNOUNCED} bytes for POST /admin/en/login, \
         {CHUNK} bytes each every {}s for {}s ({:.0} MB sent in all)\n\
         host memory: {:.1} MiB before, peak {:.1} MiB (high-water mark {:.1} MiB), {:.1} MiB 3 s and {:.1} MiB 13 s after the attackers left\n\
         ordinary requests (GET /en/, one at a time): {} answered 200, {failures} failed, \
         median {middle:.1} ms, p99 {p99:.1} ms; after the attack: {served:?}\n",
        EVERY.as_secs(),
        LASTS.as_secs(),
        sent.load(Ordering::Relaxed) as f64 / 1e6,
        mib(before),
        mib(peak),
        mib(high_water),
        mib(soon_after),
        mib(after),
        latencies.len(),
    ))
}

/// One attacker: the head, then a chunk every [`EVERY`] until stopped.
fn attack(addr: SocketAddr, stop: &AtomicBool, sent: &AtomicU64) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let head = format!(
        "POST /admin/en/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![b'a'; CHUNK];
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            if stream.write_all(&chunk).is_err() {
                return;
            }
            sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
            next += EVERY;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The repository's `plugins.json`, its paths made absolute, its data and
/// logs in `dir`, and room for every attacking connection from one address.
fn write_table(root: &Path, dir: &Path) -> Result<std::path::PathBuf, String> {
    let shipped = root.join("plugins.json");
    let text = std::fs::read_to_string(&shipped)
        .map_err(|error| format!("{}: {error}", shipped.display()))?;
    let mut table: Value =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", shipped.display()))?;
    table["data_dir"] = dir.join("data").display().to_string().into();
    table["log_dir"] = dir.join("logs").display().to_string().into();
    table["max_connections_per_address"] = (CONNECTIONS * 2).into();
    let mounts = table["mounts"]
        .as_array_mut()
        .ok_or("plugins.json has no mounts")?;
    for mount in mounts {
        for key in ["library", "static_folder"] {
            if let Some(path) = mount[key].as_str() {
                mount[key] = root.join(path).display().to_string().into();
            }
        }
    }
    let file = dir.join("plugins.json");
    std::fs::write(&file, table.to_string()).map_err(|error| error.to_string())?;
    Ok(file)
}
