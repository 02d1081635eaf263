//! What an app's statement may not do on PostgreSQL: the rules SQLite's
//! authorizer applies (`sqlite::authorizer`), judged from the statement's
//! words, since PostgreSQL has no hook that asks. Refused: transaction
//! control and settings (they would outlive the call on a pooled
//! connection other requests reuse), temporary objects (the same), what
//! reaches beyond the database's tables (files, programs, other sessions,
//! roles, extensions), and changes to the host's `_host_` tables.
//!
//! Apps are native code in the host's process: this guards against
//! mistakes, as SQLite's authorizer does, not against a malicious app. The
//! role in the database URL should own the site's tables and nothing more
//! (`docs/deploy.md`): PostgreSQL itself then refuses the rest.

use super::sql::{Token, tokens};

/// Names starting with this belong to the host.
const HOST_PREFIX: &str = "_host_";

/// Statements that manage transactions: the host's transaction helper and
/// migration steps own them.
const TRANSACTION_CONTROL: &[&str] = &[
    "abort",
    "begin",
    "commit",
    "end",
    "prepare",
    "release",
    "rollback",
    "savepoint",
    "start",
];

/// Statements that change a connection or reach beyond the tables.
const BEYOND_TABLES: &[&str] = &[
    "call",
    "checkpoint",
    "cluster",
    "copy",
    "deallocate",
    "discard",
    "do",
    "execute",
    "grant",
    "import",
    "listen",
    "load",
    "notify",
    "reassign",
    "reindex",
    "reset",
    "revoke",
    "security",
    "set",
    "unlisten",
    "vacuum",
];

/// What `CREATE`, `ALTER` or `DROP` may not make or change: objects of
/// the server, not of the site's tables.
const SERVER_OBJECTS: &[&str] = &[
    "database",
    "event",
    "extension",
    "foreign",
    "group",
    "language",
    "publication",
    "role",
    "server",
    "subscription",
    "system",
    "tablespace",
    "user",
];

/// Functions that read files, signal other sessions, change settings or
/// take the locks migrations use.
const FUNCTIONS: &[&str] = &[
    "lo_export",
    "lo_import",
    "pg_cancel_backend",
    "pg_ls_dir",
    "pg_read_binary_file",
    "pg_read_file",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_stat_file",
    "pg_terminate_backend",
    "set_config",
];

/// Words that make a statement change something.
const WRITES: &[&str] = &[
    "alter", "comment", "create", "delete", "drop", "insert", "merge", "truncate", "update",
];

/// Why the host refuses `sql` (one statement, or a migration step's
/// several); `None` when it may run.
pub fn judge(sql: &str) -> Option<String> {
    let tokens = tokens(sql);
    tokens
        .split(|token| *token == Token::Verbatim(";"))
        .find_map(judge_one)
}

