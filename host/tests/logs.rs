//! Per-app log files, the access log and `host.log`, read back from disk.

mod common;

use common::{Host, Table, mount};
use serde_json::json;

/// Two different app libraries, each logging from its handlers.
fn two_apps() -> Table {
    let mut front = mount("frontend", "/", "archive");
    front["static_folder"] = json!("static");
    let mut admin = mount("admin", "/admin", "probe");
    admin["static_folder"] = json!("static");
    let table = Table::new(vec![front, admin]);
    std::fs::create_dir_all(table.dir.path().join("static")).unwrap();
    std::fs::write(table.dir.path().join("static/style.css"), "p{}").unwrap();
    table
}

fn read_log(table: &Table, name: &str) -> String {
    std::fs::read_to_string(table.dir.path().join("logs").join(format!("{name}.log")))
        .unwrap_or_else(|error| panic!("{name}.log: {error}"))
}

/// Stops the host with SIGTERM so that everything buffered is flushed.
fn stop(mut host: Host) {
    host.terminate();
    assert!(host.wait_exit().success());
}

#[test]
fn each_app_logs_to_its_own_file_and_never_to_the_others() {
    let table = two_apps();
    let host = Host::start_on(&table);
    let front = host.get("/2031");
    let admin = host.get("/admin/log?text=admin-marker&thread=1");
    assert_eq!(front.status, 200);
    assert_eq!(admin.status, 200);
    let admin_id = admin.header("x-request-id").unwrap().to_owned();
    let front_id = front.header("x-request-id").unwrap().to_owned();
    let css = host.get("/admin/static/style.css");
    let css_id = css.header("x-request-id").unwrap().to_owned();
    let bad = host.get("/x%2Fy?q=1");
    assert_eq!(bad.status, 400);
    let bad_id = bad.header("x-request-id").unwrap().to_owned();
    stop(host);

    let frontend = read_log(&table, "app_frontend");
    let admin = read_log(&table, "app_admin");
    let host_log = read_log(&table, "host");

    assert!(frontend.contains("archive viewed year=2031"), "{frontend}");
    assert!(!frontend.contains("admin-marker"), "{frontend}");
    assert!(admin.contains("probe says admin-marker"), "{admin}");
    assert!(!admin.contains("archive viewed"), "{admin}");
    // a thread the app spawned still logs into the app's own file
    assert!(
        admin.contains("admin-marker from a spawned thread"),
        "{admin}"
    );
    assert!(!host_log.contains("marker"), "{host_log}");

    // events inside a request carry its id
    let event = admin
        .lines()
        .find(|line| line.contains("probe says admin-marker"))
        .unwrap();
    assert!(event.contains(&admin_id), "{event}");
    assert!(event.contains("app_admin"), "{event}");

    // one access line per request, in the serving app's file
    let access = admin
        .lines()
        .find(|line| line.contains("\"GET /admin/log?text=admin-marker&thread=1 HTTP/1.1\""))
        .expect("access line for the admin request");
    assert!(access.contains("127.0.0.1:"), "{access}");
    assert!(access.contains("\" 200 6 "), "status and bytes: {access}");
    assert!(access.contains("ms "), "duration: {access}");
    assert!(access.contains(&admin_id), "{access}");
    assert!(
        frontend
            .lines()
            .any(|line| line.contains("\"GET /2031 HTTP/1.1\" 200") && line.contains(&front_id)),
        "{frontend}"
    );
    // static files are logged by the app whose mount served them
    assert!(
        admin.lines().any(
            |line| line.contains("\"GET /admin/static/style.css HTTP/1.1\" 200 3 ")
                && line.contains(&css_id)
        ),
        "{admin}"
    );
    // requests no app answered go to host.log
    assert!(
        host_log
            .lines()
            .any(|line| line.contains("\"GET /x%2Fy?q=1 HTTP/1.1\" 400") && line.contains(&bad_id)),
        "{host_log}"
    );
    assert!(!frontend.contains("/x%2Fy") && !admin.contains("/x%2Fy"));
    assert!(host_log.contains("listening on http://"), "{host_log}");
}

