//! `cargo xtask serve [HOST SERVE ARGS...]`: builds the workspace in release,
//! installs every app library into `apps/`, and runs the host on
//! `plugins.json`.

use std::{
    env,
    ffi::OsString,
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let result = match args.next().as_ref().and_then(|arg| arg.to_str()) {
        Some("serve") => serve(args.collect()),
        Some("install") => build_and_install().map(|_| ()),
        _ => Err(
            "usage: cargo xtask serve [host serve options]\n       cargo xtask install".to_owned(),
        ),
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

/// Builds the default members in release and installs every app under
/// `apps/` as `apps/lib<name>.so`; returns the host binary.
fn build_and_install() -> Result<PathBuf, String> {
    let root = workspace_root();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release"])
        .current_dir(&root)
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err("the release build failed (see above)".to_owned());
    }
    let release = target_dir(&root).join("release");
    let apps = root.join("apps");
    let entries = fs::read_dir(&apps).map_err(|error| format!("{}: {error}", apps.display()))?;
    for entry in entries.flatten() {
        if !entry.path().join("Cargo.toml").is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().replace('-', "_");
        let file = format!("lib{name}.so");
        let built = release.join(&file);
        let installed = apps.join(&file);
        // Copy then rename: overwriting a library in place would corrupt it
        // under a host that has it mapped.
        let partial = apps.join(format!(".{file}.partial"));
        fs::copy(&built, &partial)
            .and_then(|_| fs::rename(&partial, &installed))
            .map_err(|error| format!("cannot install {}: {error}", built.display()))?;
        eprintln!("xtask: installed {}", installed.display());
    }
    Ok(release.join("host"))
}

fn serve(host_args: Vec<OsString>) -> Result<(), String> {
    let host = build_and_install()?;
    let root = workspace_root();
    let error = Command::new(&host)
        .arg("serve")
        .args(["--config", "plugins.json"])
        .args(host_args)
        .current_dir(&root)
        .exec();
    Err(format!("cannot run {}: {error}", host.display()))
}
