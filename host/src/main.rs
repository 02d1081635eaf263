//! `host`: serves app libraries side by side, each under its own prefix.

use std::process::ExitCode;

use clap::Parser;
use host::cli;

/// mimalloc rather than the system's allocator: measured with callgrind, a
/// hello request spent a fifth of the host's instructions in glibc's malloc
/// and free (tokio moves work between threads, so blocks are often freed by
/// another thread than the one that made them); mimalloc took 4,000 of the
/// 25,000 away. Apps keep their own allocator: `abi_stable`'s types free
/// what crosses the ABI through the allocator that made it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
