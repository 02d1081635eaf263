//! The database service on a real PostgreSQL: the blog's migrations,
//! written once for SQLite, create its schema once translated; statements
//! with `?N` placeholders run with their values' types and read back as the
//! contract's values; errors come back with their portable kinds; the
//! guard refuses what SQLite's authorizer refuses; conflicting
//! transactions run again and lose nothing; migrations started by several
//! hosts at once apply each step once.

mod common;

use std::{sync::Arc, thread};

use app_api::abi::{DbStatement, DbValue};
use common::{postgres::Postgres, workspace_root};
use host_database::{
    Database, Kind, Location,
    postgres::{errors, sql},
};

/// The blog's migration steps, as its source writes them (`r#"…"#`).
fn blog_migrations() -> Vec<String> {
    let source =
        std::fs::read_to_string(workspace_root().join("shared/src/model/migrations.rs")).unwrap();
    source
        .split("r#\"")
        .skip(1)
        .filter_map(|part| part.split("\"#").next())
        .map(str::to_owned)
        .collect()
}

/// psql's output, or the error it printed.
fn run(postgres: &Postgres, sql: &str) -> Result<String, String> {
    let output = postgres.psql(sql);
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The SQLSTATE in a verbose psql error (`ERROR:  23505: duplicate key …`).
fn sqlstate(error: &str) -> &str {
    error
        .split("ERROR:")
        .nth(1)
        .and_then(|rest| rest.trim_start().split(':').next())
        .unwrap_or_default()
}

#[test]
fn the_blogs_schema_and_statements_read_the_same_on_postgresql() {
    let postgres = Postgres::start();
    let steps = blog_migrations();
    assert!(steps.len() >= 5, "found {} steps", steps.len());
    for (number, step) in steps.iter().enumerate() {
        let translated = sql::schema(step);
        if let Err(error) = run(&postgres, &translated) {
            panic!(
                "step {} failed on PostgreSQL:\n{translated}\n{error}",
                number + 1
            );
        }
    }
    let tables = run(
        &postgres,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .unwrap();
    assert_eq!(
        tables,
        "comments,images,login_failures,post_images,posts,sessions,users"
    );
    // an id given when none is inserted, as SQLite's INTEGER PRIMARY KEY
    let insert = sql::placeholders(
        "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3) RETURNING id",
        &[
            DbValue::Text("ann".into()),
            DbValue::Text("hash".into()),
            DbValue::Integer(1_800_000_000),
        ],
    )
    .unwrap();
    let prepared =
        format!("PREPARE add_user AS {insert}; EXECUTE add_user('ann', 'hash', 1800000000);");
    assert_eq!(run(&postgres, &prepared).unwrap(), "1");
    // a parameter whose type only its value tells (SQLite needs none)
    let select = sql::placeholders(
        "SELECT ?1 IS NULL, COALESCE(NULLIF(?2, ''), 'default')",
        &[DbValue::Integer(7), DbValue::Text(String::new().into())],
    )
    .unwrap();
    assert_eq!(
        run(
            &postgres,
            &format!("PREPARE pick AS {select}; EXECUTE pick(7, '');")
        )
        .unwrap(),
        "f|default"
    );
    // the same username again: a constraint, as on SQLite
    let again = run(
        &postgres,
        &format!("PREPARE again AS {insert}; EXECUTE again('ann', 'other', 1);"),
    )
    .unwrap_err();
    assert_eq!(sqlstate(&again), "23505", "{again}");
    assert_eq!(errors::kind(sqlstate(&again)), Kind::Constraint);
    let unknown = run(&postgres, "SELECT nothing FROM users").unwrap_err();
    assert_eq!(errors::kind(sqlstate(&unknown)), Kind::Sql, "{unknown}");
}

fn open(url: &str, connections: usize) -> Database {
    Database::open(
        "site",
        &Location::Postgres(url.to_owned()),
        connections,
        &Vec::new,
    )
    .unwrap_or_else(|failure| panic!("{failure}"))
}

fn text(value: &str) -> DbValue {
    DbValue::Text(value.into())
}

fn statement(sql: &str, params: Vec<DbValue>) -> DbStatement {
    DbStatement {
        sql: sql.into(),
        params: params.into(),
    }
}

#[test]
fn statements_read_back_as_the_contracts_values_with_portable_errors() {
    let postgres = Postgres::start();
    let url = postgres.database("values");
    let db = open(&url, 4);
    let migration = db
        .migrate(
            "app",
            &["CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE, score REAL, data BLOB, kept INTEGER NOT NULL DEFAULT 1)"],
            false,
        )
        .unwrap();
    assert_eq!((migration.before, migration.after), (0, 1));
    let inserted = db
        .query(
            "INSERT INTO notes (body, score, data) VALUES (?1, ?2, ?3) RETURNING id",
            &[
                text("first"),
                DbValue::Real(2.5),
                DbValue::Blob(vec![0, 255].into()),
            ],
        )
        .unwrap();
    assert_eq!(inserted.columns.as_slice(), ["id"]);
    assert_eq!(inserted.rows[0].as_slice(), [DbValue::Integer(1)]);
    assert_eq!(inserted.rows_affected, 1);
    db.query(
        "INSERT INTO notes (body, score, data) VALUES (?1, ?2, ?3)",
        &[text("second"), DbValue::Null, DbValue::Null],
    )
    .unwrap();
    let read = db
        .query(
            "SELECT COUNT(*) AS n, SUM(id) AS total, AVG(score) AS mean, MAX(body) AS last, \
             bool_or(kept = 1) AS any_kept, (SELECT data FROM notes WHERE id = ?1) AS data, \
             ?2 AS echoed, NULL AS nothing FROM notes",
            &[DbValue::Integer(1), DbValue::Real(0.5)],
        )
        .unwrap();
    assert_eq!(read.rows_affected, 0, "a SELECT changes no row");
    assert_eq!(
        read.rows[0].as_slice(),
        [
            DbValue::Integer(2),
            // SUM of bigints is numeric on PostgreSQL: whole, so an integer
            DbValue::Integer(3),
            DbValue::Real(2.5),
            text("second"),
            DbValue::Integer(1),
            DbValue::Blob(vec![0, 255].into()),
            DbValue::Real(0.5),
            DbValue::Null,
        ]
    );
    let updated = db
        .query(
            "UPDATE notes SET kept = 0 WHERE id > ?1",
            &[DbValue::Integer(0)],
        )
        .unwrap();
    assert_eq!(updated.rows_affected, 2);

    let duplicate = db
        .query("INSERT INTO notes (body) VALUES (?1)", &[text("first")])
        .unwrap_err();
    assert_eq!(duplicate.kind, Kind::Constraint, "{duplicate}");
    assert!(duplicate.message.contains("(body)=(first)"), "{duplicate}");
    let wrong = db.query("SELECT nothing FROM notes", &[]).unwrap_err();
    assert_eq!(wrong.kind, Kind::Sql, "{wrong}");
    let unbound = db.query("SELECT ?2", &[DbValue::Integer(1)]).unwrap_err();
    assert_eq!(unbound.kind, Kind::Sql, "{unbound}");
    let unreadable = db.query("SELECT now() AS at", &[]).unwrap_err();
    assert_eq!(unreadable.kind, Kind::Sql, "{unreadable}");
    assert!(
        unreadable.message.contains("\"at\"") && unreadable.message.contains("::text"),
        "{unreadable}"
    );
    for (sql, reason) in [
        ("SET search_path = elsewhere", "SET is not allowed"),
        ("BEGIN", "BEGIN is not allowed"),
        ("DELETE FROM _host_migrations", "belongs to the host"),
        (
            "SELECT pg_read_file('/etc/passwd')",
            "pg_read_file() is not allowed",
        ),
        ("CREATE TEMP TABLE t (a INTEGER)", "temporary tables"),
    ] {
        let refused = db.query(sql, &[]).unwrap_err();
        assert_eq!(refused.kind, Kind::Refused, "{sql}: {refused}");
        assert!(refused.message.contains(reason), "{sql}: {refused}");
    }
    // the host's history is there to read
    let history = db
        .query("SELECT namespace, step FROM _host_migrations", &[])
        .unwrap();
    assert_eq!(
        history.rows[0].as_slice(),
        [text("app"), DbValue::Integer(1)]
    );

    // a failed transaction leaves nothing, and says which statement failed
    let failed = db
        .transaction(&[
            statement("INSERT INTO notes (body) VALUES (?1)", vec![text("third")]),
            statement("INSERT INTO notes (body) VALUES (?1)", vec![text("first")]),
        ])
        .unwrap_err();
    assert_eq!(failed.kind, Kind::Constraint);
    assert!(
        failed.message.starts_with("statement 2 of the transaction"),
        "{failed}"
    );
    let count = db
        .query("SELECT COUNT(*) FROM notes WHERE body = 'third'", &[])
        .unwrap();
    assert_eq!(count.rows[0][0], DbValue::Integer(0));
}

#[test]
fn transactions_that_conflict_run_again_and_lose_nothing() {
    let postgres = Postgres::start();
    let url = postgres.database("counter");
    let db = Arc::new(open(&url, 8));
    db.migrate(
        "app",
        &["CREATE TABLE counter (n INTEGER NOT NULL UNIQUE)"],
        false,
    )
    .unwrap();
    // each insert reads the largest number and adds the next: under
    // SQLite's one writer these never collide; on PostgreSQL two at once
    // conflict, and the loser must run again rather than fail
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let db = Arc::clone(&db);
            thread::spawn(move || {
                for _ in 0..40 {
                    db.transaction(&[
                        statement(
                            "INSERT INTO counter (n) SELECT COALESCE(MAX(n), 0) + 1 FROM counter",
                            vec![],
                        ),
                        statement("SELECT COUNT(*) FROM counter", vec![]),
                    ])
                    .unwrap_or_else(|failure| panic!("{:?}: {failure}", failure.kind));
                    db.query(
                        "INSERT INTO counter (n) SELECT COALESCE(MAX(n), 0) + 1 FROM counter",
                        &[],
                    )
                    .unwrap_or_else(|failure| panic!("{:?}: {failure}", failure.kind));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let counted = db
        .query("SELECT COUNT(*), MAX(n) FROM counter", &[])
        .unwrap();
    assert_eq!(
        counted.rows[0].as_slice(),
        [DbValue::Integer(640), DbValue::Integer(640)]
    );
}

#[test]
fn hosts_starting_together_apply_each_step_once() {
    let postgres = Postgres::start();
    let url = postgres.database("together");
    let steps = [
        "CREATE TABLE a (id INTEGER PRIMARY KEY)",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id))",
        "ALTER TABLE a ADD COLUMN name TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX a_by_name ON a (name)",
    ];
    // each its own pool, as each host has
    let hosts: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let db = open(&url, 2);
                let migration = db.migrate("app", &steps, false).unwrap();
                db.close();
                migration.after
            })
        })
        .collect();
    for host in hosts {
        assert_eq!(host.join().unwrap(), 4);
    }
    let db = open(&url, 1);
    let history = db
        .query(
            "SELECT step, COUNT(*) FROM _host_migrations WHERE namespace = 'app' GROUP BY step ORDER BY step",
            &[],
        )
        .unwrap();
    let counted: Vec<_> = history
        .rows
        .iter()
        .map(|row| row.as_slice().to_vec())
        .collect();
    assert_eq!(
        counted,
        (1..=4)
            .map(|step| vec![DbValue::Integer(step), DbValue::Integer(1)])
            .collect::<Vec<_>>()
    );
    // a changed step is refused as on SQLite
    let mut changed = steps;
    changed[1] = "CREATE TABLE b (id INTEGER PRIMARY KEY)";
    let refused = db.migrate("app", &changed, false).unwrap_err();
    assert!(refused.message.contains("step 2 was changed"), "{refused}");
    // a step that reaches beyond the tables is refused, and nothing of it stays
    let refused = db
        .migrate(
            "other",
            &["CREATE TABLE c (id INTEGER); DELETE FROM _host_uploads"],
            false,
        )
        .unwrap_err();
    assert_eq!(refused.kind, Kind::Refused, "{refused}");
    assert!(
        refused.message.contains("migration \"other\" step 1"),
        "{refused}"
    );
    let tables = db.query("SELECT to_regclass('c') IS NULL", &[]).unwrap();
    assert_eq!(tables.rows[0][0], DbValue::Integer(1));
}

