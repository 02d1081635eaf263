//! Stored uploads: files apps keep under `<data_dir>/uploads/` with random
//! names, which the host serves under each mount's uploads URL path.

use std::{
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

/// The folder below the data directory.
pub const UPLOADS_FOLDER: &str = "uploads";

/// The extensions uploads may have: images only. Served from the site's own
/// origin, an `.html` or `.svg` file someone uploaded would run script as
/// the site.
const STORED_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "webp", "avif"];

/// The store.
pub struct Uploads {
    folder: PathBuf,
}

impl Uploads {
    /// The store in `<data_dir>/uploads`, its folder created if missing
    /// when `create`.
    pub fn open(data_dir: &Path, create: bool) -> Result<Uploads, String> {
        let folder = data_dir.join(UPLOADS_FOLDER);
        if create {
            std::fs::create_dir_all(&folder).map_err(|error| {
                format!(
                    "cannot create the uploads folder {}: {error}",
                    folder.display()
                )
            })?;
        }
        Ok(Uploads { folder })
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Whether the folder exists.
    pub fn exists(&self) -> bool {
        self.folder.is_dir()
    }

    /// Whether an upload `name` is stored.
    pub fn contains(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.folder.join(name).is_file()
    }

    /// Writes `data` under a new random name ending in `.{extension}` and
    /// returns the name. The file appears whole or not at all.
    pub fn store(&self, data: &[u8], extension: &str) -> Result<String, String> {
        if !STORED_EXTENSIONS.contains(&extension) {
            return Err(format!(
                "extension {extension:?} is not one the host stores: uploads are images, {}",
                STORED_EXTENSIONS.join(", ")
            ));
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|error| error.to_string())?;
        let stem: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let name = format!("{stem}.{extension}");
        let partial = self.folder.join(format!(".{name}.partial"));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create_new(&partial)?;
            file.write_all(data)?;
            file.sync_all()?;
            std::fs::rename(&partial, self.folder.join(&name))
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&partial);
            format!(
                "cannot write {}: {error}",
                self.folder.join(&name).display()
            )
        })?;
        Ok(name)
    }

    /// Deletes the upload `name`; `false` if there is none.
    pub fn delete(&self, name: &str) -> Result<bool, String> {
        check_name(name)?;
        match std::fs::remove_file(self.folder.join(name)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(format!("cannot delete upload {name:?}: {error}")),
        }
    }
}

/// The names of the uploads stored in `folder` (none if it is missing);
/// files being written (hidden, `.partial`) are not uploads yet.
pub fn stored_names(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| check_name(name).is_ok())
        .collect();
    names.sort();
    names
}

/// A stored name is one plain file name: no folders, no hidden files.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'_' || byte == b'-'
        });
    if plain {
        Ok(())
    } else {
        Err(format!("{name:?} is not the name of a stored upload"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_under_random_names_and_deletes_only_plain_names() {
        let data_dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(data_dir.path(), true).unwrap();
        let first = uploads.store(b"one", "png").unwrap();
        let second = uploads.store(b"two", "png").unwrap();
        assert_ne!(first, second);
        assert!(first.ends_with(".png") && first.len() == 36, "{first}");
        assert_eq!(
            std::fs::read(uploads.folder().join(&first)).unwrap(),
            b"one"
        );
        for bad in [
            "",
            "PNG",
            "p/g",
            "..",
            "html",
            "svg",
            "txt",
            "averyverylongone",
        ] {
            assert!(uploads.store(b"x", bad).is_err(), "{bad:?}");
        }
        assert_eq!(uploads.delete(&first), Ok(true));
        assert_eq!(uploads.delete(&first), Ok(false));
        for bad in ["../secret.key", "a/b", ".hidden", ""] {
            assert!(uploads.delete(bad).is_err(), "{bad:?}");
        }
        assert_eq!(std::fs::read_dir(uploads.folder()).unwrap().count(), 1);
        assert_eq!(
            stored_names(uploads.folder()),
            std::slice::from_ref(&second)
        );
        assert!(uploads.contains(&second));
        assert!(!uploads.contains(&first));
        assert!(!uploads.contains("../secret.key"));
    }

    #[test]
    fn a_store_that_may_not_create_leaves_a_missing_folder_missing() {
        let data_dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(data_dir.path(), false).unwrap();
        assert!(!uploads.exists());
        assert!(!data_dir.path().join(UPLOADS_FOLDER).exists());
        assert!(stored_names(uploads.folder()).is_empty());
    }
}
