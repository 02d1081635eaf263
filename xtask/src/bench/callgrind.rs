//! Instructions per request, counted by callgrind: unlike requests per
//! second, the count does not move with the machine's other load.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{servers::Server, wrk};

/// User-space instructions per request for `path`, counted by callgrind
/// (`server` runs under valgrind): unlike requests per second, the count
/// does not move with the machine's other load, so it shows what a change
/// to the request path costs. Counted over 3 s of wrk with 8 connections,
/// after 2 s of warm-up.
pub(super) fn instructions_per_request(
    server: &Command,
    path: &str,
    dir: &Path,
) -> Result<f64, String> {
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
    let pid = running.pid().to_string();
    wrk::run(running.addr, path, 8, 2)?;
    control_callgrind("-z", &pid)?;
    let run = wrk::run(running.addr, path, 8, 3)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_totals_are_read() {
        let dump =
            "version: 1\nevents: Ir\nsummary: 199068285\n\nfn=(1) main\n0 5\n\ntotals: 199068290\n";
        assert_eq!(callgrind_total(dump), Some(199_068_290));
        // still being written
        assert_eq!(callgrind_total(&dump[..dump.len() - 3]), None);
        assert_eq!(callgrind_total("events: Ir\nsummary: 5\n"), None);
    }
}
