use std::{collections::BTreeMap, time::SystemTime};

use abi_stable::std_types::RString;

use super::*;

fn database() -> (tempfile::TempDir, Sqlite) {
    let folder = tempfile::tempdir().unwrap();
    let database = open(&folder.path().join("app.db"));
    (folder, database)
}

fn open(path: &Path) -> Sqlite {
    Sqlite::open("site", path, 4, &Vec::new).unwrap()
}

fn text(value: &str) -> DbValue {
    DbValue::Text(value.into())
}

fn column(db: &Sqlite, sql: &str) -> Vec<DbValue> {
    db.query(sql, &[])
        .unwrap()
        .rows
        .iter()
        .map(|row| row[0].clone())
        .collect()
}

#[test]
fn statements_bind_numbered_parameters_and_return_typed_rows() {
    let (_folder, db) = database();
    db.migrate(
        "t",
        &["CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB)"],
        false,
    )
    .unwrap();
    let inserted = db
        .query(
            "INSERT INTO t (name, score, data) VALUES (?1, ?2, ?3) RETURNING id",
            &[
                text("a"),
                DbValue::Real(1.5),
                DbValue::Blob(vec![0, 1].into()),
            ],
        )
        .unwrap();
    assert_eq!(
        inserted.rows.as_slice(),
        [RVec::from(vec![DbValue::Integer(1)])]
    );
    assert_eq!(inserted.rows_affected, 1);
    let swapped = db
        .query("SELECT ?2, ?1", &[text("one"), text("two")])
        .unwrap();
    assert_eq!(swapped.rows[0].as_slice(), [text("two"), text("one")]);
    let rows = db
        .query("SELECT name, score, data, NULL AS absent FROM t", &[])
        .unwrap();
    let columns: Vec<&str> = rows.columns.iter().map(RString::as_str).collect();
    assert_eq!(columns, ["name", "score", "data", "absent"]);
    assert_eq!(
        rows.rows[0].as_slice(),
        [
            text("a"),
            DbValue::Real(1.5),
            DbValue::Blob(vec![0, 1].into()),
            DbValue::Null
        ]
    );
}

#[test]
fn errors_are_values_with_a_portable_kind() {
    let (_folder, db) = database();
    db.migrate("t", &["CREATE TABLE t (name TEXT UNIQUE NOT NULL)"], false)
        .unwrap();
    db.query("INSERT INTO t VALUES (?1)", &[text("a")]).unwrap();
    let kind = |sql: &str, params: &[DbValue]| db.query(sql, params).unwrap_err().kind;
    assert_eq!(
        kind("INSERT INTO t VALUES (?1)", &[text("a")]),
        Kind::Constraint
    );
    assert_eq!(kind("SELEC 1", &[]), Kind::Sql);
    assert_eq!(kind("SELECT * FROM missing", &[]), Kind::Sql);
    assert_eq!(kind("SELECT ?1", &[]), Kind::Sql);
    assert_eq!(kind("SELECT $1", &[text("a")]), Kind::Sql);
    assert_eq!(kind("SELECT ?", &[text("a")]), Kind::Sql);
    let message = db
        .query("INSERT INTO t VALUES (?1)", &[text("a")])
        .unwrap_err()
        .message;
    assert!(
        message.contains("UNIQUE constraint failed: t.name"),
        "{message}"
    );
}

#[test]
fn a_failed_transaction_leaves_nothing() {
    let (_folder, db) = database();
    db.migrate("t", &["CREATE TABLE t (name TEXT UNIQUE)"], false)
        .unwrap();
    let statement = |name: &str| DbStatement {
        sql: "INSERT INTO t VALUES (?1)".into(),
        params: vec![text(name)].into(),
    };
    let failure = db
        .transaction(&[statement("a"), statement("b"), statement("a")])
        .unwrap_err();
    assert_eq!(failure.kind, Kind::Constraint);
    assert!(
        failure
            .message
            .starts_with("statement 3 of the transaction: "),
        "{}",
        failure.message
    );
    assert!(db.query("SELECT * FROM t", &[]).unwrap().rows.is_empty());
    let done = db.transaction(&[statement("a"), statement("b")]).unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(db.query("SELECT * FROM t", &[]).unwrap().rows.len(), 2);
}

