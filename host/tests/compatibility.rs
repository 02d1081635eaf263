//! Apps and hosts of different contract versions work together
//! (`docs/compatibility.md`): an app built against contract 1.0 loads and
//! serves on this host, and an app built against this contract, loaded by
//! a host of 1.0, gets a clear error from each service that host lacks.
//! Both sides of 1.0 are built from `testdata/contract-1.0`.

mod common;

use std::process::Command;

use common::{Host, Table, binary, library, mount};
use serde_json::json;

#[test]
fn an_app_built_against_contract_1_0_loads_and_serves_with_its_own_database() {
    let table = Table::new(vec![
        mount("old", "/old", "contract-1-0-app"),
        mount("probe", "/", "probe"),
    ]);
    let check = table.run("check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.contains("(app \"greeter\", contract 1.0.0)"), "{out}");
    let host = Host::start_on(&table);
    assert_eq!(
        host.get("/old/").text(),
        "hello from an app of contract 1.0, mounted as old"
    );
    // its migrations counted in user_version, as that contract had them,
    // on the database of its own that a mount listing none gets
    assert_eq!(
        host.get("/old/db").text(),
        "visits: 1 (schema version before: 0)"
    );
    assert_eq!(
        host.get("/old/db").text(),
        "visits: 2 (schema version before: 1)"
    );
    assert!(table.dir.path().join("data/old.db").is_file());
    // the current app beside it
    assert_eq!(
        host.get("/").text(),
        format!("Hello probe! request.url = http://{}/", host.addr)
    );
}

#[test]
fn an_app_of_a_newer_contract_on_an_older_host_gets_a_clear_error_for_each_missing_service() {
    let probe = library("probe");
    let run = |path: &str| {
        let output = Command::new(binary("old-host"))
            .arg(&probe)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // the app loads and serves on a host of 1.0
    assert_eq!(
        run("/"),
        "200\nHello probe! request.url = http://localhost/\n"
    );
    let answer = run("/db/services");
    let (status, body) = answer.split_once('\n').unwrap();
    assert_eq!(status, "200", "not a panic, not a 500: {answer}");
    let services: serde_json::Value = serde_json::from_str(body).unwrap();
    let missing = |service: &str| {
        format!(
            "this host does not offer {service}: it needs a host built against app-api-abi 1.1.0 or newer (upgrade the host)"
        )
    };
    assert_eq!(
        services,
        json!({
            // the mount's database is the 1.0 host's one site database
            "db": {"ok": ""},
            "database": {"error": missing("named databases (db_open)")},
            "migrate": {"error": missing("namespaced migrations (db_migrate_in)")},
            // the calls of 1.0 reach that host, which answers for itself
            "query": {"error": "the old host fixture keeps no database"},
            "transaction": {"error": "the old host fixture keeps no database"},
        })
    );
}
