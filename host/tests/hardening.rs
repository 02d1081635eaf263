//! A failed app does not take the site down; health and metrics.

mod common;

use common::{Host, Table, mount};
use serde_json::json;

fn site_with_a_broken_admin() -> Table {
    Table::new(vec![
        mount("frontend", "/", "frontend"),
        json!({"name": "admin", "prefix": "/admin", "library": "missing/libadmin.so"}),
    ])
}

#[test]
fn a_mount_that_fails_to_load_answers_503_and_the_rest_serve() {
    let host = Host::start(site_with_a_broken_admin());
    assert_eq!(host.get("/en/").status, 200);
    for path in ["/admin/", "/admin/users/5", "/admin/static/style.css"] {
        let response = host.get(path);
        // never falls through to the frontend at `/`
        assert_eq!(response.status, 503, "{path}");
        assert!(
            response
                .text()
                .contains("the app mounted at /admin failed to start"),
            "{path}: {}",
            response.text()
        );
        // the reason stays in the log, not in the answer
        assert!(!response.text().contains("missing/libadmin.so"));
    }
    let log = host.wait_for_log("not serving this mount");
    assert!(
        log.contains("libadmin.so: no such file") && log.contains("mount=admin"),
        "{log}"
    );

    let health = host.get("/_host/health");
    assert_eq!(health.status, 503);
    assert_eq!(health.header("content-type"), Some("application/json"));
    let report = health.json();
    assert_eq!(report["status"], "degraded");
    assert_eq!(report["mounts"][0]["state"], "loaded");
    assert_eq!(report["mounts"][1]["name"], "admin");
    assert_eq!(report["mounts"][1]["state"], "failed");
    assert!(
        report["mounts"][1]["error"]
            .as_str()
            .unwrap()
            .contains("no such file")
    );

    let metrics = host.get("/_host/metrics").text();
    assert!(metrics.contains("host_load_failures 1"), "{metrics}");
    assert!(
        metrics.contains("host_requests_total{app=\"admin\",status=\"5xx\"} 3"),
        "{metrics}"
    );
}

