//! The probes load balancers and orchestrators ask: `/_host/livez` (the
//! process serves) and `/_host/readyz` (every mount loaded, every database
//! reachable, not stopping), and the order of a stop: readiness fails
//! first, the host keeps serving for `drain_delay_ms`, then drains.

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use common::{Host, Table, blog::site_table_value, mount};
use serde_json::json;

#[test]
fn ready_when_every_mount_loaded_and_every_database_answers() {
    let table = Table::from_value(site_table_value());
    let host = Host::start_on(&table);
    for path in ["/_host/livez", "/_host/readyz"] {
        let probe = host.get(path);
        assert_eq!(
            (probe.status, probe.text().as_str()),
            (200, "ok\n"),
            "{path}"
        );
    }
    // a probe is the host's: never an app's, whatever the Host header
    let elsewhere = host.request("GET", "/_host/readyz", &[("Host", "10.0.0.7:8080")], b"");
    assert_eq!(elsewhere.status, 200);

    // the database file gone from under the running host: not ready
    let database = table.dir.path().join("data/app.db");
    std::fs::remove_file(&database).unwrap();
    let probe = host.get("/_host/readyz");
    assert_eq!(probe.status, 503);
    let text = probe.text();
    assert!(text.starts_with("not ready\n"), "{text}");
    assert!(text.contains("database blog: "), "{text}");
    assert_eq!(host.get("/_host/livez").status, 200, "alive all the same");
}

#[test]
fn a_failed_mount_makes_the_host_unready_and_only_administrators_read_why() {
    let mut value = json!({"mounts": [
        mount("frontend", "/", "frontend"),
        {"name": "admin", "prefix": "/admin", "library": "missing/libadmin.so"},
    ]});
    value["trusted_proxies"] = json!(["127.0.0.1"]);
    let host = Host::start(Table::from_value(value));
    let local = host.get("/_host/readyz");
    assert_eq!(local.status, 503);
    assert_eq!(local.text(), "not ready\nmount admin failed to load\n");
    // a client behind the proxy is told no more than that
    let outside = host.request(
        "GET",
        "/_host/readyz",
        &[("X-Forwarded-For", "203.0.113.9")],
        b"",
    );
    assert_eq!(
        (outside.status, outside.text().as_str()),
        (503, "not ready\n")
    );
    assert_eq!(host.get("/_host/livez").status, 200);
}

#[test]
fn on_sigterm_readiness_fails_first_and_the_host_serves_until_the_delay_ends() {
    let mut value = site_table_value();
    value["drain_delay_ms"] = json!(3000);
    let mut host = Host::start(Table::from_value(value));
    assert_eq!(host.get("/_host/readyz").status, 200);
    let asked = Instant::now();
    host.terminate();
    // soon not ready, but still answering everything else
    let deadline = asked + Duration::from_millis(2500);
    while host.get("/_host/readyz").status != 503 {
        assert!(Instant::now() < deadline, "readyz never failed");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(host.get("/_host/readyz").text(), "not ready\nstopping\n");
    assert_eq!(
        host.get("/hello").status,
        200,
        "new connections still served"
    );
    assert_eq!(host.get("/_host/livez").status, 200);
    let status = host.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() >= Duration::from_millis(3000),
        "stopped before the drain delay: {:?}",
        asked.elapsed()
    );
    let log = host.log();
    assert!(
        log.contains("not ready: serving 3000 ms more before draining"),
        "{log}"
    );
}

#[test]
fn probes_can_move_or_be_turned_off() {
    let mut value = site_table_value();
    value["livez_path"] = json!("/alive");
    value["readyz_path"] = json!("");
    let host = Host::start(Table::from_value(value));
    assert_eq!(host.get("/alive").text(), "ok\n");
    assert_eq!(host.get("/_host/livez").status, 404);
    assert_eq!(host.get("/_host/readyz").status, 404);
}
