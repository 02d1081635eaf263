//! Named databases on the real host: what a mount may open, its own
//! database by default, namespaced migrations across restarts, the
//! statements the host refuses, and who may delete an upload. The probe app
//! runs the SQL a test sends it and answers what came back.

mod common;

use std::path::Path;

use common::{Host, HttpResponse, Table, mount, snapshot};
use serde_json::{Value, json};

/// Runs `sql` on the database `database` (`""`: the default) of the probe
/// mounted at `prefix`; its rows, or `{"error": ...}` / `{"open_error": ...}`.
fn sql(host: &Host, prefix: &str, database: &str, sql: &str) -> Value {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("database", database)
        .append_pair("sql", sql)
        .finish();
    let response = host.request(
        "POST",
        &format!("{prefix}/db/sql"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{sql}: {}", response.text());
    response.json()
}

fn rows(answer: &Value) -> &Value {
    answer
        .get("rows")
        .unwrap_or_else(|| panic!("no rows: {answer}"))
}

fn refusal(answer: &Value) -> String {
    assert_eq!(answer["error"]["kind"], "Refused", "{answer}");
    answer["error"]["message"].as_str().unwrap().to_owned()
}

fn probe(name: &str, prefix: &str, databases: Option<&[&str]>) -> Value {
    let mut entry = mount(name, prefix, "probe");
    if let Some(databases) = databases {
        entry["databases"] = json!(databases);
    }
    entry
}

fn restart(host: &mut Host, table: &Table) -> Host {
    host.terminate();
    assert!(host.wait_exit().success());
    Host::start_on(table)
}

/// The files of a folder, without the write-ahead logs of open databases.
fn files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_mount_listing_no_database_gets_its_own_made_on_first_use_and_kept() {
    let table = Table::new(vec![
        probe("notes", "/notes", None),
        probe("other", "/other", None),
    ]);
    let data = table.dir.path().join("data");
    let mut host = Host::start_on(&table);
    assert!(!data.join("notes.db").exists(), "made on first use only");
    let created = sql(&host, "/notes", "", "CREATE TABLE notes (text TEXT)");
    assert_eq!(created["database"], "notes");
    sql(&host, "/notes", "", "INSERT INTO notes VALUES ('kept')");
    assert!(data.join("notes.db").is_file());
    // another mount's own database is another file
    let elsewhere = sql(&host, "/other", "", "SELECT text FROM notes");
    assert!(
        elsewhere["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such table: notes"),
        "{elsewhere}"
    );
    let mut host = restart(&mut host, &table);
    assert_eq!(
        rows(&sql(&host, "/notes", "", "SELECT text FROM notes")),
        &json!([["kept"]])
    );
    // a clean stop folds the write-ahead logs back
    host.terminate();
    assert!(host.wait_exit().success());
    assert_eq!(
        files(&data),
        ["notes.db", "other.db", "secret.key", "uploads"]
    );
}

#[test]
fn a_mount_may_use_only_the_databases_it_lists() {
    let table = Table::from_value(json!({
        "databases": {
            "blog": {"url": "sqlite:blog.db"},
            "stats": {"url": "sqlite:stats/stats.db"},
        },
        "mounts": [
            probe("reader", "/", Some(&["blog"])),
            probe("counter", "/counter", Some(&["stats", "blog"])),
        ],
    }));
    let host = Host::start_on(&table);
    let file = table.file.display().to_string();
    let denied = sql(&host, "", "stats", "SELECT 1");
    assert_eq!(
        denied["open_error"],
        format!(
            "the mount \"reader\" may not use the database \"stats\": add \"stats\" to mounts[0].databases in {file} (the first listed is the mount's default)"
        )
    );
    let unknown = sql(&host, "", "nope", "SELECT 1");
    assert_eq!(
        unknown["open_error"],
        format!(
            "the mount \"reader\" may not use the database \"nope\": declare it under \"databases\" and add \"nope\" to mounts[0].databases in {file} (the first listed is the mount's default)"
        )
    );
    // the first listed is the default; the others come by name
    assert_eq!(
        sql(&host, "/counter", "", "CREATE TABLE hits (n)")["database"],
        "stats"
    );
    assert!(table.dir.path().join("data/stats/stats.db").is_file());
    sql(&host, "/counter", "blog", "CREATE TABLE shared (n)");
    sql(&host, "/counter", "blog", "INSERT INTO shared VALUES (7)");
    assert_eq!(
        rows(&sql(&host, "", "", "SELECT n FROM shared")),
        &json!([[7]])
    );
    let hidden = sql(&host, "", "", "SELECT n FROM hits");
    assert!(
        hidden["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such table: hits"),
        "{hidden}"
    );
}

#[test]
fn the_host_refuses_what_would_reach_beyond_a_mounts_databases_or_outlive_a_call() {
    let table = Table::from_value(json!({
        "databases": {"blog": {"url": "sqlite:blog.db"}},
        "mounts": [probe("blog", "/blog", Some(&["blog"])), probe("app", "/", None)],
    }));
    let host = Host::start_on(&table);
    let data = table.dir.path().join("data");
    sql(
        &host,
        "/blog",
        "",
        "CREATE TABLE users (name TEXT, password_hash TEXT)",
    );
    sql(&host, "", "", "CREATE TABLE t (n INTEGER)");
    let blog_file = data.join("blog.db").display().to_string();
    let copy = data.join("copy.db");
    let refused = [
        format!("ATTACH '{blog_file}' AS blog"),
        format!("VACUUM INTO '{}'", copy.display()),
        "SELECT load_extension('/tmp/evil')".to_owned(),
        "PRAGMA journal_mode = DELETE".to_owned(),
        "PRAGMA foreign_keys = OFF".to_owned(),
        "PRAGMA writable_schema = ON".to_owned(),
        "BEGIN".to_owned(),
        "SAVEPOINT s".to_owned(),
        "CREATE TEMP TABLE scratch (x)".to_owned(),
        "DELETE FROM _host_migrations".to_owned(),
    ];
    for statement in &refused {
        let message = refusal(&sql(&host, "", "", statement));
        assert!(
            message.contains("not allowed") || message.contains("belongs to the host"),
            "{statement}: {message}"
        );
    }
    assert!(!copy.exists());
    assert!(
        refusal(&sql(&host, "", "", "PRAGMA journal_mode = DELETE"))
            .starts_with("PRAGMA journal_mode = DELETE is not allowed: the host owns the settings")
    );
    // another mount's tables are out of reach
    let users = sql(&host, "", "", "SELECT password_hash FROM users");
    assert!(
        users["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such table: users"),
        "{users}"
    );
    // the refused BEGIN left no connection in a transaction: every read
    // sees the latest write
    for n in 1..=5 {
        sql(&host, "", "", &format!("INSERT INTO t VALUES ({n})"));
        assert_eq!(
            rows(&sql(&host, "", "", "SELECT COUNT(*) FROM t")),
            &json!([[n]])
        );
    }
    // what only looks is allowed
    assert_eq!(
        rows(&sql(&host, "", "", "PRAGMA foreign_keys")),
        &json!([[1]])
    );
    assert_eq!(
        rows(&sql(
            &host,
            "",
            "",
            "SELECT name FROM pragma_table_info('t')"
        )),
        &json!([["n"]])
    );
}

fn post(host: &Host, path: &str, body: &[u8]) -> HttpResponse {
    host.request("POST", path, &[], body)
}

#[test]
fn an_upload_is_deleted_only_through_a_mount_sharing_the_default_database() {
    let table = Table::from_value(json!({
        "databases": {"blog": {"url": "sqlite:blog.db"}},
        "mounts": [
            probe("writer", "/writer", Some(&["blog"])),
            probe("editor", "/editor", Some(&["blog"])),
            probe("stranger", "/", None),
        ],
    }));
    let host = Host::start_on(&table);
    let uploads = table.dir.path().join("data/uploads");
    let stored = post(&host, "/writer/uploads-store", b"the writer's file");
    assert_eq!(stored.status, 200, "{}", stored.text());
    let name = stored.text();
    assert!(uploads.join(&name).is_file());
    let refused = post(&host, &format!("/uploads-delete/{name}"), b"");
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.text(),
        format!(
            "deleting upload \"{name}\" failed: the upload \"{name}\" was stored through a mount whose default database is not \"stranger\": an app may delete only the uploads stored through a mount that shares its default database"
        )
    );
    assert!(uploads.join(&name).is_file(), "still there");
    let deleted = post(&host, &format!("/editor/uploads-delete/{name}"), b"");
    assert_eq!((deleted.status, deleted.text()), (200, "true".to_owned()));
    assert!(!uploads.join(&name).exists());
    // its own, and one that is not there
    let own = post(&host, "/uploads-store", b"mine").text();
    assert_eq!(
        post(&host, &format!("/uploads-delete/{own}"), b"").text(),
        "true"
    );
    assert_eq!(
        post(&host, &format!("/uploads-delete/{own}"), b"").text(),
        "false"
    );
}

/// A probe mount that migrates namespace `notes` with `steps` at start.
fn migrating(steps: &[&str]) -> Value {
    let mut entry = probe("notes", "/notes", None);
    entry["config"] = json!({"migrations": {"namespace": "notes", "steps": steps}});
    entry
}

#[test]
fn a_changed_or_unknown_migration_step_stops_the_mount_with_the_namespace_and_the_step() {
    let step = "CREATE TABLE notes (text TEXT)";
    let table = Table::new(vec![migrating(&[
        step,
        "CREATE INDEX by_text ON notes (text)",
    ])]);
    let mut host = Host::start_on(&table);
    sql(&host, "/notes", "", "INSERT INTO notes VALUES ('kept')");
    host.terminate();
    assert!(host.wait_exit().success());

    let cases = [
        (
            vec![step, "CREATE INDEX by_text ON notes (text DESC)"],
            "database \"notes\": migration \"notes\" step 2 was changed after it was applied on ",
        ),
        (
            vec![step],
            "database \"notes\": migration \"notes\" is at step 2, but this build of the app knows only 1 steps: run a newer build of the app",
        ),
    ];
    for (steps, expected) in cases {
        std::fs::write(
            &table.file,
            serde_json::to_string(&json!({"mounts": [migrating(&steps)]})).unwrap(),
        )
        .unwrap();
        let check = table.run("check");
        let out = String::from_utf8_lossy(&check.stdout);
        assert_eq!(check.status.code(), Some(1), "{out}");
        assert!(out.contains(expected), "check:\n{out}");
        let strict = table.run_args(&["serve", "--strict"]);
        let err = String::from_utf8_lossy(&strict.stderr);
        assert_eq!(strict.status.code(), Some(1), "{err}");
        assert!(err.contains(expected), "serve --strict:\n{err}");
        // served without --strict, its prefix answers 503 and the rest serves
        let host = Host::start_on(&table);
        assert_eq!(host.get("/notes/").status, 503);
        assert!(host.log().contains(expected), "{}", host.log());
    }
    // with the steps it knew, everything is where it was
    std::fs::write(
        &table.file,
        serde_json::to_string(&json!({
            "mounts": [migrating(&[step, "CREATE INDEX by_text ON notes (text)"])]
        }))
        .unwrap(),
    )
    .unwrap();
    let host = Host::start_on(&table);
    assert_eq!(
        rows(&sql(&host, "/notes", "", "SELECT text FROM notes")),
        &json!([["kept"]])
    );
}

#[test]
fn host_check_and_host_routes_only_look() {
    let help = Table::new(vec![probe("notes", "/", None)]).run_args(&["check", "--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains(
            "Only looks: no migration runs, and no database, secret key, folder or file is created or changed"
        ),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
    let step = "CREATE TABLE notes (text TEXT)";
    // a site that never ran: nothing is made
    let table = Table::new(vec![migrating(&[step])]);
    for command in ["check", "routes"] {
        let output = table.run(command);
        assert!(output.status.success(), "{command}: {output:?}");
        assert!(
            !table.dir.path().join("data").exists(),
            "{command} made the data folder"
        );
    }
    let out = String::from_utf8_lossy(&table.run("check").stdout).into_owned();
    assert!(
        out.contains(&format!(
            "database notes ({}):\n  migrations \"notes\": 0 of 1 steps applied, 1 pending (they ran on a copy of the schema; the host applies them when it starts)",
            table.dir.path().join("data/notes.db").display()
        )),
        "{out}"
    );

    // a site that ran, stopped, and now has a new step to apply
    let mut host = Host::start_on(&table);
    sql(&host, "/notes", "", "INSERT INTO notes VALUES ('kept')");
    host.terminate();
    assert!(host.wait_exit().success());
    std::fs::write(
        &table.file,
        serde_json::to_string(
            &json!({"mounts": [migrating(&[step, "ALTER TABLE notes ADD COLUMN at INTEGER"])]}),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::remove_file(table.dir.path().join("data/secret.key")).unwrap();
    let data = table.dir.path().join("data");
    let before = snapshot(&data);
    let out = String::from_utf8_lossy(&table.run("check").stdout).into_owned();
    assert!(
        out.contains("migrations \"notes\": 1 of 2 steps applied, 1 pending"),
        "{out}"
    );
    assert!(table.run("routes").status.success());
    assert_eq!(snapshot(&data), before, "check and routes changed nothing");
    // a step that would fail is found before the host runs it
    std::fs::write(
        &table.file,
        serde_json::to_string(
            &json!({"mounts": [migrating(&[step, "ALTER TABLE missing ADD COLUMN at INTEGER"])]}),
        )
        .unwrap(),
    )
    .unwrap();
    let check = table.run("check");
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "database \"notes\": migration \"notes\" step 2 would fail: no such table: missing"
        ),
        "{out}"
    );
    assert_eq!(snapshot(&data), before);
}
