//! A database error before it crosses the library boundary: a portable kind
//! and the message.

use app_api_abi::DbError;
use rusqlite::ErrorCode;

/// What kind of failure, as apps see it (`DbError::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `UNIQUE`, `FOREIGN KEY`, `CHECK` or `NOT NULL` constraint failed.
    Constraint,
    /// The database stayed locked past the busy timeout.
    Busy,
    /// The statement is wrong: syntax, unknown table or column, parameters.
    Sql,
    /// The host does not allow the statement (see `authorizer`).
    Refused,
    /// Anything else: an unreadable file, a failed migration bookkeeping.
    Other,
}

impl Kind {
    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Constraint => "constraint",
            Kind::Busy => "busy",
            Kind::Sql => "sql",
            Kind::Refused => "refused",
            Kind::Other => "other",
        }
    }
}

/// A failed database call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind.
    pub kind: Kind,
    /// What happened, naming the statement, step or database concerned.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// The failure of a call on the database `name` after it was closed.
    pub fn stopped(name: &str) -> Failure {
        Failure::new(
            Kind::Other,
            format!("the database {name:?} is closed: the host is stopping"),
        )
    }

    /// The same failure with `context` in front of its message.
    pub fn context(self, context: impl std::fmt::Display) -> Failure {
        Failure {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Failure {
        let kind = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
                ErrorCode::ConstraintViolation => Kind::Constraint,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Kind::Busy,
                ErrorCode::ReadOnly => Kind::Refused,
                // SQLITE_ERROR: a syntax error, an unknown table or column
                ErrorCode::Unknown => Kind::Sql,
                _ => Kind::Other,
            },
            rusqlite::Error::SqlInputError { .. }
            | rusqlite::Error::InvalidParameterCount(..)
            | rusqlite::Error::InvalidParameterName(_)
            | rusqlite::Error::InvalidColumnName(_)
            | rusqlite::Error::MultipleStatement => Kind::Sql,
            _ => Kind::Other,
        };
        Failure::new(kind, error.to_string())
    }
}

impl From<Failure> for DbError {
    fn from(failure: Failure) -> DbError {
        DbError {
            kind: failure.kind.as_str().into(),
            message: failure.message.into(),
        }
    }
}
