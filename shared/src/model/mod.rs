//! The blog's data model on the host's database: users, posts (each in a
//! language), images and the ordered post↔image relation, and readers'
//! comments.
//!
//! - `migrations`: the schema, step by step;
//! - `entity` and `entities`: the rows as types, each declared once;
//! - `presentation`: how posts read in templates;
//! - `validation`: what a change may be, and why one is refused;
//! - `queries`: [`Blog`], every read and write.
//!
//! All SQL here follows the portable contract of [`app_api::sdk::db`]:
//! numbered placeholders, no `AUTOINCREMENT`, booleans as 0/1, times as
//! Unix seconds.

mod entities;
mod entity;
mod migrations;
mod presentation;
mod queries;
mod validation;

pub use entities::{Comment, Image, Post, PostSummary, User, now};
pub use queries::{Blog, CommentLimit, LoginLimits, PendingComment, PublishedPost};
pub use validation::{Change, CommentInput, PostInput, Refusal, slugify};
