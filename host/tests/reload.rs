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
                    format!("GET /en/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
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
        .and_then(|text| text.lines().next()?.trim().parse().ok())
}

fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[test]
fn sighup_adds_a_third_section_with_zero_failed_requests() {
    let table = Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]);
    let mut host = Host::start_on(&table);
    let old = host.child.id();
    assert_eq!(pid_in(&table), Some(old));
    assert_eq!(host.get("/archive/").status, 404);

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(host.addr, Arc::clone(&stop));
    thread::sleep(Duration::from_millis(300));

    let with_archive = json!({"mounts": [
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
        mount("archive", "/archive", "archive"),
    ]});
    std::fs::write(&table.file, with_archive.to_string()).unwrap();
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
    while host.get("/archive/").status != 200 {
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
    assert_eq!(host.get("/en/").status, 200);
    assert_eq!(pid_in(&table), Some(host.child.id()));
}

#[test]
fn a_systemd_socket_is_used_instead_of_binding() {
    // Python stands in for systemd: it opens the socket, puts it on
    // descriptor 3, sets LISTEN_FDS and LISTEN_PID, and execs the host.
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let script = r#"
import os, socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(common::host_binary())
        .args(["serve", "--config"])
        .arg(&table.file)
        .current_dir(table.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs");
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port.trim()).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        // the socket already listens; the host answers once it is up
        let attempt = std::panic::catch_unwind(|| {
            common::send_raw(
                addr,
                format!("GET /en/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
                false,
            )
        });
        if let Ok(response) = attempt {
            break response;
        }
        assert!(Instant::now() < deadline, "no answer on the systemd socket");
        thread::sleep(Duration::from_millis(100));
    };
    terminate(child.id());
    let _ = child.wait();
    assert_eq!(response.status, 200);
    assert!(
        response
            .text()
            .contains("<title>Latest posts · The Blog</title>")
    );
}

/// A client that keeps its connection alive and never retries, as
/// Python's http.client: requests one after another on one connection,
/// reconnecting only when a response says `Connection: close`; any
/// connection that fails, or a status other than 200, is a failure.
fn keep_alive_client(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(usize, Vec<String>)> {
    use std::io::{BufRead, BufReader, Read, Write};
    thread::spawn(move || {
        let (mut answered, mut failures) = (0, Vec::new());
        let connect = || {
            let stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            BufReader::new(stream)
        };
        let mut connection = connect();
        while !stop.load(Ordering::Relaxed) {
            let request = format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            let outcome = (|| -> std::io::Result<(u16, bool)> {
                connection.get_mut().write_all(request.as_bytes())?;
                let mut line = String::new();
                if connection.read_line(&mut line)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                let status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let (mut length, mut close) = (0usize, false);
                loop {
                    line.clear();
                    connection.read_line(&mut line)?;
                    let header = line.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap_or((header, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                connection.read_exact(&mut body)?;
                Ok((status, close))
            })();
            match outcome {
                Ok((200, close)) => {
                    answered += 1;
                    if close {
                        connection = connect();
                    }
                }
                Ok((status, _)) => failures.push(format!("status {status}")),
                Err(error) => {
                    failures.push(format!("{error}"));
                    connection = connect();
                }
            }
        }
        (answered, failures)
    })
}

#[test]
fn reloads_under_keep_alive_load_fail_no_request() {
    let table = Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]);
    let mut host = Host::start_on(&table);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| keep_alive_client(host.addr, Arc::clone(&stop)))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let mut serving = host.child.id();
    for round in 0..3 {
        let reload = table.run("reload");
        assert!(
            reload.status.success(),
            "{}",
            String::from_utf8_lossy(&reload.stderr)
        );
        // the old process hands over and exits
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::path::Path::new(&format!("/proc/{serving}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{serving}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
        {
            assert!(
                Instant::now() < deadline,
                "reload {round}: the old process stayed"
            );
            thread::sleep(Duration::from_millis(20));
        }
        if round == 0 {
            assert!(host.wait_exit().success());
        }
        serving = pid_in(&table).expect("the new process wrote its pid");
        thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    let mut failures = Vec::new();
    for client in clients {
        let (count, failed) = client.join().unwrap();
        answered += count;
        failures.extend(failed);
    }
    terminate(serving);
    assert!(answered > 500, "only {answered} requests went through");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        answered + failures.len(),
        &failures[..failures.len().min(8)]
    );
}

#[test]
fn systemd_is_told_ready_reloading_the_new_main_pid_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let folder = tempfile::tempdir().unwrap();
    let socket_path = folder.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&socket_path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let next = || {
        let mut buffer = [0; 4096];
        let length = systemd.recv(&mut buffer).expect("a notification");
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    };
    let table = Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]);
    let notify_socket = socket_path.display().to_string();
    let mut host = Host::start_with_env(
        &table,
        &[("RUST_LOG", "info"), ("NOTIFY_SOCKET", &notify_socket)],
    );
    let ready = next();
    assert!(ready.lines().any(|line| line == "READY=1"), "{ready}");
    assert!(
        ready.contains("STATUS=serving on http://127.0.0.1:") && ready.contains("2 of 2 mounts"),
        "{ready}"
    );
    let old = host.child.id();

    let reload = table.run("reload");
    assert!(reload.status.success());
    let reloading = next();
    assert!(
        reloading.lines().any(|line| line == "RELOADING=1"),
        "{reloading}"
    );
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    // the successor says nothing itself (systemd would refuse a process
    // that is not the main one): the old process names it, then exits
    let handed = next();
    let new = pid_in(&table).expect("the new process wrote its pid");
    assert_ne!(new, old);
    assert!(
        handed.lines().any(|line| line == format!("MAINPID={new}")),
        "{handed}"
    );
    assert!(handed.lines().any(|line| line == "READY=1"), "{handed}");
    assert!(host.wait_exit().success());
    assert_eq!(host.get("/hello").status, 200, "the new process serves");

    terminate(new);
    let stopping = next();
    assert!(
        stopping.lines().any(|line| line == "STOPPING=1"),
        "{stopping}"
    );
}

