//! `cargo xtask new-app NAME [--prefix /PREFIX] [--path DIR]`: a new app
//! crate (a migration creating its table, a page listing its rows, a form
//! protected by CSRF, a JSON endpoint, unit tests with a database) in
//! `apps/NAME`, added to the workspace, or with `--path`, a standalone crate
//! in DIR with its own `Cargo.toml`, `Cargo.lock` and target folder,
//! depending on this checkout's `app-api` by version and path. With
//! `--prefix`, the mount goes into `plugins.json` too.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.txt");
const STANDALONE_CARGO_TOML: &str = include_str!("scaffold/Cargo.standalone.toml.txt");
const LIB_RS: &str = include_str!("scaffold/lib.rs.txt");
const INDEX_HTML: &str = include_str!("scaffold/index.html.txt");
const README_MD: &str = include_str!("scaffold/README.md.txt");
const GITIGNORE: &str = include_str!("scaffold/gitignore.txt");

/// Checks an app name: it names a crate, a folder and a library file.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid app name: use lowercase letters, digits and '_', starting with a letter (e.g. \"reports\")"
        ))
    }
}

/// Adds `"apps/NAME"` to the workspace's `members` and `default-members`.
pub fn add_member(manifest: &str, name: &str) -> Result<String, String> {
    let entry = format!("\"apps/{name}\"");
    if manifest.contains(&entry) {
        return Ok(manifest.to_owned());
    }
    let mut out = String::with_capacity(manifest.len() + 64);
    let mut in_members = false;
    let mut added = 0;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("default-members = [") && trimmed.ends_with(']') {
            let inner = trimmed
                .trim_start_matches("default-members = [")
                .trim_end_matches(']')
                .trim();
            let separator = if inner.is_empty() { "" } else { ", " };
            out.push_str(&format!("default-members = [{inner}{separator}{entry}]\n"));
            added += 1;
            continue;
        }
        if trimmed == "members = [" {
            in_members = true;
        } else if in_members && trimmed == "]" {
            out.push_str(&format!("    {entry},\n"));
            in_members = false;
            added += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if added == 0 {
        return Err("could not find the workspace's members list in Cargo.toml".to_owned());
    }
    Ok(out)
}

/// Adds a mount for the app to the mount table's `mounts`.
pub fn add_mount(table: &str, name: &str, prefix: &str) -> Result<(String, String), String> {
    let mut value: serde_json::Value =
        serde_json::from_str(table).map_err(|error| format!("plugins.json: {error}"))?;
    let entry = serde_json::json!({
        "name": name,
        "prefix": prefix,
        "library": format!("apps/lib{name}.so"),
        "static_folder": "shared/static",
    });
    let mounts = value
        .get_mut("mounts")
        .and_then(|mounts| mounts.as_array_mut())
        .ok_or("plugins.json has no \"mounts\" list")?;
    if mounts.iter().any(|mount| mount["name"] == name) {
        return Err(format!("plugins.json already has a mount named {name:?}"));
    }
    if mounts.iter().any(|mount| mount["prefix"] == prefix) {
        return Err(format!(
            "plugins.json already mounts something at {prefix:?}"
        ));
    }
    mounts.push(entry.clone());
    let mut text = serde_json::to_string_pretty(&value).map_err(|error| error.to_string())?;
    text.push('\n');
    Ok((text, serde_json::to_string(&entry).unwrap_or_default()))
}

/// The version of the SDK in this checkout, from `app-api/Cargo.toml`.
fn sdk_version(root: &Path) -> Result<String, String> {
    let manifest = root.join("app-api/Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|error| format!("{}: {error}", manifest.display()))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("version = \"")
                .and_then(|rest| rest.strip_suffix('"'))
        })
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no version line", manifest.display()))
}