#[test]
fn strict_mode_and_check_refuse_a_broken_table() {
    let table = site_with_a_broken_admin();
    let strict = table.run_args(&["serve", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("libadmin.so: no such file"));
    assert_eq!(table.run("check").status.code(), Some(1));
}

#[test]
fn health_and_metrics_report_a_healthy_site() {
    let host = Host::start(Table::new(vec![
        mount("probe", "/", "probe"),
        mount("admin", "/admin", "admin"),
    ]));
    let health = host.get("/_host/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(host.get("/count").status, 200);
    assert_eq!(host.get("/panic").status, 500);
    assert_eq!(host.get("/admin/hello").status, 200);
    assert_eq!(host.get("/admin%2Fx").status, 400);
    let response = host.get("/_host/metrics");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let metrics = response.text();
    for line in [
        "host_requests_total{app=\"probe\",status=\"2xx\"} 1",
        "host_requests_total{app=\"probe\",status=\"5xx\"} 1",
        "host_requests_total{app=\"admin\",status=\"2xx\"} 1",
        "host_requests_total{app=\"_host\",status=\"4xx\"} 1",
        "host_handler_panics_total{app=\"probe\"} 1",
        "host_request_duration_seconds_count{app=\"probe\"} 2",
        "host_requests_in_flight{app=\"admin\"} 0",
        "host_load_failures 0",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    assert_eq!(host.request("POST", "/_host/health", &[], b"").status, 405);
}

#[test]
fn the_host_paths_can_be_moved_or_turned_off() {
    let host = Host::start(Table::from_value(json!({
        "health_path": "/healthz",
        "metrics_path": "",
        "mounts": [mount("probe", "/", "probe")],
    })));
    assert_eq!(host.get("/healthz").status, 200);
    // turned off or moved: the app answers those paths
    assert_eq!(host.get("/_host/metrics").status, 404);
    assert_eq!(host.get("/_host/health").status, 404);

    let bad = Table::from_value(json!({
        "health_path": "healthz",
        "mounts": [mount("probe", "/", "probe")],
    }));
    let output = bad.run("check");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("health_path: \"healthz\" must be a path starting with '/'")
    );
}

#[test]
fn a_saturated_app_does_not_starve_the_others_and_gets_503_and_504() {
    let mut admin = mount("admin", "/admin", "probe");
    admin["max_concurrency"] = json!(2);
    admin["queue_timeout_ms"] = json!(500);
    admin["timeout_ms"] = json!(1500);
    let host = Host::start(Table::new(vec![mount("frontend", "/", "probe"), admin]));
    // a first slow call moves admin's handlers onto its own threads
    assert_eq!(host.get("/admin/sleep/250").status, 200);
    host.wait_for_log("handlers run on the mount's own threads");

    let sleepers: Vec<_> = (0..4)
        .map(|_| host.get_in_background("/admin/sleep/3000"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    // while admin is saturated, the frontend keeps answering
    for _ in 0..20 {
        assert_eq!(host.get("/count").status, 200);
    }
    let mut statuses: Vec<u16> = sleepers
        .into_iter()
        .map(|sleeper| {
            let response = sleeper.join().unwrap();
            if response.status == 503 {
                assert_eq!(response.header("retry-after"), Some("1"));
            }
            response.status
        })
        .collect();
    statuses.sort_unstable();
    // two ran and outlived their timeout; two waited for a slot too long
    assert_eq!(statuses, [503, 503, 504, 504]);
    let log = host.wait_for_log("slow handler finished after");
    assert!(log.contains("no answer within 1.5s: 504 sent"), "{log}");
    assert!(log.contains("slow handler finished after"), "{log}");
}

fn echoing_behind(trusted: serde_json::Value) -> Host {
    let mut admin = mount("admin", "/admin", "probe");
    admin["config"] = json!({"catch_all": true});
    Host::start(Table::from_value(json!({
        "trusted_proxies": trusted,
        "trusted_headers": {"x_host": 1, "x_prefix": 1},
        "allowed_hosts": ["blog.example.com", "127.0.0.1"],
        "mounts": [mount("frontend", "/", "frontend"), admin],
    })))
}

const FORWARDED: [(&str, &str); 4] = [
    ("X-Forwarded-For", "198.51.100.1, 203.0.113.9"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "blog.example.com"),
    ("X-Forwarded-Prefix", "/site"),
];

#[test]
fn a_trusted_proxy_shapes_the_client_url_prefix_and_redirects() {
    let host = echoing_behind(json!(["127.0.0.1"]));
    let response = host.request("GET", "/admin/users/5?x=1", &FORWARDED, b"");
    let echo = response.json();
    assert_eq!(echo["remote_addr"], "203.0.113.9");
    assert_eq!(echo["scheme"], "https");
    assert_eq!(echo["host"], "blog.example.com");
    assert_eq!(echo["script_root"], "/site/admin");
    assert_eq!(
        echo["url"],
        "https://blog.example.com/site/admin/users/5?x=1"
    );
    // url_for follows the outer prefix too
    let links = host.request("GET", "/admin/links", &FORWARDED, b"").json();
    assert_eq!(links["index"], "/site/admin/");
    // the frontend's error pages are rendered once per script root and
    // kept: one kept for a root is never served under another
    for _ in 0..2 {
        let direct = host.get("/no/such/page");
        assert_eq!(direct.status, 404);
        assert!(direct.text().contains("href=\"/static/style.css\""));
        let proxied = host.request("GET", "/no/such/page", &FORWARDED, b"");
        assert_eq!(proxied.status, 404);
        assert!(
            proxied.text().contains("href=\"/site/static/style.css\""),
            "{}",
            proxied.text()
        );
    }
    // the host's own redirect keeps the outer prefix
    let redirect = host.request("GET", "/admin", &FORWARDED, b"");
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("/site/admin/"));
    // the access log names the real client
    let log = host.wait_for_log_file("app_admin", "203.0.113.9 \"GET /admin/users/5?x=1");
    assert!(
        log.contains("203.0.113.9 \"GET /admin/users/5?x=1"),
        "{log}"
    );
}

#[test]
fn forwarding_headers_from_anyone_else_are_ignored() {
    let host = echoing_behind(json!(["10.20.30.40", "192.168.0.0/16"]));
    let echo = host
        .request("GET", "/admin/users/5", &FORWARDED, b"")
        .json();
    assert!(
        echo["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(echo["scheme"], "http");
    assert_eq!(echo["host"], host.addr.to_string());
    assert_eq!(echo["script_root"], "/admin");
    let redirect = host.request("GET", "/admin", &FORWARDED, b"");
    assert_eq!(redirect.header("location"), Some("/admin/"));

    let bad = Table::from_value(json!({
        "trusted_proxies": ["10.0.0.0/40"],
        "mounts": [mount("frontend", "/", "frontend")],
    }));
    let output = bad.run("check");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("trusted_proxies: \"10.0.0.0/40\" is not an address or a network")
    );
}