#[test]
fn readers_in_use_at_once_stay_open_up_to_the_limit() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("app.db");
    for (limit, at_once, kept) in [(16, 16, 16), (4, 6, 4), (4, 1, 1)] {
        let db = Sqlite::open("site", &path, limit, &Vec::new).unwrap();
        let readers: Vec<Conn> = (0..at_once).map(|_| db.reader().unwrap()).collect();
        for reader in readers {
            db.give_back(reader);
        }
        assert_eq!(
            lock(&db.readers).len(),
            kept,
            "limit {limit}, {at_once} at once"
        );
        // the next uses take the kept connections
        let reused: Vec<Conn> = (0..kept).map(|_| db.reader().unwrap()).collect();
        assert!(lock(&db.readers).is_empty());
        drop(reused);
    }
}

#[test]
fn read_only_transactions_do_not_wait_for_the_writer() {
    let (_folder, db) = database();
    db.migrate("t", &["CREATE TABLE t (n INTEGER)"], false)
        .unwrap();
    db.query("INSERT INTO t VALUES (1)", &[]).unwrap();
    let reads = [
        DbStatement {
            sql: "SELECT n FROM t".into(),
            params: RVec::new(),
        },
        DbStatement {
            sql: "SELECT COUNT(*) FROM t".into(),
            params: RVec::new(),
        },
    ];
    let writer = lock(&db.writer);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| sender.send(db.transaction(&reads)).unwrap());
        let result = receiver.recv_timeout(Duration::from_secs(10));
        drop(writer);
        let results = result
            .expect("the reads did not wait for the writer")
            .unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].rows[0].as_slice(), [DbValue::Integer(1)]);
    });
}

const GUESTBOOK: &[&str] = &[
    "CREATE TABLE entries (id INTEGER PRIMARY KEY, message TEXT NOT NULL)",
    "CREATE INDEX entries_by_message ON entries (message)",
];
const BLOG: &[&str] = &[
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL)",
    "CREATE TABLE post_images (post_id INTEGER NOT NULL REFERENCES posts (id))",
];

fn tables(db: &Sqlite) -> Vec<String> {
    column(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_host\\_%' ESCAPE '\\' ORDER BY name",
    )
    .into_iter()
    .map(|value| match value {
        DbValue::Text(name) => name.into(),
        other => panic!("{other:?}"),
    })
    .collect()
}

#[test]
fn namespaces_in_one_database_never_interfere_in_either_order() {
    for blog_first in [true, false] {
        let (_folder, db) = database();
        let order: &[(&str, &[&str])] = if blog_first {
            &[("blog", BLOG), ("guestbook", GUESTBOOK)]
        } else {
            &[("guestbook", GUESTBOOK), ("blog", BLOG)]
        };
        for (namespace, steps) in order {
            assert_eq!(
                db.migrate(namespace, steps, false).unwrap(),
                Migration {
                    before: 0,
                    after: 2
                },
                "{namespace}"
            );
        }
        assert_eq!(tables(&db), ["entries", "post_images", "posts"]);
        // again: nothing to do
        for (namespace, steps) in order {
            assert_eq!(
                db.migrate(namespace, steps, false).unwrap(),
                Migration {
                    before: 2,
                    after: 2
                }
            );
        }
    }
}

#[test]
fn each_step_runs_once_from_many_threads_and_two_processes() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("app.db");
    // two `Sqlite`s on one file: two host processes during a reload
    let first = open(&path);
    let second = open(&path);
    let steps = [
        "CREATE TABLE t (n INTEGER)",
        "INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES (2)",
    ];
    std::thread::scope(|scope| {
        for index in 0..8 {
            let db = if index % 2 == 0 { &first } else { &second };
            scope.spawn(|| db.migrate("counted", &steps, false).unwrap());
        }
    });
    assert_eq!(
        column(&first, "SELECT n FROM t ORDER BY n"),
        [DbValue::Integer(1), DbValue::Integer(2)]
    );
    assert_eq!(
        column(
            &first,
            "SELECT COUNT(*) FROM _host_migrations WHERE namespace = 'counted'"
        ),
        [DbValue::Integer(3)]
    );
}

