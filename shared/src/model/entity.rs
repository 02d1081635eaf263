//! How a row type is declared: once, with its fields, from which
//! [`entity!`] makes the struct, its column list, its reading from a row
//! and its fields by name for templates, so that adding a column means
//! adding one field.

use app_api::{prelude::Error, sdk::db::Row};
use minijinja::Value;

/// What [`entity!`] gives a row type.
pub(super) trait Entity: Sized {
    /// The fields' names in order, which are the table's column names.
    const FIELDS: &'static [&'static str];
    /// [`FIELDS`](Self::FIELDS) as a select list: `id, title, ...`.
    const COLUMNS: &'static str;
    /// The entity in `row`, read by column name.
    fn from_row(row: &Row<'_>) -> Result<Self, Error>;
    /// The field `name` as a template value.
    fn template_field(&self, name: &str) -> Option<Value>;
}

/// A field's value in a template; text is copied once, into the value.
pub(super) trait TemplateValue {
    fn template_value(&self) -> Value;
}

impl TemplateValue for i64 {
    fn template_value(&self) -> Value {
        Value::from(*self)
    }
}

impl TemplateValue for bool {
    fn template_value(&self) -> Value {
        Value::from(*self)
    }
}

impl TemplateValue for String {
    fn template_value(&self) -> Value {
        Value::from(self.as_str())
    }
}

/// Declares a row type: the struct as written, and its [`Entity`]
/// implementation from the same field list.
macro_rules! entity {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(#[$first_meta:meta])* pub $first:ident: $first_ty:ty,
            $( $(#[$field_meta:meta])* pub $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(#[$first_meta])* pub $first: $first_ty,
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $crate::model::entity::Entity for $name {
            const FIELDS: &'static [&'static str] = &[stringify!($first), $(stringify!($field)),*];
            const COLUMNS: &'static str = concat!(stringify!($first) $(, ", ", stringify!($field))*);

            fn from_row(row: &app_api::sdk::db::Row<'_>) -> Result<Self, app_api::prelude::Error> {
                Ok($name {
                    $first: row.get(stringify!($first))?,
                    $( $field: row.get(stringify!($field))?, )*
                })
            }

            fn template_field(&self, name: &str) -> Option<minijinja::Value> {
                use $crate::model::entity::TemplateValue;
                Some(match name {
                    stringify!($first) => self.$first.template_value(),
                    $( stringify!($field) => self.$field.template_value(), )*
                    _ => return None,
                })
            }
        }
    };
}

pub(super) use entity;
