//! The portable SQL contract against a real PostgreSQL (the groundwork of
//! the PostgreSQL backend): the blog's migrations, written once for
//! SQLite, create its schema on PostgreSQL once translated; statements with
//! `?N` placeholders run with their values' types; errors come back with
//! the SQLSTATE the portable kinds are read from.

mod common;

use app_api::abi::DbValue;
use common::{postgres::Postgres, workspace_root};
use host_database::{
    Kind,
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