#[test]
fn a_changed_step_an_ahead_history_and_a_failing_step_are_errors_naming_the_namespace() {
    let (_folder, db) = database();
    db.migrate("guestbook", GUESTBOOK, false).unwrap();
    let changed = db
        .migrate(
            "guestbook",
            &[
                GUESTBOOK[0],
                "CREATE INDEX entries_by_message ON entries (message DESC)",
            ],
            false,
        )
        .unwrap_err();
    assert!(
        changed.message.starts_with(
            "database \"site\": migration \"guestbook\" step 2 was changed after it was applied on "
        ),
        "{}",
        changed.message
    );
    let ahead = db.migrate("guestbook", &GUESTBOOK[..1], false).unwrap_err();
    assert!(
        ahead.message.contains(
            "migration \"guestbook\" is at step 2, but this build of the app knows only 1 steps"
        ),
        "{}",
        ahead.message
    );
    let broken = db
        .migrate("guestbook", &[GUESTBOOK[0], GUESTBOOK[1], "NOT SQL"], false)
        .unwrap_err();
    assert!(
        broken
            .message
            .starts_with("database \"site\": migration \"guestbook\" step 3 failed: "),
        "{}",
        broken.message
    );
    // a failed step leaves no trace: the next run tries it again
    assert_eq!(
        db.migrate("guestbook", GUESTBOOK, false).unwrap(),
        Migration {
            before: 2,
            after: 2
        }
    );
}

#[test]
fn apps_statements_are_refused_what_the_authorizer_forbids_and_say_why() {
    let (folder, db) = database();
    db.migrate("t", &["CREATE TABLE t (n INTEGER)"], false)
        .unwrap();
    let outside = folder.path().join("outside.db");
    let refused = [
        format!("ATTACH '{}' AS other", outside.display()),
        format!("VACUUM INTO '{}'", outside.display()),
        "VACUUM".to_owned(),
        "PRAGMA journal_mode = DELETE".to_owned(),
        "PRAGMA foreign_keys = OFF".to_owned(),
        "PRAGMA user_version = 7".to_owned(),
        "SELECT load_extension('libevil')".to_owned(),
        "BEGIN".to_owned(),
        "SAVEPOINT a".to_owned(),
        "CREATE TEMP TABLE scratch (x)".to_owned(),
        "DELETE FROM _host_migrations".to_owned(),
        "CREATE TABLE _host_mine (x)".to_owned(),
    ];
    for sql in &refused {
        let failure = db.query(sql, &[]).unwrap_err();
        assert_eq!(failure.kind, Kind::Refused, "{sql}: {failure}");
        assert!(
            failure.message.contains("not allowed") || failure.message.contains("belong"),
            "{sql}: {failure}"
        );
        // and through a transaction (where SQLite itself refuses VACUUM)
        let in_transaction = db
            .transaction(&[DbStatement {
                sql: sql.as_str().into(),
                params: RVec::new(),
            }])
            .unwrap_err();
        assert!(
            in_transaction.kind == Kind::Refused
                || in_transaction
                    .message
                    .contains("cannot VACUUM from within a transaction"),
            "{sql}: {in_transaction}"
        );
    }
    assert!(!outside.exists(), "nothing was written outside");
    // what is allowed still runs, on connections left as they were
    assert_eq!(
        column(&db, "PRAGMA foreign_keys"),
        [DbValue::Integer(1)],
        "the refused PRAGMA foreign_keys = OFF changed nothing"
    );
    db.query("INSERT INTO t VALUES (1)", &[]).unwrap();
    assert_eq!(column(&db, "SELECT n FROM t"), [DbValue::Integer(1)]);
    assert_eq!(db.query("PRAGMA table_info(t)", &[]).unwrap().rows.len(), 1);
    let journal = lock(&db.writer)
        .as_ref()
        .unwrap()
        .host(|c| c.pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0)))
        .unwrap();
    assert_eq!(journal, "wal");
}

#[test]
fn no_connection_is_left_inside_a_transaction() {
    let (_folder, db) = database();
    db.migrate("t", &["CREATE TABLE t (n INTEGER)"], false)
        .unwrap();
    // A reader left inside a transaction would keep reading its old
    // snapshot: the refused BEGIN must not start one.
    for _ in 0..4 {
        assert_eq!(db.query("BEGIN", &[]).unwrap_err().kind, Kind::Refused);
    }
    for n in 1..=3 {
        db.query("INSERT INTO t VALUES (?1)", &[DbValue::Integer(n)])
            .unwrap();
        assert_eq!(column(&db, "SELECT COUNT(*) FROM t"), [DbValue::Integer(n)]);
    }
    // a connection handed back inside a transaction is rolled back
    let reader = db.reader().unwrap();
    reader.host(|c| c.execute_batch("BEGIN")).unwrap();
    db.give_back(reader);
    let reader = db.reader().unwrap();
    assert!(reader.connection.is_autocommit());
}

