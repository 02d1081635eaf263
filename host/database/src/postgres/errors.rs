//! PostgreSQL's errors as the portable kinds apps see (`Kind`), by their
//! SQLSTATE code (PostgreSQL's "Appendix A. Error Codes"), and which of
//! them a transaction may simply run again.

use crate::failure::Kind;

/// The portable kind of an error with this SQLSTATE.
pub fn kind(sqlstate: &str) -> Kind {
    match sqlstate {
        // serialization_failure, deadlock_detected: another transaction won;
        // lock_not_available: a lock timeout. All "busy", as SQLite's lock.
        "40001" | "40P01" | "55P03" => Kind::Busy,
        // class 23: integrity constraint violations (unique, foreign key,
        // check, not null, exclusion)
        code if code.starts_with("23") => Kind::Constraint,
        // class 42: syntax errors, unknown tables and columns, wrong types;
        // class 22: data exceptions (a value out of range, bad input text)
        code if code.starts_with("42") || code.starts_with("22") => Kind::Sql,
        _ => Kind::Other,
    }
}

/// Whether a transaction that failed with this SQLSTATE may run again as it
/// was: it failed because another transaction won a race, and nothing of
/// it was committed.
pub fn retryable(sqlstate: &str) -> bool {
    matches!(sqlstate, "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_the_portable_kinds() {
        for (code, expected, retry) in [
            ("23505", Kind::Constraint, false), // unique_violation
            ("23503", Kind::Constraint, false), // foreign_key_violation
            ("23514", Kind::Constraint, false), // check_violation
            ("23502", Kind::Constraint, false), // not_null_violation
            ("40001", Kind::Busy, true),        // serialization_failure
            ("40P01", Kind::Busy, true),        // deadlock_detected
            ("55P03", Kind::Busy, false),       // lock_not_available
            ("42601", Kind::Sql, false),        // syntax_error
            ("42P01", Kind::Sql, false),        // undefined_table
            ("42703", Kind::Sql, false),        // undefined_column
            ("22003", Kind::Sql, false),        // numeric_value_out_of_range
            ("08006", Kind::Other, false),      // connection_failure
            ("57P01", Kind::Other, false),      // admin_shutdown
        ] {
            assert_eq!(kind(code), expected, "{code}");
            assert_eq!(retryable(code), retry, "{code}");
        }
    }
}