/// `path` made absolute against `base`, with `.` and `..` resolved by text
/// (it may not exist yet).
fn absolute(base: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The path from the folder `from` to `to`, both absolute: relative, so
/// that a checkout and an app side by side can move together.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &to[common..] {
        out.push(component);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Creates the app: in the workspace, or with `path` (relative to `cwd`) a
/// standalone crate there. Returns what to tell the user.
pub fn new_app(
    root: &Path,
    cwd: &Path,
    name: &str,
    prefix: Option<&str>,
    path: Option<&Path>,
) -> Result<String, String> {
    check_name(name)?;
    if let Some(prefix) = prefix.filter(|prefix| !prefix.starts_with('/')) {
        return Err(format!(
            "--prefix {prefix:?} must start with '/' (e.g. \"/{name}\")"
        ));
    }
    let standalone = path.map(|path| absolute(cwd, path));
    let dir = standalone
        .clone()
        .unwrap_or_else(|| root.join("apps").join(name));
    if dir.exists() && fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_some()) {
        return Err(format!("{} already exists", dir.display()));
    }
    let io = |error: std::io::Error| format!("{}: {error}", dir.display());
    let manifest_path = root.join("Cargo.toml");
    let workspace_manifest = match standalone {
        None => Some(add_member(
            &fs::read_to_string(&manifest_path).map_err(io)?,
            name,
        )?),
        Some(_) => None,
    };
    let table = match prefix {
        Some(prefix) => Some(add_mount(
            &fs::read_to_string(root.join("plugins.json")).map_err(io)?,
            name,
            prefix,
        )?),
        None => None,
    };
    fs::create_dir_all(dir.join("src")).map_err(io)?;
    fs::create_dir_all(dir.join("templates")).map_err(io)?;
    let shown = |path: &Path| relative(cwd, path).display().to_string();
    let mut report = match &standalone {
        None => {
            fs::write(dir.join("Cargo.toml"), CARGO_TOML.replace("{name}", name)).map_err(io)?;
            format!(
                "created apps/{name}: Cargo.toml, src/lib.rs (a migration, a page, a form, a JSON endpoint, unit tests), templates/index.html\n"
            )
        }
        Some(dir) => {
            let version = sdk_version(root)?;
            let sdk = relative(dir, &root.join("app-api"));
            fs::write(
                dir.join("Cargo.toml"),
                STANDALONE_CARGO_TOML
                    .replace("{name}", name)
                    .replace("{app_api_version}", &version)
                    .replace("{app_api_path}", &sdk.display().to_string()),
            )
            .map_err(io)?;
            // the versions the host was built and tested with; cargo drops
            // what the app does not use at its first build
            fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(io)?;
            fs::write(dir.join(".gitignore"), GITIGNORE).map_err(io)?;
            fs::write(
                dir.join("README.md"),
                README_MD
                    .replace("{name}", name)
                    .replace("{site}", &relative(dir, root).display().to_string()),
            )
            .map_err(io)?;
            format!(
                "created {}: Cargo.toml, Cargo.lock, src/lib.rs (a migration, a page, a form, a JSON endpoint, unit tests), templates/index.html, README.md\n\
                 it depends on app-api {version} at {}, and builds into its own target folder\n",
                shown(dir),
                shown(&root.join("app-api")),
            )
        }
    };
    fs::write(dir.join("src/lib.rs"), LIB_RS.replace("{name}", name)).map_err(io)?;
    fs::write(dir.join("templates/index.html"), INDEX_HTML).map_err(io)?;
    if let Some(manifest) = workspace_manifest {
        fs::write(&manifest_path, manifest).map_err(io)?;
        report.push_str(&format!(
            "added apps/{name} to the workspace in Cargo.toml\n"
        ));
    }
    let entry = format!(
        "{{\"name\": \"{name}\", \"prefix\": \"/{name}\", \"library\": \"apps/lib{name}.so\", \"static_folder\": \"shared/static\"}}"
    );
    match table {
        Some((text, entry)) => {
            fs::write(root.join("plugins.json"), text).map_err(io)?;
            report.push_str(&format!("added to plugins.json: {entry}\n"));
        }
        None => report.push_str(&format!(
            "mount it by adding this entry to \"mounts\" in plugins.json:\n  {entry}\n"
        )),
    }
    match &standalone {
        None => report.push_str("then run: cargo xtask serve"),
        Some(dir) => report.push_str(&format!(
            "then run: cd {} && cargo test && cargo build --release && cp target/release/lib{name}.so {}/",
            shown(dir),
            relative(dir, &root.join("apps")).display()
        )),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_file_friendly() {
        assert!(check_name("reports").is_ok());
        assert!(check_name("sales_2").is_ok());
        for bad in ["", "Reports", "2sales", "my-app", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn members_get_the_new_app() {
        let manifest = "[workspace]\nmembers = [\n    \"host\",\n    \"apps/admin\",\n]\ndefault-members = [\"host\", \"apps/admin\"]\n";
        let updated = add_member(manifest, "reports").unwrap();
        assert!(
            updated.contains("    \"apps/admin\",\n    \"apps/reports\",\n]"),
            "{updated}"
        );
        assert!(updated.contains("default-members = [\"host\", \"apps/admin\", \"apps/reports\"]"));
        // adding twice changes nothing
        assert_eq!(add_member(&updated, "reports").unwrap(), updated);
    }

    #[test]
    fn paths_between_folders_are_relative() {
        let rows = [
            ("/work/guestbook", "/work/site/app-api", "../site/app-api"),
            ("/work/site/apps/x", "/work/site/app-api", "../../app-api"),
            ("/work/site", "/work/site/app-api", "app-api"),
            ("/work/site", "/work/site", "."),
            (
                "/home/ann/app",
                "/srv/site/app-api",
                "../../../srv/site/app-api",
            ),
        ];
        for (from, to, expected) in rows {
            assert_eq!(
                relative(Path::new(from), Path::new(to)),
                Path::new(expected),
                "{from} -> {to}"
            );
        }
        assert_eq!(
            absolute(Path::new("/work/site"), Path::new("../guestbook/./x/..")),
            Path::new("/work/guestbook")
        );
        assert_eq!(
            absolute(Path::new("/work/site"), Path::new("/tmp/app")),
            Path::new("/tmp/app")
        );
    }

    #[test]
    fn mounts_get_the_new_app_unless_taken() {
        let table = r#"{"listen": "127.0.0.1:5000", "mounts": [{"name": "frontend", "prefix": "/", "library": "apps/libfrontend.so"}]}"#;
        let (text, entry) = add_mount(table, "reports", "/reports").unwrap();
        assert!(entry.contains("\"prefix\":\"/reports\""));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["mounts"][1]["library"], "apps/libreports.so");
        // the existing keys keep their order
        assert!(text.find("listen").unwrap() < text.find("mounts").unwrap());
        assert!(add_mount(&text, "reports", "/other").is_err());
        assert!(add_mount(&text, "other", "/reports").is_err());
    }
}