#[test]
fn migration_steps_are_judged_too() {
    let (_folder, db) = database();
    let failure = db
        .migrate(
            "sneaky",
            &["CREATE TABLE a (x); PRAGMA writable_schema = ON"],
            false,
        )
        .unwrap_err();
    assert_eq!(failure.kind, Kind::Refused);
    assert!(
        failure.message.starts_with(
            "database \"site\": migration \"sneaky\" step 1 failed: PRAGMA writable_schema = ON is not allowed"
        ),
        "{}",
        failure.message
    );
    // the whole step rolled back
    assert!(tables(&db).is_empty());
    let commit = db
        .migrate("sneaky", &["CREATE TABLE a (x); COMMIT"], false)
        .unwrap_err();
    assert_eq!(commit.kind, Kind::Refused, "{commit}");
}

/// A database as an app of contract 1.0 left it: the blog's two steps
/// applied, counted in `user_version`.
fn contract_1_0_database(path: &Path) {
    let old = Connection::open(path).unwrap();
    old.execute_batch(&format!(
        "{}; {}; INSERT INTO posts (title) VALUES ('kept'); PRAGMA user_version = 2;",
        BLOG[0], BLOG[1]
    ))
    .unwrap();
}

#[test]
fn a_database_of_contract_1_0_is_adopted_by_its_own_namespace_only() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("app.db");
    contract_1_0_database(&path);
    let uploads = || vec!["a.png".to_owned(), "b.gif".to_owned()];
    let db = Sqlite::open("blog", &path, 4, &uploads).unwrap();
    // another app asking to adopt is told the version is not its own
    let wrong = db.migrate("guestbook", GUESTBOOK, true).unwrap_err();
    assert!(
        wrong.message.starts_with(
            "database \"blog\": its PRAGMA user_version 2 was not written by migration \"guestbook\": its first 2 steps create table entries, index entries_by_message, which the database lacks"
        ),
        "{}",
        wrong.message
    );
    // and migrating without adopting, it gets its own steps
    assert_eq!(
        db.migrate("guestbook", GUESTBOOK, false).unwrap(),
        Migration {
            before: 0,
            after: 2
        }
    );
    // the blog adopts its two steps (one more runs), once
    let blog = [BLOG[0], BLOG[1], "ALTER TABLE posts ADD COLUMN slug TEXT"];
    assert_eq!(
        db.migrate("blog", &blog, true).unwrap(),
        Migration {
            before: 0,
            after: 3
        }
    );
    assert_eq!(
        column(
            &db,
            "SELECT step || ':' || adopted FROM _host_migrations WHERE namespace = 'blog' ORDER BY step"
        ),
        [text("1:1"), text("2:1"), text("3:0")]
    );
    assert_eq!(column(&db, "SELECT title FROM posts"), [text("kept")]);
    assert_eq!(column(&db, "PRAGMA user_version"), [DbValue::Integer(2)]);
    // the uploads of that time are the database's
    assert!(db.forget_upload("a.png").unwrap());
    assert!(!db.forget_upload("a.png").unwrap());
    assert!(db.forget_upload("b.gif").unwrap());
    // nobody adopts twice
    let again = db
        .migrate("other", &["CREATE TABLE other (x)"], true)
        .unwrap();
    assert_eq!(again.after, 1, "ran its own step, adopted none");
}

#[test]
fn a_new_database_has_no_version_to_adopt() {
    let (_folder, db) = database();
    assert_eq!(
        db.migrate("blog", BLOG, true).unwrap(),
        Migration {
            before: 0,
            after: 2
        }
    );
    assert!(!db.forget_upload("a.png").unwrap());
    db.record_upload("c.png", 1).unwrap();
    assert!(db.forget_upload("c.png").unwrap());
}

