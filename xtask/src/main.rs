//! Project tasks.
//!
//! - `cargo xtask serve [HOST SERVE ARGS...]`: builds the host and every app
//!   in release, installs the apps into `apps/`, and runs the host on
//!   `plugins.json`.
//!   With `--reload`, it also rebuilds and reinstalls the apps when their
//!   sources change; the host (`host serve --reload`) then restarts on them.
//! - `cargo xtask install`: the build and install steps alone.
//! - `cargo xtask new-app NAME [--prefix /PREFIX] [--path DIR]`: a new app
//!   crate, in the workspace or (`--path`) standalone in DIR.
//! - `cargo xtask bench [--seconds N] [--rounds N] [--quick]`: measures the
//!   host against a bare hyper baseline (see `bench/`).
//! - `cargo xtask attack`: the slow-body flood against the shipped site; the
//!   host's memory and its ordinary requests' latency meanwhile.

mod bench;
mod scaffold;

use std::{
    env,
    ffi::OsString,
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

const USAGE: &str = "usage: cargo xtask serve [--reload] [host serve options]
       cargo xtask install
       cargo xtask new-app NAME [--prefix /PREFIX] [--path DIR]
       cargo xtask bench [--seconds N] [--rounds N] [--quick]
       cargo xtask attack";

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let result = match args.next().as_ref().and_then(|arg| arg.to_str()) {
        Some("serve") => serve(args.collect()),
        Some("install") => build_and_install(&[]).map(|_| ()),
        Some("new-app") => new_app(args.map(|arg| arg.to_string_lossy().into_owned()).collect()),
        Some("bench") => bench(args.map(|arg| arg.to_string_lossy().into_owned()).collect()),
        Some("attack") => attack(),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace this xtask runs for. `cargo run` sets CARGO_MANIFEST_DIR
/// at run time too; prefer it to the build-time value, since a target
/// folder shared with another copy of the workspace (the scaffold test
/// does that) may hold an xtask built there.
fn workspace_root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The app crates: every folder under `apps/` with a `Cargo.toml`, named
/// like its folder.
fn app_crates(root: &Path) -> Result<Vec<String>, String> {
    let apps = root.join("apps");
    let entries = fs::read_dir(&apps).map_err(|error| format!("{}: {error}", apps.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Builds the host, every app and the `extra` packages in release, and
/// installs each app as `apps/lib<name>.so`; returns the release folder.
fn build_and_install(extra: &[&str]) -> Result<PathBuf, String> {
    let root = workspace_root();
    let apps = app_crates(&root)?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "-p", "host"]);
    for package in apps.iter().map(String::as_str).chain(extra.iter().copied()) {
        command.args(["-p", package]);
    }
    let status = command
        .current_dir(&root)
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err("the release build failed (see above)".to_owned());
    }
    let release = target_dir(&root).join("release");
    for app in apps {
        let file = format!("lib{}.so", app.replace('-', "_"));
        let built = release.join(&file);
        let installed = root.join("apps").join(&file);
        // Copy then rename: overwriting a library in place would corrupt it
        // under a host that has it mapped.
        let partial = root.join("apps").join(format!(".{file}.partial"));
        fs::copy(&built, &partial)
            .and_then(|_| fs::rename(&partial, &installed))
            .map_err(|error| format!("cannot install {}: {error}", built.display()))?;
        eprintln!("xtask: installed apps/{file}");
    }
    Ok(release)
}

fn serve(host_args: Vec<OsString>) -> Result<(), String> {
    let host = build_and_install(&[])?.join("host");
    let root = workspace_root();
    let mut command = Command::new(&host);
    command
        .arg("serve")
        .args(["--config", "plugins.json"])
        .args(&host_args)
        .current_dir(&root);
    if !host_args.iter().any(|arg| arg == "--reload") {
        let error = command.exec();
        return Err(format!("cannot run {}: {error}", host.display()));
    }
    // Development: the host restarts itself when a library changes; this
    // side rebuilds the libraries when their sources change.
    let mut running = command
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", host.display()))?;
    let mut seen = sources_stamp(&root);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if let Some(status) = running.try_wait().map_err(|error| error.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("the host exited: {status}"))
            };
        }
        let now = sources_stamp(&root);
        if now == seen {
            continue;
        }
        seen = now;
        eprintln!("xtask: sources changed, rebuilding");
        match build_and_install(&[]) {
            Ok(_) => eprintln!("xtask: rebuilt; the host restarts on the new libraries"),
            Err(error) => eprintln!("xtask: {error}; the running version keeps serving"),
        }
    }
}

/// The newest modification time and the number of source files of the
/// host, the shared crates and the apps.
fn sources_stamp(root: &Path) -> (std::time::SystemTime, usize) {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime, count: &mut usize) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest, count);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                *count += 1;
                *newest = (*newest).max(modified);
            }
        }
    }
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut count = 0;
    for app in app_crates(root).unwrap_or_default() {
        walk(&root.join("apps").join(app), &mut newest, &mut count);
    }
    for dir in ["host/src", "host/database/src", "app-api", "shared"] {
        walk(&root.join(dir), &mut newest, &mut count);
    }
    (newest, count)
}

fn new_app(args: Vec<String>) -> Result<(), String> {
    let Some((name, mut options)) = args.split_first() else {
        return Err(USAGE.to_owned());
    };
    let (mut prefix, mut path) = (None, None);
    while let [flag, value, rest @ ..] = options {
        match flag.as_str() {
            "--prefix" if prefix.is_none() => prefix = Some(value.as_str()),
            "--path" if path.is_none() => path = Some(Path::new(value)),
            _ => return Err(USAGE.to_owned()),
        }
        options = rest;
    }
    if !options.is_empty() || name.starts_with('-') {
        return Err(USAGE.to_owned());
    }
    let cwd = env::current_dir().map_err(|error| format!("no current folder: {error}"))?;
    let report = scaffold::new_app(&workspace_root(), &cwd, name, prefix, path)?;
    println!("{report}");
    Ok(())
}

fn attack() -> Result<(), String> {
    let release = build_and_install(&[])?;
    let report = bench::attack::run(&workspace_root(), &release)?;
    print!("{report}");
    Ok(())
}

fn bench(args: Vec<String>) -> Result<(), String> {
    let options = bench::Options::parse(&args)?;
    let release = build_and_install(&["bench"])?;
    let report = bench::run(&workspace_root(), &release, &options)?;
    print!("{report}");
    Ok(())
}