#[test]
fn json_log_lines_are_one_object_each_in_the_files_and_on_the_console() {
    let mut front = mount("frontend", "/", "archive");
    front["static_folder"] = json!("static");
    let table = Table::from_value(json!({
        "log_format": "json",
        "mounts": [front, mount("admin", "/admin", "probe")],
    }));
    std::fs::create_dir_all(table.dir.path().join("static")).unwrap();
    let mut host = Host::start_command(&table, &["serve", "--access-log", "-"]);
    let admin = host.request(
        "GET",
        "/admin/log?text=json-marker",
        &[("User-Agent", "agent \"quoted\"\tx")],
        b"",
    );
    assert_eq!(admin.status, 200);
    let id = admin.header("x-request-id").unwrap().to_owned();
    assert_eq!(host.get("/2031").status, 200);
    host.terminate();
    assert!(host.wait_exit().success());
    let console = host.log();

    let objects = |name: &str, text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("{name}: not JSON ({error}): {line}"))
            })
            .collect()
    };
    let admin_log = objects("app_admin.log", &read_log(&table, "app_admin"));
    let front_log = objects("app_frontend.log", &read_log(&table, "app_frontend"));
    let host_log = objects("host.log", &read_log(&table, "host"));
    let console = objects("the console", &console);

    let event = admin_log
        .iter()
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("json-marker"))
        })
        .expect("the app's event");
    assert_eq!(event["target"], "app_admin");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["request_id"], id.as_str());
    let access = admin_log
        .iter()
        .find(|line| line["kind"] == "access")
        .expect("the access line");
    assert_eq!(access["path"], "/admin/log?text=json-marker");
    assert_eq!(access["status"], 200);
    assert_eq!(access["request_id"], id.as_str());
    assert_eq!(access["user_agent"], "agent \"quoted\"\tx");
    assert!(access["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        front_log
            .iter()
            .any(|line| line["kind"] == "access" && line["path"] == "/2031")
    );
    assert!(
        host_log.iter().any(|line| line["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on http://"))),
        "{host_log:?}"
    );
    // the console has the same objects, access lines included when asked
    assert!(
        console
            .iter()
            .any(|line| line["kind"] == "access" && line["request_id"] == id.as_str())
    );
    assert!(console.iter().any(|line| {
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("json-marker"))
    }));
}

/// The probe library mounted twice: `one` at `/`, `two` at `/two`.
fn probe_mounted_twice() -> Table {
    Table::new(vec![
        mount("one", "/", "probe"),
        mount("two", "/two", "probe"),
    ])
}

#[test]
fn threads_started_with_the_sdk_keep_their_mount_when_one_library_is_mounted_twice() {
    let table = probe_mounted_twice();
    let host = Host::start_on(&table);
    assert_eq!(host.get("/two/log?text=second&thread=sdk").status, 200);
    stop(host);
    let one = read_log(&table, "app_one");
    let two = read_log(&table, "app_two");
    assert!(two.contains("second from a spawned thread"), "{two}");
    assert!(!one.contains("second"), "{one}");
}

#[test]
fn requests_alternating_between_two_mounts_of_one_library_log_under_their_own() {
    // the SDK keeps a mount's dispatcher as the thread's default between
    // calls: a call for the other mount must replace it
    let table = probe_mounted_twice();
    let host = Host::start_on(&table);
    for round in 0..20 {
        assert_eq!(host.get(&format!("/log?text=first-{round}")).status, 200);
        assert_eq!(
            host.get(&format!("/two/log?text=second-{round}")).status,
            200
        );
    }
    stop(host);
    let one = read_log(&table, "app_one");
    let two = read_log(&table, "app_two");
    for round in 0..20 {
        assert!(one.contains(&format!("probe says first-{round} ")), "{one}");
        assert!(
            two.contains(&format!("probe says second-{round} ")),
            "{two}"
        );
    }
    assert!(!one.contains("probe says second"), "{one}");
    assert!(!two.contains("probe says first"), "{two}");
}

#[test]
fn rust_log_filters_per_app() {
    let mut front = mount("frontend", "/", "probe");
    front["logger"] = json!("app_frontend");
    let table = Table::new(vec![front, mount("admin", "/admin", "probe")]);
    let host = Host::start_with_env(&table, &[("RUST_LOG", "app_admin=debug,info")]);
    host.get("/log?text=front-debug&level=debug");
    host.get("/admin/log?text=admin-debug&level=debug");
    stop(host);
    let frontend = read_log(&table, "app_frontend");
    let admin = read_log(&table, "app_admin");
    assert!(admin.contains("probe says admin-debug"), "{admin}");
    assert!(admin.contains("DEBUG"), "{admin}");
    assert!(!frontend.contains("front-debug\""), "{frontend}");
    assert!(!frontend.contains("probe says front-debug"), "{frontend}");
}

#[test]
fn a_log_folder_that_cannot_be_written_stops_the_start() {
    let table = Table::from_value(json!({
        // a folder inside a regular file can never be created
        "log_dir": "plugins.json/logs",
        "mounts": [mount("frontend", "/", "frontend")],
    }));
    let output = table.run("serve");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot write logs to") && stderr.contains("plugins.json/logs"),
        "{stderr}"
    );
}

