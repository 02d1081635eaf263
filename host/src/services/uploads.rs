//! Stored uploads: files apps keep with random names, which the host
//! serves under each mount's uploads URL path. In a folder (`file:`, by
//! default `<data_dir>/uploads/`) or, for a site served by several hosts,
//! in S3 or an S3-compatible store (`s3://bucket/prefix`, through the
//! `object_store` crate), which every host reads.

use std::{
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use object_store::{
    ObjectStore, PutMode, PutOptions, PutPayload, aws::AmazonS3Builder, path::Path as Key,
};

use crate::table::UploadsStore;

/// The folder below the data directory where uploads of releases before
/// `uploads.url` are, and where they still go by default.
pub const UPLOADS_FOLDER: &str = "uploads";

/// The extensions uploads may have: images only. Served from the site's own
/// origin, an `.html` or `.svg` file someone uploaded would run script as
/// the site.
const STORED_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "webp", "avif"];

/// The store.
pub struct Uploads {
    place: Place,
}

/// Where the uploads are.
#[derive(Clone)]
pub enum Place {
    /// A folder.
    Folder(PathBuf),
    /// Keys below `prefix` in an object store.
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: Key,
        /// As the table writes it, for messages.
        url: String,
    },
}

impl Uploads {
    /// The store `config` names; a folder is created if missing when
    /// `create`. An object store is reached only when used.
    pub fn open(config: &UploadsStore, create: bool) -> Result<Uploads, String> {
        let place = match config {
            UploadsStore::Folder(folder) => {
                if create {
                    std::fs::create_dir_all(folder).map_err(|error| {
                        format!(
                            "cannot create the uploads folder {}: {error}",
                            folder.display()
                        )
                    })?;
                }
                Place::Folder(folder.clone())
            }
            UploadsStore::S3(url) => {
                let rest = url.strip_prefix("s3://").unwrap_or(url);
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                // endpoint, region and credentials as the AWS tools read them
                let store = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|error| {
                        format!(
                            "uploads.url {url:?}: {error} (the store's endpoint, region and credentials come from AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                        )
                    })?;
                Place::Store {
                    store: Arc::new(store),
                    prefix: Key::from(prefix),
                    url: url.clone(),
                }
            }
        };
        Ok(Uploads { place })
    }

    /// Where the uploads are, for serving them.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// Whether the store exists (a folder may not, while only looking).
    pub fn exists(&self) -> bool {
        match &self.place {
            Place::Folder(folder) => folder.is_dir(),
            Place::Store { .. } => true,
        }
    }

    /// Whether an upload `name` is stored.
    pub fn contains(&self, name: &str) -> Result<bool, String> {
        if check_name(name).is_err() {
            return Ok(false);
        }
        match &self.place {
            Place::Folder(folder) => Ok(folder.join(name).is_file()),
            Place::Store { store, prefix, url } => {
                let key = prefix.child(name);
                host_database::blocking::block(|| async {
                    match store.head(&key).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(error) => Err(format!("cannot reach the uploads store {url}: {error}")),
                    }
                })
            }
        }
    }

    /// Writes `data` under a new random name ending in `.{extension}` and
    /// returns the name. The upload appears whole or not at all, and never
    /// replaces another.
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
        match &self.place {
            Place::Folder(folder) => {
                let partial = folder.join(format!(".{name}.partial"));
                let write = || -> std::io::Result<()> {
                    let mut file = std::fs::File::create_new(&partial)?;
                    file.write_all(data)?;
                    file.sync_all()?;
                    std::fs::rename(&partial, folder.join(&name))
                };
                write().map_err(|error| {
                    let _ = std::fs::remove_file(&partial);
                    format!("cannot write {}: {error}", folder.join(&name).display())
                })?;
            }
            Place::Store { store, prefix, url } => {
                let key = prefix.child(name.as_str());
                let payload = PutPayload::from(bytes::Bytes::copy_from_slice(data));
                host_database::blocking::block(|| async {
                    let create = PutOptions::from(PutMode::Create);
                    match store.put_opts(&key, payload.clone(), create).await {
                        // a store without conditional writes: the name is
                        // 128 random bits, which no other upload has
                        Err(object_store::Error::NotImplemented) => {
                            store.put(&key, payload).await.map(drop)
                        }
                        other => other.map(drop),
                    }
                })
                .map_err(|error| format!("cannot store {name} in {url}: {error}"))?;
            }
        }
        Ok(name)
    }

    /// Deletes the upload `name`; `false` if there is none.
    pub fn delete(&self, name: &str) -> Result<bool, String> {
        check_name(name)?;
        match &self.place {
            Place::Folder(folder) => match std::fs::remove_file(folder.join(name)) {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
                Err(error) => Err(format!("cannot delete upload {name:?}: {error}")),
            },
            Place::Store { store, prefix, url } => {
                // S3 answers a delete of nothing as a success: ask first
                if !self.contains(name)? {
                    return Ok(false);
                }
                let key = prefix.child(name);
                host_database::blocking::block(|| store.delete(&key))
                    .map(|()| true)
                    .map_err(|error| format!("cannot delete upload {name:?} from {url}: {error}"))
            }
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
        let folder = data_dir.path().join(UPLOADS_FOLDER);
        let uploads = Uploads::open(&UploadsStore::Folder(folder.clone()), true).unwrap();
        let first = uploads.store(b"one", "png").unwrap();
        let second = uploads.store(b"two", "png").unwrap();
        assert_ne!(first, second);
        assert!(first.ends_with(".png") && first.len() == 36, "{first}");
        assert_eq!(std::fs::read(folder.join(&first)).unwrap(), b"one");
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
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
        assert_eq!(stored_names(&folder), std::slice::from_ref(&second));
        assert_eq!(uploads.contains(&second), Ok(true));
        assert_eq!(uploads.contains(&first), Ok(false));
        assert_eq!(uploads.contains("../secret.key"), Ok(false));
    }

    #[test]
    fn a_store_that_may_not_create_leaves_a_missing_folder_missing() {
        let data_dir = tempfile::tempdir().unwrap();
        let folder = data_dir.path().join(UPLOADS_FOLDER);
        let uploads = Uploads::open(&UploadsStore::Folder(folder.clone()), false).unwrap();
        assert!(!uploads.exists());
        assert!(!folder.exists());
        assert!(stored_names(&folder).is_empty());
    }
}
