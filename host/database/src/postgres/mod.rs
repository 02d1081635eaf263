//! PostgreSQL, the engine of a site served by several hosts: the same
//! portable SQL contract as on SQLite, translated (`sql`), judged as
//! SQLite's authorizer would (`guard`), its errors given the portable kinds
//! (`errors`); statements, transactions and migrations on a pool of
//! connections that the threads using them drive (`engine`, `connection`,
//! `migrations`, `values`).

pub mod errors;
mod guard;
pub mod sql;

#[cfg(feature = "postgres")]
mod connection;
#[cfg(feature = "postgres")]
mod engine;
#[cfg(feature = "postgres")]
mod migrations;
#[cfg(feature = "postgres")]
mod values;

#[cfg(feature = "postgres")]
pub(crate) use engine::Postgres;
#[cfg(feature = "postgres")]
pub use engine::{check_url, without_password};
