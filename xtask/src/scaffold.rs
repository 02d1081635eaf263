//! `cargo xtask new-app NAME [--prefix /PREFIX]`: a new app crate in
//! `apps/NAME` (a route, a template, a unit test), added to the workspace,
//! and with `--prefix`, to `plugins.json`.

use std::{fs, path::Path};

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.txt");
const LIB_RS: &str = include_str!("scaffold/lib.rs.txt");
const INDEX_HTML: &str = include_str!("scaffold/index.html.txt");

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

/// Creates the app. Returns what to tell the user.
pub fn new_app(root: &Path, name: &str, prefix: Option<&str>) -> Result<String, String> {
    check_name(name)?;
    if let Some(prefix) = prefix.filter(|prefix| !prefix.starts_with('/')) {
        return Err(format!(
            "--prefix {prefix:?} must start with '/' (e.g. \"/{name}\")"
        ));
    }
    let dir = root.join("apps").join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let io = |error: std::io::Error| format!("{}: {error}", dir.display());
    let manifest_path = root.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path).map_err(io)?;
    let manifest = add_member(&manifest, name)?;
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
    fs::write(dir.join("Cargo.toml"), CARGO_TOML.replace("{name}", name)).map_err(io)?;
    fs::write(dir.join("src/lib.rs"), LIB_RS.replace("{name}", name)).map_err(io)?;
    fs::write(dir.join("templates/index.html"), INDEX_HTML).map_err(io)?;
    fs::write(&manifest_path, manifest).map_err(io)?;
    let mut report = format!(
        "created apps/{name}: Cargo.toml, src/lib.rs (a route and a unit test), templates/index.html\n\
         added apps/{name} to the workspace in Cargo.toml\n"
    );
    match table {
        Some((text, entry)) => {
            fs::write(root.join("plugins.json"), text).map_err(io)?;
            report.push_str(&format!("added to plugins.json: {entry}\n"));
        }
        None => report.push_str(&format!(
            "mount it by adding this entry to \"mounts\" in plugins.json:\n  {{\"name\": \"{name}\", \"prefix\": \"/{name}\", \"library\": \"apps/lib{name}.so\", \"static_folder\": \"shared/static\"}}\n"
        )),
    }
    report.push_str("then run: cargo xtask serve");
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
