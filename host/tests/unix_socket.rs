//! `--listen unix:PATH`: the real host on a Unix socket, reached directly
//! and through nginx, reloaded on it, and its file's life: made 0660,
//! removed at the stop, a stale one replaced, one in use refused.

mod common;

use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use common::{Host, Table, host_binary, mount, nginx::Nginx, unix_request};

fn table() -> Table {
    Table::new(vec![mount("frontend", "/", "frontend")])
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The frontend's access line of the request `id`, once written.
fn access_line(table: &Table, id: &str) -> String {
    let file = table.dir.path().join("logs/app_frontend.log");
    let mut found = None;
    wait_for("the access line", || {
        let log = std::fs::read_to_string(&file).unwrap_or_default();
        found = log
            .lines()
            .find(|line| line.contains(id))
            .map(str::to_owned);
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn serves_on_a_unix_socket_directly_and_behind_nginx() {
    let table = table();
    let socket = table.dir.path().join("host.sock");
    let mut host = Host::start_on_socket(&table, &socket);
    let metadata = std::fs::metadata(&socket).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o660);
    assert!(
        host.log()
            .contains(&format!("listening on unix:{}", socket.display()))
    );

    let direct = unix_request(&socket, "/hello", &[]);
    assert_eq!(direct.status, 200, "{}", direct.text());

    // nginx's proxy_pass to the socket; the client's address comes from
    // X-Forwarded-For, believed from a socket's peer
    let nginx = Nginx::to_socket(&socket);
    let through = nginx.server.get("/hello");
    assert_eq!(through.status, 200, "{}", nginx.errors());
    let id = through.header("x-request-id").unwrap().to_owned();
    let line = access_line(&table, &id);
    assert!(
        line.contains(" 127.0.0.1 \"GET /hello HTTP/1.1\" 200"),
        "{line}"
    );
    // without the header, the socket's peer is named as such
    let direct = unix_request(&socket, "/hello?direct", &[]);
    let id = direct.header("x-request-id").unwrap().to_owned();
    let line = access_line(&table, &id);
    assert!(
        line.contains(" unix: \"GET /hello?direct HTTP/1.1\""),
        "{line}"
    );

    host.terminate();
    assert!(host.wait_exit().success());
    assert!(!socket.exists(), "the socket's file is removed at the stop");
}

#[test]
fn a_reload_keeps_the_socket_and_its_file() {
    let table = table();
    let socket = table.dir.path().join("host.sock");
    let mut host = Host::start_on_socket(&table, &socket);
    assert_eq!(unix_request(&socket, "/hello", &[]).status, 200);
    let status = Command::new("kill")
        .args(["-HUP", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        host.wait_exit().success(),
        "the old process hands over and exits"
    );
    assert!(socket.exists(), "the successor keeps the socket's file");
    for _ in 0..20 {
        assert_eq!(unix_request(&socket, "/hello", &[]).status, 200);
    }
    let pid: i32 = std::fs::read_to_string(table.dir.path().join("data/host.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
    wait_for("the successor to stop", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

#[test]
fn a_stale_socket_file_is_replaced_and_one_in_use_or_not_a_socket_refused() {
    let table = table();
    let socket = table.dir.path().join("host.sock");
    // a killed host leaves its file: nobody listens on it
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let host = Host::start_on_socket(&table, &socket);
    assert_eq!(unix_request(&socket, "/hello", &[]).status, 200);

    let second = Command::new(host_binary())
        .args(["serve", "--config"])
        .arg(&table.file)
        .env("HOST_LISTEN", format!("unix:{}", socket.display()))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on unix:{}", socket.display()))
            && stderr.contains("another process listens on it"),
        "{stderr}"
    );
    // the running host still serves on it
    assert_eq!(unix_request(&socket, "/hello", &[]).status, 200);
    drop(host);

    let file = table.dir.path().join("plain-file");
    std::fs::write(&file, "keep me").unwrap();
    let refused = Command::new(host_binary())
        .args(["serve", "--config"])
        .arg(&table.file)
        .arg("--listen")
        .arg(format!("unix:{}", file.display()))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
