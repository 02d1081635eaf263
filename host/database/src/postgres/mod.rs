//! The groundwork of the PostgreSQL backend: how the portable SQL contract
//! reads on PostgreSQL (`sql`) and what its errors mean to apps (`errors`).
//! The connection pool and the service that runs statements on it come
//! next; these parts are pure and tested on their own.

pub mod errors;
pub mod sql;