/// The process whose parent is `parent`, once there is one.
fn child_of(parent: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        if let Some(child) = children.split_whitespace().next() {
            return child.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "{parent} started no process");
        thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends `SIGHUP` to `supervisor` twice, under load that never retries,
/// and checks that it stays while the serving process changes each time;
/// then `SIGTERM` stops it all. `serving_pid` reads the serving process's
/// id (as the pid file names it, inside the supervisor's namespace).
fn reload_twice_under_a_supervisor(
    host: &mut Host,
    supervisor: u32,
    serving_pid: &dyn Fn() -> u32,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = keep_alive_client(host.addr, Arc::clone(&stop));
    let mut served_by = vec![serving_pid()];
    for _ in 0..2 {
        signal(supervisor, "HUP");
        let before = *served_by.last().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while serving_pid() == before {
            assert!(Instant::now() < deadline, "no successor took over");
            thread::sleep(Duration::from_millis(50));
        }
        served_by.push(serving_pid());
        // the old process drains and exits; the supervisor stays
        thread::sleep(Duration::from_millis(1500));
        assert!(
            host.child.try_wait().unwrap().is_none(),
            "the supervisor exited"
        );
        assert!(alive(supervisor));
    }
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = load.join().unwrap();
    assert!(answered > 100, "{answered}");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(served_by.len(), 3);
    assert!(
        served_by[0] != served_by[1] && served_by[1] != served_by[2],
        "{served_by:?}"
    );
    assert_eq!(host.get("/hello").status, 200);
    signal(supervisor, "TERM");
    assert!(host.wait_exit().success(), "{}", host.log());
}

#[test]
fn a_supervisor_keeps_its_pid_across_reloads() {
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let mut host = Host::start_command(&table, &["serve", "--supervise"]);
    let supervisor = host.child.id();
    let first = child_of(supervisor);
    let serving = || pid_in(&table).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while serving() != first {
        assert!(
            Instant::now() < deadline,
            "the pid file does not name {first}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    reload_twice_under_a_supervisor(&mut host, supervisor, &serving);
    let last = pid_in(&table);
    assert!(last.is_none(), "the pid file is removed at the stop");
    assert!(!alive(first), "no serving process is left");
}

#[test]
fn as_pid_1_in_a_container_a_reload_keeps_the_container_running() {
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    // a new PID namespace: the host is its PID 1, as in a container
    let mut host = Host::start_through(&table, &["unshare", "--pid", "--fork"]);
    let outside = child_of(host.child.id());
    let serving = || pid_in(&table).unwrap_or(0);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{outside}/status"))
            .unwrap()
            .lines()
            .find(|line| line.starts_with("NSpid:"))
            .map(|line| line.split_whitespace().last().unwrap().to_owned()),
        Some("1".to_owned()),
        "the host is PID 1 of its namespace"
    );
    // the pid file names the serving process as the namespace sees it
    let deadline = Instant::now() + Duration::from_secs(10);
    while serving() <= 1 {
        assert!(Instant::now() < deadline, "no serving process beside PID 1");
        thread::sleep(Duration::from_millis(20));
    }
    reload_twice_under_a_supervisor(&mut host, outside, &serving);
}
