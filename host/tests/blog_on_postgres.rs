//! The blog's test suites (`blog.rs`, `languages.rs`) again, with the
//! site's database on PostgreSQL: each test's site gets a server of its own
//! (`common::blog::site_table` reads this test target's name), and the
//! same tests must pass on both engines.

// Each suite declares `mod common` for its own target, so here the test
// support is compiled once per suite: harmless copies.
#![allow(clippy::duplicate_mod)]

#[path = "blog.rs"]
mod blog;
#[path = "languages.rs"]
mod languages;