fn judge_one(tokens: &[Token<'_>]) -> Option<String> {
    let words: Vec<String> = tokens
        .iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(word.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    let first = words.first()?.as_str();
    if TRANSACTION_CONTROL.contains(&first) {
        return Some(format!(
            "{} is not allowed: it would leave a shared connection inside a transaction; run statements that belong together with db.transaction(...) (a migration step already runs in a transaction of its own)",
            first.to_ascii_uppercase()
        ));
    }
    if BEYOND_TABLES.contains(&first) {
        return Some(format!(
            "{} is not allowed: it changes the shared connection or reaches beyond the database's tables (the host owns its connections' settings)",
            first.to_ascii_uppercase()
        ));
    }
    if matches!(first, "create" | "alter" | "drop") {
        let kind = words[1..].iter().find(|word| {
            !matches!(
                word.as_str(),
                "or" | "replace" | "unique" | "global" | "local"
            )
        });
        match kind.map(String::as_str) {
            Some("temp" | "temporary") => {
                return Some(
                    "temporary tables, views and sequences are not allowed: they would outlive the call on a connection other requests reuse"
                        .to_owned(),
                );
            }
            Some(kind) if SERVER_OBJECTS.contains(&kind) => {
                return Some(format!(
                    "{} {} is not allowed: apps change their own tables, indexes, views and triggers, not the server's objects",
                    first.to_ascii_uppercase(),
                    kind.to_ascii_uppercase()
                ));
            }
            _ => {}
        }
    }
    if let Some(function) = words.iter().find(|word| {
        FUNCTIONS.contains(&word.as_str())
            || word.starts_with("pg_advisory")
            || word.starts_with("pg_try_advisory")
            || word.starts_with("dblink")
    }) {
        return Some(format!(
            "{function}() is not allowed: it reaches beyond the database's tables (files, other sessions, settings or the host's locks)"
        ));
    }
    if words.iter().any(|word| WRITES.contains(&word.as_str())) {
        let quoted = tokens.iter().filter_map(|token| match token {
            Token::Verbatim(text) if text.len() >= 2 && text.starts_with('"') => {
                Some(text[1..text.len() - 1].replace("\"\"", "\""))
            }
            _ => None,
        });
        if let Some(name) = words
            .iter()
            .cloned()
            .chain(quoted)
            .find(|name| name.to_ascii_lowercase().starts_with(HOST_PREFIX))
        {
            return Some(format!(
                "{name} belongs to the host: apps may read it, not change it"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_statements_are_judged_like_sqlites_authorizer_judges_them() {
        for (sql, refused) in [
            ("SELECT * FROM posts WHERE id = ?1", None),
            ("INSERT INTO posts (title) VALUES (?1) RETURNING id", None),
            ("WITH x AS (SELECT 1) UPDATE t SET a = 1", None),
            ("CREATE TABLE role (id INTEGER PRIMARY KEY)", None),
            (
                "CREATE UNIQUE INDEX users_by_name ON users (username)",
                None,
            ),
            ("SELECT * FROM _host_migrations", None),
            ("SELECT 'set_config', \"copy\" FROM t", None),
            (
                "CREATE TABLE t (a INTEGER); CREATE INDEX t_a ON t (a);",
                None,
            ),
            ("BEGIN", Some("BEGIN is not allowed")),
            ("  commit", Some("COMMIT is not allowed")),
            ("SAVEPOINT s", Some("SAVEPOINT is not allowed")),
            ("SET search_path = other", Some("SET is not allowed")),
            (
                "COPY posts TO PROGRAM 'rm -rf /'",
                Some("COPY is not allowed"),
            ),
            ("DO $$ BEGIN END $$", Some("DO is not allowed")),
            ("CREATE TEMP TABLE t (a INTEGER)", Some("temporary tables")),
            (
                "create temporary table t (a integer)",
                Some("temporary tables"),
            ),
            (
                "CREATE EXTENSION dblink",
                Some("CREATE EXTENSION is not allowed"),
            ),
            (
                "ALTER SYSTEM SET fsync = off",
                Some("ALTER SYSTEM is not allowed"),
            ),
            ("DROP DATABASE site", Some("DROP DATABASE is not allowed")),
            (
                "CREATE ROLE admin SUPERUSER",
                Some("CREATE ROLE is not allowed"),
            ),
            (
                "SELECT pg_read_file('/etc/passwd')",
                Some("pg_read_file() is not allowed"),
            ),
            (
                "SELECT set_config('statement_timeout', '0', false)",
                Some("set_config() is not allowed"),
            ),
            (
                "SELECT pg_advisory_lock(1)",
                Some("pg_advisory_lock() is not allowed"),
            ),
            (
                "DELETE FROM _host_migrations",
                Some("_host_migrations belongs to the host"),
            ),
            (
                "UPDATE \"_HOST_uploads\" SET name = ''",
                Some("_HOST_uploads belongs to the host"),
            ),
            (
                "CREATE TABLE ok (a INTEGER); DROP TABLE _host_uploads",
                Some("_host_uploads belongs to the host"),
            ),
            (
                "CREATE TABLE a (x INTEGER); BEGIN",
                Some("BEGIN is not allowed"),
            ),
        ] {
            match (judge(sql), refused) {
                (None, None) => {}
                (Some(reason), Some(expected)) => {
                    assert!(reason.contains(expected), "{sql:?}: {reason}")
                }
                (got, expected) => panic!("{sql:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
