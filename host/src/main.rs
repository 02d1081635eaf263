//! `host`: serves app libraries side by side, each under its own prefix.

use std::process::ExitCode;

use clap::Parser;
use host::cli;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
