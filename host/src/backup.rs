//! `host backup DEST`: a copy of what a site keeps, taken while it serves,
//! from which it can be started again: each SQLite database as it is at
//! one moment (SQLite's online backup), the stored uploads and the secret
//! key, laid out as in the data folder, so that the copy is a data folder.
//! What lives elsewhere (PostgreSQL, an S3 bucket, a key file the table
//! names) is named with the way to back it up.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};

use crate::{
    services::secret::SECRET_FILE,
    table::{Location, MountTable, UploadsStore},
};

/// Copies the site of `table` into the new folder `destination`; what was
/// done and what was left to other tools, one line each.
pub fn backup(table: &MountTable, destination: &Path) -> anyhow::Result<Vec<String>> {
    let empty = fs::read_dir(destination).map(|mut entries| entries.next().is_none());
    match empty {
        Ok(true) => {}
        Ok(false) => bail!(
            "{} is not empty: back up into a new folder (nothing was written)",
            destination.display()
        ),
        Err(_) if destination.exists() => bail!(
            "{} is not a folder: back up into a new folder (nothing was written)",
            destination.display()
        ),
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(destination)
            .with_context(|| format!("cannot create {}", destination.display()))?,
    }
    let data_dir = &table.data_dir;
    // where a file of the data folder goes in the copy
    let place = |path: &Path| -> PathBuf {
        destination.join(
            path.strip_prefix(data_dir)
                .unwrap_or_else(|_| Path::new(path.file_name().unwrap_or(path.as_os_str()))),
        )
    };
    let mut said = Vec::new();
    for database in &table.databases {
        let name = &database.name;
        match &database.location {
            Location::Sqlite(path) if !path.exists() => {
                said.push(format!("database {name}: {} does not exist yet", path.display()));
            }
            Location::Sqlite(path) => {
                let copy = place(path);
                if let Some(folder) = copy.parent() {
                    fs::create_dir_all(folder)
                        .with_context(|| format!("cannot create {}", folder.display()))?;
                }
                host_database::backup_sqlite(path, &copy).map_err(|failure| {
                    anyhow::anyhow!("database {name} ({}): {failure}", path.display())
                })?;
                said.push(format!(
                    "database {name}: {} copied to {}",
                    path.display(),
                    copy.display()
                ));
            }
            Location::Postgres(_) => said.push(format!(
                "database {name} is on PostgreSQL ({}): back it up with pg_dump, e.g. pg_dump -Fc -d {:?} > {name}.dump (nothing copied)",
                database.location.shown(),
                database.location.shown()
            )),
        }
    }
    match &table.uploads {
        UploadsStore::Folder(folder) if folder.is_dir() => {
            let copy = place(folder);
            fs::create_dir_all(&copy)
                .with_context(|| format!("cannot create {}", copy.display()))?;
            let mut copied = 0;
            for name in crate::services::uploads::stored_names(folder) {
                fs::copy(folder.join(&name), copy.join(&name))
                    .with_context(|| format!("cannot copy upload {name}"))?;
                copied += 1;
            }
            said.push(format!(
                "uploads: {copied} files copied from {} to {}",
                folder.display(),
                copy.display()
            ));
        }
        UploadsStore::Folder(folder) => {
            said.push(format!("uploads: {} does not exist yet", folder.display()));
        }
        UploadsStore::S3(url) => said.push(format!(
            "uploads are in {url}: back up the bucket with the store's own tools (nothing copied)"
        )),
    }
    match &table.secret_key_file {
        Some(file) => said.push(format!(
            "the secret key is {} (secret_key_file): keep it with the backup, it is not copied",
            file.display()
        )),
        None => {
            let key = data_dir.join(SECRET_FILE);
            if key.is_file() {
                let copy = destination.join(SECRET_FILE);
                fs::copy(&key, &copy).with_context(|| format!("cannot copy {}", key.display()))?;
                fs::set_permissions(&copy, fs::Permissions::from_mode(0o600))?;
                said.push(format!(
                    "{SECRET_FILE} copied (logins stay valid on a restored site): keep the backup as private as the data folder"
                ));
            }
        }
    }
    Ok(said)
}
