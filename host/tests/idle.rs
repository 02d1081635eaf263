//! A host without traffic uses no CPU: its background threads (the log
//! writer, the stall guard) sleep until work comes, and no timer ticks.

mod common;

use std::time::Duration;

use common::{Host, blog::site_table};

/// CPU seconds a process used so far (user and system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // the kernel's clock ticks a second, which /proc counts in
    let per_second: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap_or(100.0)
        })
        .unwrap_or(100.0);
    ticks / per_second
}

/// Context switches of all the process's threads so far: each time one of
/// them went to sleep or was put aside, from /proc.
fn switches(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status =
            std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .filter(|line| line.contains("ctxt_switches:"))
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}

#[test]
fn a_host_without_traffic_for_30_seconds_uses_less_than_one_percent_of_a_core() {
    let table = site_table();
    let host = Host::start_on(&table);
    // the blog's pages, an inline call and the database: every thread the
    // host starts on its way is there
    for path in [
        "/",
        "/hello",
        "/admin/en/login",
        "/static/style.css",
        "/no/such/page",
    ] {
        assert!(host.get(path).status < 500, "{path}");
    }
    // the stall guard and the log writer go to sleep after a quiet second
    std::thread::sleep(Duration::from_secs(3));
    let pid = host.child.id();
    let (cpu, woken) = (cpu_seconds(pid), switches(pid));
    std::thread::sleep(Duration::from_secs(30));
    let used = cpu_seconds(pid) - cpu;
    let woken = switches(pid) - woken;
    assert!(
        used < 0.3,
        "an idle host used {used:.2} s of CPU in 30 s (at most 0.3 s, 1% of a core)"
    );
    // Sleeping threads are not woken at all: a thread that looked for work
    // every 10 ms (the stall guard before it learnt to sleep) costs little
    // CPU, but shows here as 3,000 wake-ups.
    assert!(
        woken < 60,
        "the host's threads woke {woken} times in 30 s without traffic"
    );
}