#[test]
fn an_unreachable_server_is_named_with_the_database() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let location = Location::Postgres(format!("postgres://site:secret@127.0.0.1:{port}/site"));
    let failure = Database::open("blog", &location, 1, &Vec::new)
        .err()
        .expect("nothing listens there");
    assert!(
        failure.message.starts_with(&format!(
            "cannot open the database \"blog\" (postgres://site:***@127.0.0.1:{port}/site)"
        )),
        "{failure}"
    );
    assert!(!failure.message.contains("secret"), "{failure}");
}

#[test]
fn handlers_waiting_on_postgresql_wait_side_by_side() {
    use std::{
        io::Write,
        process::{Command, Stdio},
        sync::atomic::{AtomicBool, Ordering},
    };

    use common::{Host, blog::site_table_on};
    let table = site_table_on(true, |_| {});
    let postgres = table
        .services
        .iter()
        .find_map(|service| service.downcast_ref::<Postgres>())
        .expect("a site on PostgreSQL has a server of its own");
    let host = Host::start_on(&table);
    assert_eq!(host.get("/en/").status, 200);
    // Readers of posts are held in the database 40 ms at a time, as by a
    // slow query or a far server: short enough that no call counts as
    // slow (which would move the mount to its threads anyway).
    let mut script = String::new();
    for _ in 0..40 {
        script.push_str(
            "BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(0.04); COMMIT; SELECT pg_sleep(0.04);\n",
        );
    }
    let mut locker = Command::new(postgres.psql_program())
        .args(postgres.psql_args("blog"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    locker
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let done = AtomicBool::new(false);
    let most = thread::scope(|scope| {
        for _ in 0..40 {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    assert_eq!(host.get("/en/").status, 200);
                }
            });
        }
        let watcher = scope.spawn(|| {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                let output = postgres.psql_in(
                    "blog",
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'host' AND wait_event_type = 'Lock'",
                );
                let waiting: usize = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap();
                most = most.max(waiting);
            }
            most
        });
        locker.wait().unwrap();
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap()
    });
    // Up to the frontend's max_concurrency (16) handlers wait at once, each
    // on a connection of its own: as many as the mounts using the database
    // run handlers (with a pool the size of the async workers, 2 here, the
    // rest would have queued for a connection behind them).
    assert!(
        most >= 8,
        "at most {most} handlers waited on the database at once"
    );
    assert!(
        !host.log().contains("an inline call took"),
        "{}",
        host.log()
    );
}

#[test]
fn readiness_fails_while_postgresql_does_not_answer() {
    use common::{Host, blog::site_table_on};
    let mut table = site_table_on(true, |_| {});
    let host = Host::start_on(&table);
    assert_eq!(host.get("/en/").status, 200);
    assert_eq!(host.get("/_host/readyz").status, 200);
    // the server stops under the running host
    table
        .services
        .retain(|service| service.downcast_ref::<Postgres>().is_none());
    let probe = host.get("/_host/readyz");
    assert_eq!(probe.status, 503, "{}", probe.text());
    assert!(
        probe
            .text()
            .contains("database blog: cannot reach the database \"blog\""),
        "{}",
        probe.text()
    );
    // the process itself still serves
    assert_eq!(host.get("/_host/livez").status, 200);
    assert_eq!(host.get("/static/style.css").status, 200);
}
