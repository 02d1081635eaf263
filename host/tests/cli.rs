//! `host check`, `host serve` and `host routes` on good and bad input, and
//! the process life cycle (graceful shutdown).

mod common;

use std::{thread, time::Duration};

use common::{Host, Table, library, mount};
use serde_json::json;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Each bad table: `check` and `serve` both exit 1 with the same message,
/// which names the file, line, column and key.
#[test]
fn mount_table_errors_name_file_line_and_key() {
    let frontend = library("frontend");
    let lib = frontend.display();
    let rows: Vec<(String, String)> = vec![
        (
            "{\n  \"mounts\": [\n    {\"name\": \"a\" \"prefix\": \"/\"}\n  ]\n}".into(),
            "plugins.json:3:18: mounts[0]: expected \",\" or \"}\"".into(),
        ),
        (
            format!(
                "{{\"mounts\": [\n  {{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"{lib}\"}},\n  {{\"name\": \"b\", \"prefix\": \"/b\", \"library\": \"{lib}\", \"colour\": 1}}\n]}}"
            ),
            "plugins.json:3:".into(),
        ),
        (
            format!("{{\"mounts\": [\n  {{\"name\": \"a\", \"library\": \"{lib}\"}}\n]}}"),
            "plugins.json:2:".into(),
        ),
        (
            format!(
                "{{\"mounts\": [\n  {{\"name\": \"a\", \"prefix\": \"admin\", \"library\": \"{lib}\"}}\n]}}"
            ),
            "plugins.json:2:27: mounts[0].prefix: \"admin\" must start with '/' (e.g. \"/admin\")"
                .into(),
        ),
        (
            format!(
                "{{\"mounts\": [\n  {{\"name\": \"a\", \"prefix\": \"/admin\", \"library\": \"{lib}\"}},\n  {{\"name\": \"b\", \"prefix\": \"/admin/\", \"library\": \"{lib}\"}}\n]}}"
            ),
            "plugins.json:3:27: mounts[1].prefix: duplicate prefix \"/admin/\" (also mounts[0].prefix)"
                .into(),
        ),
        (
            format!(
                "{{\"mounts\": [\n  {{\"name\": \"a\", \"prefix\": \"/a\", \"library\": \"{lib}\"}},\n  {{\"name\": \"a\", \"prefix\": \"/b\", \"library\": \"{lib}\"}}\n]}}"
            ),
            "plugins.json:3:12: mounts[1].name: duplicate name \"a\" (also mounts[0].name)".into(),
        ),
    ];
    let keys = [
        "",
        "mounts[1].colour: unknown field \"colour\"",
        "mounts[0]: missing required key \"prefix\"",
        "",
        "",
        "",
    ];
    for ((text, expected), key) in rows.iter().zip(keys) {
        let table = Table::from_text(text);
        for command in ["check", "serve"] {
            let output = table.run(command);
            assert_eq!(output.status.code(), Some(1), "{command} on {text}");
            let message = stderr(&output);
            assert!(
                message.contains(expected.as_str()) && message.contains(key),
                "{command} on {text}:\n  got {message}\n  expected {expected} / {key}"
            );
            assert!(message.contains(&table.file.display().to_string()));
        }
    }
}

#[test]
fn a_missing_table_file_is_named() {
    let table = Table::new(vec![]);
    std::fs::remove_file(&table.file).unwrap();
    let output = table.run("check");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("plugins.json: cannot read the mount table"));
}

