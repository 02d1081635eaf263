//! `host`: serves app libraries side by side, each under its own prefix.

use std::process::ExitCode;

use clap::Parser;
use host::cli;

/// jemalloc, for the whole process: built without a symbol prefix, it
/// defines `malloc`, `free` and the rest in this executable, which exports
/// them, so the app libraries, SQLite and libc allocate with it too (one
/// allocator in the process, as with `LD_PRELOAD`). The blog's pages
/// allocate mostly in the apps, and are served 10 to 18% faster than with
/// glibc's malloc (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it starts (`MALLOC_CONF` in the
/// environment still applies on top): freed pages go back to the system
/// within a second instead of ten, which keeps the host's RSS after load
/// where glibc's malloc kept it.
// SAFETY: jemalloc declares `const char *malloc_conf` (weak; this strong
// definition replaces its default) and only reads it: a reference to a
// sized byte array is a plain pointer, and the string is NUL-terminated
// and lives for the whole program.
#[allow(unsafe_code)]
#[unsafe(export_name = "malloc_conf")]
pub static MALLOC_CONF: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    // Everything the host creates is its own alone unless made otherwise:
    // the database holds password hashes, the data folder the secret key
    // and uploads not yet published (log files are made 0640 by hand).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
