//! Running one prepared statement: binding the contract's values, reading
//! rows back as the contract's values.

use abi_stable::std_types::{RString, RVec};
use app_api_abi::{DbRows, DbValue};
use rusqlite::{
    Connection, Statement,
    types::{Value, ValueRef},
};

use crate::failure::{Failure, Kind};

/// Refuses placeholders other than `?NNN`: SQLite binds `$1` names by first
/// appearance (so `SELECT $2, $1` would swap the values), and neither bare
/// `?` nor `:name` port to other databases.
pub fn check_placeholders(statement: &Statement<'_>) -> Result<(), Failure> {
    for index in 1..=statement.parameter_count() {
        let numbered = statement.parameter_name(index).is_some_and(|name| {
            name.strip_prefix('?')
                .is_some_and(|digits| digits.parse::<usize>() == Ok(index))
        });
        if !numbered {
            return Err(Failure::new(
                Kind::Sql,
                format!(
                    "parameter {index} is written {}: use numbered placeholders ?1, ?2, ... only (the portable SQL contract)",
                    statement.parameter_name(index).unwrap_or("?")
                ),
            ));
        }
    }
    Ok(())
}

/// A text column's value. SQLite does not check that text is UTF-8, so
/// invalid bytes become U+FFFD; valid text (all of it, in practice) is
/// checked with `str::from_utf8`, which runs a word at a time over ASCII,
/// where `String::from_utf8_lossy` went byte by byte (a tenth of the blog's
/// home page when it read ten 3 KB post bodies).
pub fn text_value(bytes: &[u8]) -> RString {
    match std::str::from_utf8(bytes) {
        Ok(text) => RString::from(text),
        Err(_) => String::from_utf8_lossy(bytes).into(),
    }
}

/// Runs `statement` with `params` and collects its rows.
pub fn run(
    connection: &Connection,
    statement: &mut Statement<'_>,
    params: &[DbValue],
) -> Result<DbRows, Failure> {
    let columns: RVec<RString> = statement
        .column_names()
        .into_iter()
        .map(RString::from)
        .collect();
    let values = params.iter().map(|value| match value {
        DbValue::Null => Value::Null,
        DbValue::Integer(number) => Value::Integer(*number),
        DbValue::Real(number) => Value::Real(*number),
        DbValue::Text(text) => Value::Text(text.to_string()),
        DbValue::Blob(bytes) => Value::Blob(bytes.to_vec()),
    });
    let before = connection.total_changes();
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut out = RVec::new();
    while let Some(row) = rows.next()? {
        let mut values = RVec::with_capacity(columns.len());
        for index in 0..columns.len() {
            values.push(match row.get_ref(index)? {
                ValueRef::Null => DbValue::Null,
                ValueRef::Integer(number) => DbValue::Integer(number),
                ValueRef::Real(number) => DbValue::Real(number),
                ValueRef::Text(text) => DbValue::Text(text_value(text)),
                ValueRef::Blob(bytes) => DbValue::Blob(bytes.into()),
            });
        }
        out.push(values);
    }
    drop(rows);
    Ok(DbRows {
        columns,
        rows: out,
        rows_affected: connection.total_changes().saturating_sub(before),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_and_invalid_bytes_are_replaced() {
        for (bytes, expected) in [
            (&b"plain ascii"[..], "plain ascii"),
            ("caf\u{e9} \u{1f600}".as_bytes(), "caf\u{e9} \u{1f600}"),
            (b"bad \xff byte", "bad \u{fffd} byte"),
            (b"", ""),
        ] {
            assert_eq!(text_value(bytes).as_str(), expected, "{bytes:?}");
        }
    }
}
