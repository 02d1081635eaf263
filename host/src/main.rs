//! `host`: serves app libraries side by side, each under its own prefix.

mod cli;
mod config;
mod dispatch;
mod handler_pool;
mod handover;
mod lifecycle;
mod loader;
mod logging;
mod metrics;
mod proxy;
mod server;
mod services;
mod site;
mod static_files;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