#[test]
fn access_lines_join_nginxs_by_request_id_and_name_the_agent_the_referer_and_the_trace() {
    let table = two_apps();
    let host = Host::start_on(&table);
    let kept = host.request(
        "GET",
        "/2031",
        &[
            ("X-Request-Id", "5f3a9c0e8b7d4e21a0b1c2d3e4f50617"),
            ("User-Agent", "Mozilla/5.0 \"quoted\"\tagent"),
            ("Referer", "https://example.com/from"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        b"",
    );
    assert_eq!(kept.status, 200);
    assert_eq!(
        kept.header("x-request-id"),
        Some("5f3a9c0e8b7d4e21a0b1c2d3e4f50617"),
        "kept and sent back"
    );
    let replaced = host.request(
        "GET",
        "/2030",
        &[("X-Request-Id", "not an id; rm -rf")],
        b"",
    );
    let new_id = replaced.header("x-request-id").unwrap().to_owned();
    assert!(
        new_id.len() == 16 && new_id.chars().all(|c| c.is_ascii_hexdigit()),
        "{new_id}"
    );
    stop(host);
    let frontend = read_log(&table, "app_frontend");
    let line = frontend
        .lines()
        .find(|line| line.contains("\"GET /2031 HTTP/1.1\""))
        .expect("the access line");
    assert!(
        line.contains(
            "ms \"https://example.com/from\" \"Mozilla/5.0 \\x22quoted\\x22\\x09agent\" trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
        ),
        "{line}"
    );
    assert!(
        line.contains("request_id=5f3a9c0e8b7d4e21a0b1c2d3e4f50617"),
        "{line}"
    );
    // the app's own events in that request carry the same id
    assert!(
        frontend
            .lines()
            .any(|line| line.contains("archive viewed year=2031")
                && line.contains("5f3a9c0e8b7d4e21a0b1c2d3e4f50617")),
        "{frontend}"
    );
    let other = frontend
        .lines()
        .find(|line| line.contains("\"GET /2030 HTTP/1.1\""))
        .expect("the second access line");
    assert!(other.contains(&format!("request_id={new_id}")), "{other}");
    assert!(other.contains("ms \"-\" \"-\""), "{other}");
    assert!(!frontend.contains("rm -rf"), "{frontend}");
}

#[test]
fn access_lines_go_to_the_console_only_when_asked() {
    let table = two_apps();
    let mut quiet = Host::start_on(&table);
    assert_eq!(quiet.get("/2029").status, 200);
    quiet.terminate();
    assert!(quiet.wait_exit().success());
    // everything flushed: the host's events, none of the access lines
    let quiet_console = quiet.log();
    assert!(quiet_console.contains("stopped"), "{quiet_console}");
    assert!(!quiet_console.contains("/2029"), "{quiet_console}");
    let console = Host::start_command(&table, &["serve", "--access-log", "-"]);
    assert_eq!(console.get("/2028").status, 200);
    console.wait_for_log("\"GET /2028 HTTP/1.1\" 200");
    let console_log = console.log();
    stop(console);
    let frontend = read_log(&table, "app_frontend");
    // both in the file; on the console only the one asked for
    assert!(
        frontend.contains("\"GET /2029 HTTP/1.1\" 200"),
        "{frontend}"
    );
    assert!(
        frontend.contains("\"GET /2028 HTTP/1.1\" 200"),
        "{frontend}"
    );
    assert!(
        console_log.contains("\"GET /2028 HTTP/1.1\" 200"),
        "{console_log}"
    );
    // the console still shows the host's own events
    assert!(
        console_log.contains("listening on http://"),
        "{console_log}"
    );
    let refused = table.run_args(&["serve", "--access-log", "/var/log/access.log"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only \"-\" (the console)"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn a_log_rotated_under_load_loses_no_line() {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    };
    let table = two_apps();
    let host = Host::start_on(&table);
    let stop_load = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let addr = host.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop_load, ids) = (Arc::clone(&stop_load), Arc::clone(&ids));
            std::thread::spawn(move || {
                while !stop_load.load(Ordering::Relaxed) {
                    let response = common::send_raw(
                        addr,
                        format!("GET /2031 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                        false,
                    );
                    assert_eq!(response.status, 200);
                    let id = response.header("x-request-id").unwrap().to_owned();
                    ids.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // what logrotate does: move the file away, then ask for a new one
    let logs = table.dir.path().join("logs");
    std::fs::rename(
        logs.join("app_frontend.log"),
        logs.join("app_frontend.log.1"),
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-USR1", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !logs.join("app_frontend.log").exists() {
        assert!(std::time::Instant::now() < deadline, "no new log file");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop_load.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    stop(host);
    let old = std::fs::read_to_string(logs.join("app_frontend.log.1")).unwrap();
    let new = read_log(&table, "app_frontend");
    let ids = ids.lock().unwrap();
    assert!(ids.len() > 50, "only {} requests", ids.len());
    let access_ids = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.contains("\"GET /2031 HTTP/1.1\""))
            .filter_map(|line| line.split("request_id=").nth(1))
            .map(|id| id.trim().to_owned())
            .collect()
    };
    let (before, after) = (access_ids(&old), access_ids(&new));
    assert!(
        !before.is_empty() && !after.is_empty(),
        "{} and {}",
        before.len(),
        after.len()
    );
    let mut logged: Vec<String> = before.into_iter().chain(after).collect();
    logged.sort();
    let mut sent = ids.clone();
    sent.sort();
    assert_eq!(
        logged, sent,
        "every request logged once, in one file or the other"
    );
}
