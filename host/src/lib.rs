//! The `host` binary's modules, as a library so that the fuzz targets reach
//! the pure parts (the mount table's parser, the prefix dispatcher). The
//! binary is `main.rs`.
//!
//! A request's way, by folder: `http` accepts the connection and runs the
//! pipeline; `mounts` says which mount answers (`mounts::dispatch`) and
//! holds its loaded app; the host serves static files itself
//! (`static_files`), or `exec` runs the app's handler, which reaches the
//! host's `services`; `http` turns the outcome into the response, and
//! `logging` writes its access line. `table` is the mount table those parts
//! are made from, `run` a serving host's life (start, reload, stop), `cli`
//! the commands (`backup` the copy of a site's data).

mod backup;
pub mod cli;
mod compression;
mod exec;
mod http;
mod logging;
mod metrics;
pub mod mounts;
mod periodic;
mod run;
mod services;
mod static_files;
pub mod table;
