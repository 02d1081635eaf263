//! Project tasks.
//!
//! - `cargo xtask serve [HOST SERVE ARGS...]`: builds the host and every app
//!   in release, installs the apps into `apps/`, and runs the host on
//!   `plugins.json`.
//! - `cargo xtask install`: the build and install steps alone.
//! - `cargo xtask bench [--seconds N] [--rounds N] [--quick]`: measures the
//!   host against a bare hyper baseline (see `bench.rs`).

mod bench;

use std::{
    env,
    ffi::OsString,
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

const USAGE: &str = "usage: cargo xtask serve [host serve options]
       cargo xtask install
       cargo xtask bench [--seconds N] [--rounds N] [--quick]";

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let result = match args.next().as_ref().and_then(|arg| arg.to_str()) {
        Some("serve") => serve(args.collect()),
        Some("install") => build_and_install(&[]).map(|_| ()),
        Some("bench") => bench(args.map(|arg| arg.to_string_lossy().into_owned()).collect()),
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
        eprintln!("xtask: installed {}", installed.display());
    }
    Ok(release)
}

fn serve(host_args: Vec<OsString>) -> Result<(), String> {
    let host = build_and_install(&[])?.join("host");
    let error = Command::new(&host)
        .arg("serve")
        .args(["--config", "plugins.json"])
        .args(host_args)
        .current_dir(workspace_root())
        .exec();
    Err(format!("cannot run {}: {error}", host.display()))
}

fn bench(args: Vec<String>) -> Result<(), String> {
    let options = bench::Options::parse(&args)?;
    let release = build_and_install(&["bench"])?;
    let report = bench::run(&workspace_root(), &release, &options)?;
    print!("{report}");
    Ok(())
}