#[test]
fn migrations_of_contract_1_0_apps_keep_counting_in_user_version() {
    let (_folder, db) = database();
    let steps = ["CREATE TABLE t (n INTEGER)", "INSERT INTO t VALUES (1)"];
    assert_eq!(db.migrate_user_version(&steps).unwrap(), 0);
    assert_eq!(db.migrate_user_version(&steps).unwrap(), 2);
    assert_eq!(column(&db, "PRAGMA user_version"), [DbValue::Integer(2)]);
    let newer = db.migrate_user_version(&steps[..1]).unwrap_err();
    assert!(
        newer.message.contains("its schema is at version 2"),
        "{}",
        newer.message
    );
    // the namespaced history is apart from it
    assert_eq!(
        db.migrate("t2", &["CREATE TABLE t2 (x)"], false)
            .unwrap()
            .after,
        1
    );
}

/// Every file of a folder with its bytes and modification time.
fn snapshot(folder: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path.clone(), (std::fs::read(&path).unwrap(), modified))
        })
        .collect()
}

#[test]
fn inspecting_changes_nothing_and_reports_what_migrating_would_do() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("app.db");
    contract_1_0_database(&path);
    let before = snapshot(folder.path());
    let db = Sqlite::inspect("blog", &path);
    let blog = [BLOG[0], BLOG[1], "ALTER TABLE posts ADD COLUMN slug TEXT"];
    assert_eq!(
        db.migrate("blog", &blog, true).unwrap(),
        Migration {
            before: 0,
            after: 0
        }
    );
    assert_eq!(
        db.migrate("guestbook", GUESTBOOK, false).unwrap(),
        Migration {
            before: 0,
            after: 0
        }
    );
    assert_eq!(
        db.inspected(),
        [
            Inspected {
                namespace: "blog".to_owned(),
                applied: 0,
                adopted: 2,
                known: 3
            },
            Inspected {
                namespace: "guestbook".to_owned(),
                applied: 0,
                adopted: 0,
                known: 2
            }
        ]
    );
    assert_eq!(db.inspected()[0].pending(), 1);
    // reads work, writes are refused
    assert_eq!(column(&db, "SELECT title FROM posts"), [text("kept")]);
    let write = db
        .query("INSERT INTO posts (title) VALUES ('x')", &[])
        .unwrap_err();
    assert_eq!(write.kind, Kind::Refused);
    assert!(write.message.contains("only look"), "{write}");
    // a pending step that cannot run is found without running it
    let broken = db
        .migrate(
            "blog",
            &[BLOG[0], BLOG[1], "ALTER TABLE missing ADD COLUMN x"],
            true,
        )
        .unwrap_err();
    assert!(
        broken.message.starts_with(
            "database \"blog\": migration \"blog\" step 3 would fail: no such table: missing"
        ),
        "{}",
        broken.message
    );
    assert!(
        broken
            .message
            .ends_with("(tried on a copy of the schema; nothing was changed)")
    );
    drop(db);
    assert_eq!(snapshot(folder.path()), before, "the folder is as it was");

    // a database that does not exist is not created
    let absent = folder.path().join("new.db");
    let db = Sqlite::inspect("new", &absent);
    assert_eq!(db.migrate("guestbook", GUESTBOOK, false).unwrap().after, 0);
    assert_eq!(db.inspected()[0].pending(), 2);
    assert!(
        db.query("SELECT 1", &[])
            .unwrap_err()
            .message
            .contains("does not exist yet")
    );
    assert!(!absent.exists());
}

#[test]
fn a_closed_database_refuses_calls_and_leaves_no_write_ahead_log() {
    let (folder, db) = database();
    db.migrate("t", &["CREATE TABLE t (n INTEGER)"], false)
        .unwrap();
    db.query("INSERT INTO t VALUES (1)", &[]).unwrap();
    db.close();
    assert!(
        db.query("SELECT n FROM t", &[])
            .unwrap_err()
            .message
            .contains("closed")
    );
    let files: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["app.db"]);
}

#[test]
fn a_write_ahead_log_left_behind_is_read_from_a_copy() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("app.db");
    // a writer that never closes, like a process that died: its rows are
    // in the log only
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n); INSERT INTO t VALUES (5);",
        )
        .unwrap();
    std::mem::forget(writer);
    assert!(folder.path().join("app.db-wal").exists());
    let before = snapshot(folder.path());
    let db = Sqlite::inspect("left", &path);
    assert_eq!(column(&db, "SELECT n FROM t"), [DbValue::Integer(5)]);
    drop(db);
    assert_eq!(snapshot(folder.path()), before, "the folder is as it was");
}
