//! The development comforts: `--reload`, `host run`, `--debug`, `host schema`.

mod common;

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use common::{Host, Table, library, mount};
use serde_json::json;

/// Polls `path` until it answers `status` (up to 15 s).
fn eventually(host: &Host, path: &str, status: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(host.addr).is_ok() && host.get(path).status == status {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

fn start_reloading(table: &Table) -> Host {
    Host::start_command(table, &["serve", "--reload"])
}

#[test]
fn reload_picks_up_a_new_mount_and_keeps_serving_through_a_bad_table() {
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let host = start_reloading(&table);
    let pid = host.child.id();
    assert_eq!(host.get("/admin/").status, 404);

    let with_admin = json!({"mounts": [
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]});
    std::fs::write(&table.file, with_admin.to_string()).unwrap();
    assert!(eventually(&host, "/admin/hello", 200), "{}", host.log());
    assert!(host.get("/admin/hello").text().starts_with("Hello admin!"));
    let log = host.log();
    assert!(log.contains("restarting: changed:"), "{log}");
    // the same process, restarted in place, on the same socket
    assert_eq!(host.child.id(), pid);

    std::fs::write(&table.file, "{ \"mounts\": [ oops").unwrap();
    let log = host.wait_for_log("does not load, so the running one keeps serving");
    assert!(
        log.contains("does not load, so the running one keeps serving"),
        "{log}"
    );
    assert!(log.contains("plugins.json:1:"), "{log}");
    assert_eq!(host.get("/admin/hello").status, 200);

    // a table naming a missing library is refused the same way
    let missing = json!({"mounts": [
        mount("frontend", "/", "frontend"),
        {"name": "gone", "prefix": "/gone", "library": "nowhere/libgone.so"},
    ]});
    std::fs::write(&table.file, missing.to_string()).unwrap();
    let log = host.wait_for_log("libgone.so: no such file");
    assert!(log.contains("libgone.so: no such file"), "{log}");
    assert_eq!(host.get("/admin/hello").status, 200);
}

#[test]
fn apps_are_told_when_the_host_reloads() {
    // under --reload the SDK reads an app's templates from disk, and again
    // when they change (its own tests show that part)
    let table = Table::new(vec![mount("probe", "/", "probe")]);
    let reloading = start_reloading(&table);
    assert!(
        eventually(&reloading, "/reloading", 200),
        "{}",
        reloading.log()
    );
    assert_eq!(reloading.get("/reloading").text(), "true");
    drop(reloading);
    let plain = Host::start_on(&table);
    assert_eq!(plain.get("/reloading").text(), "false");
}

#[test]
fn run_serves_one_library_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("static/site.css"), "b{}").unwrap();
    let lib = library("admin");
    let host = Host::start_args(
        dir.path(),
        &[
            "run".as_ref(),
            lib.as_os_str(),
            "--prefix".as_ref(),
            "/back".as_ref(),
            "--static-folder".as_ref(),
            "static".as_ref(),
        ],
    );
    let page = host.get("/back/hello");
    assert_eq!(page.status, 200);
    // the mount is named after the app
    assert_eq!(
        page.text(),
        format!("Hello admin! request.url = http://{}/back/hello", host.addr)
    );
    assert_eq!(host.get("/back/static/site.css").text(), "b{}");
    assert_eq!(host.get("/").status, 404);
    assert!(dir.path().join("logs/app_admin.log").exists());
}

#[test]
fn debug_mode_shows_the_panic_and_backtrace_to_local_clients() {
    let table = Table::new(vec![mount("probe", "/", "probe")]);
    let host = Host::start_command(&table, &["serve", "--debug"]);
    assert!(host.log().contains("debug mode is on"));
    let page = host.get("/panic?x=%3Cb%3E");
    assert_eq!(page.status, 500);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(html.contains("the handler panicked"), "{html}");
    assert!(html.contains("app <b>probe</b>"), "{html}");
    assert!(html.contains("<code>GET /panic?x=%3Cb%3E</code>"), "{html}");
    assert!(html.contains("probe panic on purpose"), "{html}");
    // the app-side backtrace, captured by the app's panic hook
    assert!(html.contains("probe::build"), "{html}");
    // a handler error (not a panic) shows its message too
    let failed = host.get("/error").text();
    assert!(failed.contains("probe failure on purpose"), "{failed}");

    // without --debug: the plain 500
    let plain = Host::start(Table::new(vec![mount("probe", "/", "probe")]));
    assert_eq!(plain.get("/panic").text(), "500 Internal Server Error\n");
}

#[test]
fn schema_describes_the_mount_table_and_tables_may_name_it() {
    let output = Command::new(common::host_binary())
        .arg("schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["mounts"]));
    let raw_mount = &schema["$defs"]["RawMount"];
    assert_eq!(raw_mount["required"], json!(["name", "prefix", "library"]));
    assert!(
        raw_mount["properties"]["prefix"]["description"]
            .as_str()
            .unwrap()
            .contains("starting with '/'")
    );
    // databases: declared by name with a URL, granted to mounts by name
    assert_eq!(
        schema["properties"]["databases"]["additionalProperties"]["$ref"],
        "#/$defs/RawDatabase"
    );
    assert_eq!(schema["$defs"]["RawDatabase"]["required"], json!(["url"]));
    assert_eq!(
        raw_mount["properties"]["databases"]["items"]["type"],
        "string"
    );

    let table = Table::from_value(json!({
        "$schema": "./plugins.schema.json",
        "mounts": [mount("frontend", "/", "frontend")],
    }));
    let check = table.run("check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
