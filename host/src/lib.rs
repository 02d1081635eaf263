//! The `host` binary's modules, as a library so that fuzz targets and
//! benchmarks can reach the pure parts (the prefix dispatcher, the mount
//! table parser). The binary is `main.rs`.

pub mod app_request;
pub mod cli;
pub mod coalesce;
pub mod config;
pub mod dispatch;
pub mod handler_pool;
pub mod handover;
pub mod head_timeout;
pub mod lifecycle;
pub mod loader;
pub mod logging;
pub mod metrics;
pub mod periodic;
pub mod proxy;
pub mod server;
pub mod services;
pub mod site;
pub mod static_files;