/// Every kind of bad library gives one short line naming the file and the
/// reason, from `check` and from `serve`.
#[test]
fn bad_libraries_are_refused_with_a_clear_reason() {
    let table = Table::new(vec![]);
    let text_file = table.dir.path().join("libnotes.so");
    std::fs::write(&text_file, "just some text\n").unwrap();
    let cases = [
        (
            json!("missing/libgone.so"),
            "libgone.so: no such file".to_owned(),
        ),
        (
            json!(text_file),
            format!("{}: not a loadable library", text_file.display()),
        ),
        (
            json!(library("plain-cdylib")),
            "libplain_cdylib.so: not an app library: it exports no app root module".to_owned(),
        ),
        (
            json!(common::panic_abort_library()),
            "libprobe.so: built with panic = \"abort\", so one panicking request would kill the whole host"
                .to_owned(),
        ),
        (
            json!(library("abi-mismatch-app")),
            "libabi_mismatch_app.so: built against an incompatible contract: incompatible type size (expected 24, found 16)"
                .to_owned(),
        ),
    ];
    for (path, expected) in cases {
        let table = Table::new(vec![
            mount("frontend", "/", "frontend"),
            json!({"name": "bad", "prefix": "/bad", "library": path}),
        ]);
        std::fs::write(&text_file, "just some text\n").unwrap();
        let check = table.run("check");
        assert_eq!(check.status.code(), Some(1), "check {path}");
        let out = stdout(&check);
        assert!(out.contains("ok    frontend"), "{out}");
        let bad_line = out
            .lines()
            .find(|line| line.starts_with("FAIL  bad"))
            .unwrap_or_else(|| panic!("no FAIL line for {path}: {out}"));
        assert!(bad_line.contains(&expected), "check {path}:\n{bad_line}");
        // one line, not abi_stable's type dump
        assert!(bad_line.len() < 600, "{bad_line}");
        assert!(!out.contains("Type Layout"));

        let serve = table.run_args(&["serve", "--strict"]);
        assert_eq!(serve.status.code(), Some(1), "serve --strict {path}");
        let err = stderr(&serve);
        assert!(
            err.contains("mount \"bad\": ") && err.contains(&expected),
            "serve {path}:\n{err}"
        );
        assert!(!err.contains("Type Layout"), "{err}");
    }
}

#[test]
fn check_passes_a_good_table() {
    let table = Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]);
    let output = table.run("check");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("ok    frontend     /"), "{out}");
    assert!(out.contains("ok    admin        /admin"), "{out}");
    assert!(out.contains("all mounts ok"));
}

#[test]
fn the_table_and_the_address_come_from_the_environment_in_a_container() {
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let elsewhere = tempfile::tempdir().unwrap();
    let check = std::process::Command::new(common::host_binary())
        .arg("check")
        .env("HOST_CONFIG", &table.file)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("ok    frontend     /"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = std::process::Command::new(common::host_binary())
        .arg("serve")
        .env("HOST_CONFIG", &table.file)
        .env("HOST_LISTEN", format!("127.0.0.1:{port}"))
        .current_dir(elsewhere.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let answered = loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            break common::send_raw(
                addr,
                format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
                false,
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listened on {addr}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(answered.status, 200);
}

#[test]
fn an_app_whose_init_fails_is_reported() {
    let mut probe = mount("probe", "/", "probe");
    probe["config"] = json!({"fail_init": true});
    let table = Table::new(vec![probe]);
    let output = table.run("check");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("the app failed to start: init refused: config has fail_init")
    );
}

#[test]
fn routes_lists_full_rules_and_endpoints() {
    let table = Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
        mount("archive", "/admin/archive", "archive"),
    ]);
    let output = table.run("routes");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["Endpoint", "Methods", "Rule"]);
    assert!(
        rows.contains(&vec!["frontend.index", "GET,HEAD", "/<lang_code>/"]),
        "{out}"
    );
    // a blueprint's endpoints carry its name, its rules its prefix
    assert!(
        rows.contains(&vec![
            "admin.auth.login",
            "GET,HEAD",
            "/admin/<lang_code>/login"
        ]),
        "{out}"
    );
    assert!(
        rows.contains(&vec!["admin.index", "GET,HEAD", "/admin/"]),
        "{out}"
    );
    assert!(
        rows.contains(&vec![
            "archive.year",
            "GET,HEAD",
            "/admin/archive/<int:year>"
        ]),
        "{out}"
    );
}

#[test]
fn sigterm_finishes_the_in_flight_request_then_exits_cleanly() {
    let mut host = Host::start(Table::new(vec![mount("probe", "/", "probe")]));
    let addr = host.addr;
    let slow = thread::spawn(move || {
        common::send_raw(
            addr,
            format!("GET /sleep/1500 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            false,
        )
    });
    // let the request reach its handler
    thread::sleep(Duration::from_millis(400));
    host.terminate();
    let response = slow.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "slept 1500");
    let status = host.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    let log = host.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // no longer listening
    assert!(std::net::TcpStream::connect(addr).is_err());
}
