//! Zero-downtime restart with SIGHUP / `host reload`.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use common::{Host, Table, mount};
use serde_json::json;

/// Keeps sending requests (a new connection each) until stopped; counts
/// the answers and the failures.
fn load(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(usize, Vec<String>)> {
    thread::spawn(move || {
        let mut answered = 0;
        let mut failures = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let outcome = std::panic::catch_unwind(|| {
                common::send_raw(
                    addr,
                    format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                    false,
                )
            });
            match outcome {
                Ok(response) if response.status == 200 => answered += 1,
                Ok(response) => failures.push(format!("status {}", response.status)),
                Err(_) => failures.push("connection failed".to_owned()),
            }
        }
        (answered, failures)
    })
}

fn pid_in(table: &Table) -> Option<u32> {
    std::fs::read_to_string(table.dir.path().join("data/host.pid"))
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
}

fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[test]
fn sighup_adds_a_section_with_zero_failed_requests() {
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let mut host = Host::start_on(&table);
    let old = host.child.id();
    assert_eq!(pid_in(&table), Some(old));
    assert_eq!(host.get("/admin/").status, 404);

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(host.addr, Arc::clone(&stop));
    thread::sleep(Duration::from_millis(300));

    let with_admin = json!({"mounts": [
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]});
    std::fs::write(&table.file, with_admin.to_string()).unwrap();
    // `host reload` finds the running host through its pid file
    let reload = table.run("reload");
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    assert!(
        String::from_utf8_lossy(&reload.stdout).contains(&format!("asked host {old} to reload"))
    );

    // the old process hands over and exits cleanly
    let status = host.wait_exit();
    assert!(status.success(), "{status:?}");
    let new = pid_in(&table).expect("the new process wrote its pid");
    assert_ne!(new, old);
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.get("/admin/").status != 200 {
        assert!(Instant::now() < deadline, "the new section never answered");
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = traffic.join().unwrap();
    terminate(new);
    assert!(answered > 20, "only {answered} requests went through");
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let log = host.log();
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains(&format!("process {new} serves now")), "{log}");
}

#[test]
fn an_invalid_table_on_sighup_leaves_the_old_process_serving() {
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let host = Host::start_on(&table);
    std::fs::write(&table.file, "{ \"mounts\": [ nope").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let log = host.wait_for_log("so this one keeps serving");
    assert!(
        log.contains("the new process did not start, so this one keeps serving"),
        "{log}"
    );
    assert!(log.contains("exited before serving"), "{log}");
    assert_eq!(host.get("/").status, 200);
    assert_eq!(pid_in(&table), Some(host.child.id()));
}
