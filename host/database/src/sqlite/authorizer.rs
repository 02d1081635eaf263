//! What an app's statement may not do: SQLite's authorizer, asked about
//! every action while a statement is prepared (and while `VACUUM` runs its
//! own statements), refuses what would reach beyond the app's databases or
//! outlive the call on a connection that other requests and other mounts
//! reuse.
//!
//! Apps are native code in the host's process: this guards against
//! mistakes, not against a malicious app, which could do anything the
//! process can.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};

use rusqlite::{
    Connection,
    hooks::{AuthAction, AuthContext, Authorization},
};

/// Tables whose names start with this belong to the host (migration
/// history, upload records).
pub const HOST_TABLE_PREFIX: &str = "_host_";

/// PRAGMAs an app may run with an argument: they look at the schema or the
/// data, or (`defer_foreign_keys`) last only until the transaction ends.
/// Every other PRAGMA with a value changes the connection or the file for
/// everyone who uses it after the app.
const PRAGMAS_WITH_VALUES: &[&str] = &[
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "optimize",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Why an app's statement may not take `action`; `None` when it may.
pub fn judge(action: &AuthAction<'_>) -> Option<String> {
    let refuse = |message: String| Some(message);
    match *action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => refuse(
            "ATTACH, DETACH and VACUUM (which attaches) are not allowed: a mount uses the databases the mount table grants it, each through mount.database(name)"
                .to_owned(),
        ),
        AuthAction::Pragma {
            pragma_name,
            pragma_value: Some(value),
        } if !PRAGMAS_WITH_VALUES.contains(&pragma_name.to_ascii_lowercase().as_str()) => {
            refuse(format!(
                "PRAGMA {pragma_name} = {value} is not allowed: the host owns the settings of its connections (PRAGMAs allowed with a value: {})",
                PRAGMAS_WITH_VALUES.join(", ")
            ))
        }
        AuthAction::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => {
            refuse("load_extension() is not allowed: extensions would load into the host's process".to_owned())
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => refuse(
            "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed: they would leave a shared connection inside a transaction; run statements that belong together with db.transaction(...) (a migration step already runs in a transaction of its own)"
                .to_owned(),
        ),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => refuse(
            "temporary tables, views, triggers and indexes are not allowed: they would outlive the call on a connection other requests reuse"
                .to_owned(),
        ),
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::CreateIndex { table_name, .. }
        | AuthAction::DropIndex { table_name, .. }
        | AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::DropTrigger { table_name, .. }
            if is_host_table(table_name) =>
        {
            refuse(format!(
                "{table_name} belongs to the host: apps may read it, not change it"
            ))
        }
        AuthAction::CreateView { view_name: name } | AuthAction::DropView { view_name: name }
            if is_host_table(name) =>
        {
            refuse(format!(
                "names starting with {HOST_TABLE_PREFIX} belong to the host: choose another name than {name}"
            ))
        }
        AuthAction::Unknown { code, .. } => refuse(format!(
            "an action this host does not know (SQLite authorizer code {code}) is not allowed"
        )),
        _ => None,
    }
}

fn is_host_table(name: &str) -> bool {
    name.len() >= HOST_TABLE_PREFIX.len()
        && name[..HOST_TABLE_PREFIX.len()].eq_ignore_ascii_case(HOST_TABLE_PREFIX)
}

/// The authorizer of one connection: apps' statements are judged, the
/// host's own (transactions, migration history) are not.
#[derive(Debug, Default)]
pub struct Authorizer {
    /// Set while the host runs its own statements; an app's statement runs
    /// with it clear, so a statement run outside [`Authorizer::as_host`]
    /// is judged.
    host: AtomicBool,
    /// Why the last statement was refused, for the error message (SQLite
    /// itself only says "not authorized").
    refusal: Mutex<Option<String>>,
}

impl Authorizer {
    /// Installs a new authorizer on `connection`.
    pub fn install(connection: &Connection) -> Arc<Authorizer> {
        let authorizer = Arc::new(Authorizer::default());
        let shared = Arc::clone(&authorizer);
        connection.authorizer(Some(move |context: AuthContext<'_>| {
            if shared.host.load(Ordering::Relaxed) {
                return Authorization::Allow;
            }
            match judge(&context.action) {
                None => Authorization::Allow,
                Some(reason) => {
                    *shared
                        .refusal
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(reason);
                    Authorization::Deny
                }
            }
        }));
        authorizer
    }

    /// Runs `body` (the host's own statements) unjudged. A connection is
    /// used by one thread at a time, so the flag is this call's alone.
    pub fn as_host<T>(&self, body: impl FnOnce() -> T) -> T {
        self.with_host_flag(true, body)
    }

    /// Runs `body` (an app's statements) judged, also inside
    /// [`Authorizer::as_host`] (a migration step within the host's
    /// transaction).
    pub fn as_app<T>(&self, body: impl FnOnce() -> T) -> T {
        self.with_host_flag(false, body)
    }

    fn with_host_flag<T>(&self, host: bool, body: impl FnOnce() -> T) -> T {
        struct Restore<'a>(&'a AtomicBool, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::Relaxed);
            }
        }
        let _restore = Restore(&self.host, self.host.swap(host, Ordering::Relaxed));
        body()
    }

    /// Why the last statement was refused, once.
    pub fn take_refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::hooks::TransactionOperation;

    use super::*;

    #[test]
    fn apps_may_not_reach_beyond_their_databases_or_change_shared_connections() {
        let refused: &[AuthAction<'_>] = &[
            AuthAction::Attach {
                filename: "/etc/passwd",
            },
            // VACUUM and VACUUM INTO attach their target
            AuthAction::Attach { filename: "" },
            AuthAction::Detach {
                database_name: "other",
            },
            AuthAction::Pragma {
                pragma_name: "journal_mode",
                pragma_value: Some("DELETE"),
            },
            AuthAction::Pragma {
                pragma_name: "foreign_keys",
                pragma_value: Some("OFF"),
            },
            AuthAction::Pragma {
                pragma_name: "writable_schema",
                pragma_value: Some("ON"),
            },
            AuthAction::Pragma {
                pragma_name: "USER_VERSION",
                pragma_value: Some("5"),
            },
            AuthAction::Function {
                function_name: "LOAD_EXTENSION",
            },
            AuthAction::Transaction {
                operation: TransactionOperation::Begin,
            },
            AuthAction::Transaction {
                operation: TransactionOperation::Unknown,
            },
            AuthAction::Savepoint {
                operation: TransactionOperation::Begin,
                savepoint_name: "a",
            },
            AuthAction::CreateTempTable { table_name: "t" },
            AuthAction::CreateTempTrigger {
                trigger_name: "t",
                table_name: "posts",
            },
            AuthAction::Insert {
                table_name: "_host_migrations",
            },
            AuthAction::Delete {
                table_name: "_HOST_uploads",
            },
            AuthAction::DropTable {
                table_name: "_host_migrations",
            },
            AuthAction::CreateTable {
                table_name: "_host_mine",
            },
            AuthAction::CreateView {
                view_name: "_host_view",
            },
            AuthAction::Unknown {
                code: 99,
                arg1: None,
                arg2: None,
            },
        ];
        for action in refused {
            assert!(judge(action).is_some(), "{action:?} should be refused");
        }
        let allowed: &[AuthAction<'_>] = &[
            AuthAction::Select,
            AuthAction::Read {
                table_name: "_host_migrations",
                column_name: "step",
            },
            AuthAction::Insert {
                table_name: "posts",
            },
            AuthAction::CreateTable {
                table_name: "guestbook_entries",
            },
            AuthAction::CreateIndex {
                index_name: "by_date",
                table_name: "entries",
            },
            // reading a setting changes nothing
            AuthAction::Pragma {
                pragma_name: "user_version",
                pragma_value: None,
            },
            AuthAction::Pragma {
                pragma_name: "table_info",
                pragma_value: Some("posts"),
            },
            AuthAction::Pragma {
                pragma_name: "defer_foreign_keys",
                pragma_value: Some("ON"),
            },
            AuthAction::Function {
                function_name: "lower",
            },
            AuthAction::CreateVtable {
                table_name: "search",
                module_name: "fts5",
            },
        ];
        for action in allowed {
            assert_eq!(judge(action), None, "{action:?} should be allowed");
        }
    }

    #[test]
    fn refusals_say_what_is_not_allowed_and_why() {
        let pragma = judge(&AuthAction::Pragma {
            pragma_name: "journal_mode",
            pragma_value: Some("DELETE"),
        })
        .unwrap();
        assert!(
            pragma.starts_with("PRAGMA journal_mode = DELETE is not allowed"),
            "{pragma}"
        );
        let host_table = judge(&AuthAction::Update {
            table_name: "_host_migrations",
            column_name: "checksum",
        })
        .unwrap();
        assert_eq!(
            host_table,
            "_host_migrations belongs to the host: apps may read it, not change it"
        );
    }
}
