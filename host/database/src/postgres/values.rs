//! The contract's values on PostgreSQL's wire: parameters bound as the
//! type their placeholder was cast to (`sql::placeholders`), and result
//! columns read back as the five portable values, whatever PostgreSQL type
//! an expression has (`COUNT(*)` is `bigint`, `SUM` of integers `numeric`,
//! a comparison `boolean`).

use std::error::Error;

use abi_stable::std_types::RString;
use app_api_abi::DbValue;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type Boxed = Box<dyn Error + Sync + Send>;

/// A parameter: its placeholder carries the matching cast, so the type
/// PostgreSQL asks for is the value's own (`NULL` takes any).
#[derive(Debug)]
pub struct Param<'v>(pub &'v DbValue);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Boxed> {
        match self.0 {
            DbValue::Null => Ok(IsNull::Yes),
            DbValue::Integer(number) => number.to_sql(ty, out),
            DbValue::Real(number) => number.to_sql(ty, out),
            DbValue::Text(text) => text.as_str().to_sql(ty, out),
            DbValue::Blob(bytes) => bytes.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // checked per value in `to_sql`'s callee; a NULL fits any column
        true
    }

    to_sql_checked!();
}

/// One column's value as the contract has it.
#[derive(Debug)]
pub struct Cell(pub DbValue);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, Boxed> {
        let value = match *ty {
            Type::BOOL => DbValue::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => DbValue::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => DbValue::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => DbValue::Integer(i64::from_sql(ty, raw)?),
            Type::OID => DbValue::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => DbValue::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => DbValue::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => DbValue::Blob(raw.to_vec().into()),
            Type::UUID => DbValue::Text(uuid(raw)?.into()),
            // JSONB's binary form is a version byte, then the text
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => DbValue::Text(RString::from(std::str::from_utf8(text)?)),
                _ => return Err("unknown jsonb format".into()),
            },
            // text, varchar, char(n), name, json, and the types of
            // extensions sent as text (citext)
            _ if <&str as FromSql>::accepts(ty) || *ty == Type::JSON => {
                DbValue::Text(RString::from(std::str::from_utf8(raw)?))
            }
            _ => {
                return Err(format!(
                    "PostgreSQL's type {ty} has no value in the portable contract: cast the column in the query (::text, ::bigint or ::double precision)"
                )
                .into());
            }
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Cell, Boxed> {
        Ok(Cell(DbValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` (binary form: digit count, weight of the first digit in
/// powers of 10000, sign, display scale, then base-10000 digits): an
/// integer when it has no fractional digits and fits, else a float.
fn numeric(raw: &[u8]) -> Result<DbValue, Boxed> {
    let word = |at: usize| -> Result<u16, Boxed> {
        raw.get(at..at + 2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
            .ok_or_else(|| "a numeric value is cut short".into())
    };
    let count = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let scale = word(6)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(DbValue::Real(f64::NAN)),
        0xD000 => return Ok(DbValue::Real(f64::INFINITY)),
        0xF000 => return Ok(DbValue::Real(f64::NEG_INFINITY)),
        _ => return Err("a numeric value has an unknown sign".into()),
    }
    let negative = sign == 0x4000;
    let digits: Vec<u16> = (0..count)
        .map(|index| word(8 + 2 * index))
        .collect::<Result<_, _>>()?;
    if scale == 0 {
        // every digit stands at a power ≥ 0: an integer
        let mut value: i128 = 0;
        let mut fits = true;
        for power in (0..=weight).rev() {
            let index = (weight - power) as usize;
            let digit = i128::from(digits.get(index).copied().unwrap_or(0));
            match value.checked_mul(10_000).and_then(|v| v.checked_add(digit)) {
                Some(next) => value = next,
                None => fits = false,
            }
        }
        if negative {
            value = -value;
        }
        if fits && let Ok(integer) = i64::try_from(value) {
            return Ok(DbValue::Integer(integer));
        }
    }
    let mut value = 0.0_f64;
    for (index, digit) in digits.iter().enumerate() {
        value += f64::from(*digit) * 10_000_f64.powi(weight - index as i32);
    }
    Ok(DbValue::Real(if negative { -value } else { value }))
}

/// A UUID's 16 bytes in their usual text form.
fn uuid(raw: &[u8]) -> Result<String, Boxed> {
    if raw.len() != 16 {
        return Err("a uuid is not 16 bytes".into());
    }
    let mut text = String::with_capacity(36);
    for (index, byte) in raw.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, scale]
            .into_iter()
            .chain(digits.iter().copied())
        {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_are_integers_when_whole_and_floats_otherwise() {
        for (raw, expected) in [
            // 0: no digits
            (numeric_bytes(0, 0, 0, &[]), DbValue::Integer(0)),
            // 12345 = 1|2345
            (numeric_bytes(1, 0, 0, &[1, 2345]), DbValue::Integer(12345)),
            // -7
            (numeric_bytes(0, 0x4000, 0, &[7]), DbValue::Integer(-7)),
            // 20000: trailing zero digits are left out
            (numeric_bytes(1, 0, 0, &[2]), DbValue::Integer(20000)),
            // 2.5 = 2 . 5000
            (numeric_bytes(0, 0, 1, &[2, 5000]), DbValue::Real(2.5)),
            // 0.25
            (numeric_bytes(-1, 0, 2, &[2500]), DbValue::Real(0.25)),
            // 10^40: beyond i64
            (numeric_bytes(10, 0, 0, &[1]), DbValue::Real(1e40)),
            (numeric_bytes(0, 0xC000, 0, &[]), DbValue::Real(f64::NAN)),
        ] {
            let value = numeric(&raw).unwrap();
            match (&value, &expected) {
                (DbValue::Real(a), DbValue::Real(b)) if a.is_nan() && b.is_nan() => {}
                _ => assert_eq!(value, expected, "{raw:?}"),
            }
        }
        assert!(numeric(&[0, 1]).is_err());
    }

    #[test]
    fn uuids_read_as_their_text() {
        let raw: Vec<u8> = (0..16).collect();
        assert_eq!(uuid(&raw).unwrap(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert!(uuid(&raw[..3]).is_err());
    }
}
