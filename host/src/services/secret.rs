//! The host's secret key and the per-app keys derived from it: a cookie
//! signed for one mount is never accepted by another, because no two
//! mounts share a key. Earlier keys, given as fallbacks, still verify what
//! they signed, so that a key rotates without logging everyone out
//! (Flask's `SECRET_KEY_FALLBACKS`).

use std::{
    fs::OpenOptions,
    io::{ErrorKind, Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use hmac::{Hmac, Mac};
use sha2::Sha512;

/// The environment variable that gives the secret (at least 32 bytes);
/// without it the host keeps one in `<data_dir>/secret.key`.
pub const SECRET_ENV: &str = "HOST_SECRET_KEY";

/// The environment variable that gives earlier secrets, comma-separated
/// (each at least 32 bytes): cookies they signed are still accepted.
pub const FALLBACKS_ENV: &str = "HOST_SECRET_KEY_FALLBACKS";

/// The file name of the generated secret in the data directory.
pub const SECRET_FILE: &str = "secret.key";

/// Refuses to go on with a secret each host would make for itself when
/// several hosts may serve the site (`reason` says why: a database they
/// all share), since a cookie signed by one host must verify on the next.
pub fn require_shared(key_file: Option<&Path>, reason: &str) -> Result<(), String> {
    if key_file.is_some() || std::env::var_os(SECRET_ENV).is_some() {
        return Ok(());
    }
    Err(format!(
        "{reason}, so several hosts may serve this site, and they must sign cookies with one secret: set {SECRET_ENV} (at least {MIN_SECRET} bytes, the same on every host) or \"secret_key_file\" in the mount table (a file every host has). A secret.key made by each host would log users out whenever the load balancer picks another host"
    ))
}

/// The fewest bytes a secret may have.
const MIN_SECRET: usize = 32;

/// The host's secret, and the earlier ones that still verify.
#[derive(Clone)]
pub struct MasterSecret(Vec<u8>, Vec<Vec<u8>>);

impl MasterSecret {
    /// The secret from [`SECRET_ENV`], else from `key_file` (the table's
    /// `secret_key_file`, never made by the host), else from
    /// `<data_dir>/secret.key`, created once (mode 0600) with random bytes
    /// when missing.
    pub fn load(data_dir: &Path, key_file: Option<&Path>) -> Result<MasterSecret, String> {
        let fallbacks = fallbacks_from_environment()?;
        Self::load_current(data_dir, key_file)
            .map(|MasterSecret(current, _)| MasterSecret(current, fallbacks))
    }

    fn load_current(data_dir: &Path, key_file: Option<&Path>) -> Result<MasterSecret, String> {
        if let Some(secret) = from_environment()? {
            return Ok(secret);
        }
        if let Some(file) = key_file {
            return from_file(file).map_err(|error| format!("secret_key_file: {error}"));
        }
        let file = data_dir.join(SECRET_FILE);
        let fail = |error: std::io::Error| cannot_read_or_create(&file, error);
        std::fs::create_dir_all(data_dir).map_err(fail)?;
        let secret = random()?;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
        {
            Ok(mut created) => {
                created
                    .write_all(&secret)
                    .and_then(|()| created.sync_all())
                    .map_err(fail)?;
                Ok(MasterSecret(secret, Vec::new()))
            }
            // another process created it first: use that one
            Err(error) if error.kind() == ErrorKind::AlreadyExists => from_file(&file),
            Err(error) => Err(fail(error)),
        }
    }

    /// Like [`MasterSecret::load`], but never creates the file: without one
    /// (and without [`SECRET_ENV`]) a random secret for this process only.
    /// For `host check`, which signs nothing that outlives it.
    pub fn peek(data_dir: &Path, key_file: Option<&Path>) -> Result<MasterSecret, String> {
        let fallbacks = fallbacks_from_environment()?;
        let current = if let Some(secret) = from_environment()? {
            secret.0
        } else if let Some(file) = key_file {
            from_file(file)
                .map_err(|error| format!("secret_key_file: {error}"))?
                .0
        } else {
            let file = data_dir.join(SECRET_FILE);
            if file.exists() {
                from_file(&file)?.0
            } else {
                random()?
            }
        };
        Ok(MasterSecret(current, fallbacks))
    }

    /// The 64-byte key of the mount named `mount`.
    pub fn for_mount(&self, mount: &str) -> Vec<u8> {
        mount_key(&self.0, mount)
    }

    /// The mount's keys from the fallback secrets, in the order given.
    pub fn fallbacks_for_mount(&self, mount: &str) -> Vec<Vec<u8>> {
        self.1
            .iter()
            .map(|secret| mount_key(secret, mount))
            .collect()
    }
}

/// The 64-byte key of the mount named `mount` under `secret`.
fn mount_key(secret: &[u8], mount: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"app-secret/v1/");
    mac.update(mount.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The secrets of [`FALLBACKS_ENV`], each checked like the current one.
fn fallbacks_from_environment() -> Result<Vec<Vec<u8>>, String> {
    let Some(value) = std::env::var_os(FALLBACKS_ENV) else {
        return Ok(Vec::new());
    };
    let value = value.into_string().map_err(|_| {
        format!("{FALLBACKS_ENV} is not UTF-8 text: give the earlier keys as text, comma-separated")
    })?;
    value
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .enumerate()
        .map(|(index, key)| {
            if key.len() < MIN_SECRET {
                Err(format!(
                    "{FALLBACKS_ENV}: key {} is {} bytes long: an earlier key has at least {MIN_SECRET} bytes, as {SECRET_ENV} had",
                    index + 1,
                    key.len()
                ))
            } else {
                Ok(key.as_bytes().to_vec())
            }
        })
        .collect()
}

fn from_environment() -> Result<Option<MasterSecret>, String> {
    let Some(value) = std::env::var_os(SECRET_ENV) else {
        return Ok(None);
    };
    let bytes = value.into_encoded_bytes();
    if bytes.len() < MIN_SECRET {
        return Err(format!(
            "{SECRET_ENV} is {} bytes long: give at least {MIN_SECRET} random bytes (e.g. `openssl rand -hex 32`)",
            bytes.len()
        ));
    }
    Ok(Some(MasterSecret(bytes, Vec::new())))
}

fn random() -> Result<Vec<u8>, String> {
    let mut secret = vec![0; 64];
    getrandom::fill(&mut secret)
        .map_err(|error| format!("no random bytes for a secret: {error}"))?;
    Ok(secret)
}

fn cannot_read_or_create(file: &Path, error: std::io::Error) -> String {
    format!(
        "cannot read or create the secret key {}: {error} (make the data directory writable, or set {SECRET_ENV})",
        file.display()
    )
}

/// Refuses the secret key in `data_dir` if other users may read it (none
/// there is fine: it is made private).
pub fn check_private(data_dir: &Path) -> Result<(), String> {
    let file = data_dir.join(SECRET_FILE);
    match std::fs::metadata(&file) {
        Ok(metadata) => private(&file, &metadata),
        Err(_) => Ok(()),
    }
}

/// Like ssh with a private key: a key others could have read is not a
/// secret any more, and using it would hide that.
fn private(file: &Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    let mode = metadata.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(format!(
        "the secret key {} may be read by other users (mode {:04o}): run `chmod 600 {}`, and since it may have been read, consider deleting it instead to have a new one made (every session ends)",
        file.display(),
        mode & 0o7777,
        file.display()
    ))
}

fn from_file(file: &Path) -> Result<MasterSecret, String> {
    let mut existing = Vec::new();
    let mut opened =
        std::fs::File::open(file).map_err(|error| cannot_read_or_create(file, error))?;
    let metadata = opened
        .metadata()
        .map_err(|error| cannot_read_or_create(file, error))?;
    private(file, &metadata)?;
    opened
        .read_to_end(&mut existing)
        .map_err(|error| cannot_read_or_create(file, error))?;
    if existing.len() < MIN_SECRET {
        return Err(format!(
            "the secret key {} holds {} bytes, fewer than {MIN_SECRET}: delete it to have a new one made (every session ends)",
            file.display(),
            existing.len()
        ));
    }
    Ok(MasterSecret(existing, Vec::new()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_secret_is_created_once_private_and_each_mount_gets_its_own_key() {
        let folder = tempfile::tempdir().unwrap();
        let first = MasterSecret::load(folder.path(), None).unwrap();
        let mode = std::fs::metadata(folder.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = MasterSecret::load(folder.path(), None).unwrap();
        assert_eq!(first.for_mount("admin"), again.for_mount("admin"));
        assert_eq!(first.for_mount("admin").len(), 64);
        assert_ne!(first.for_mount("admin"), first.for_mount("frontend"));
        let other = MasterSecret::load(tempfile::tempdir().unwrap().path(), None).unwrap();
        assert_ne!(first.for_mount("admin"), other.for_mount("admin"));
        // peeking reads the file that exists, and creates none
        let peeked = MasterSecret::peek(folder.path(), None).unwrap();
        assert_eq!(first.for_mount("admin"), peeked.for_mount("admin"));
        let empty = tempfile::tempdir().unwrap();
        MasterSecret::peek(empty.path(), None).unwrap();
        assert!(!empty.path().join(SECRET_FILE).exists());
    }

    #[test]
    fn a_secret_others_may_read_is_refused_with_the_fix() {
        let folder = tempfile::tempdir().unwrap();
        MasterSecret::load(folder.path(), None).unwrap();
        let file = folder.path().join(SECRET_FILE);
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = MasterSecret::load(folder.path(), None).err().unwrap();
            assert!(error.contains(&format!("(mode 0{mode:o})")), "{error}");
            assert!(
                error.contains(&format!("chmod 600 {}", file.display())),
                "{error}"
            );
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        MasterSecret::load(folder.path(), None).unwrap();
    }

    #[test]
    fn a_configured_key_file_is_read_never_made_and_must_be_private() {
        let folder = tempfile::tempdir().unwrap();
        let key_file = folder.path().join("cluster.key");
        let missing = MasterSecret::load(folder.path(), Some(&key_file))
            .err()
            .unwrap();
        assert!(missing.starts_with("secret_key_file: "), "{missing}");
        assert!(missing.contains("cluster.key"), "{missing}");
        assert!(!key_file.exists(), "never made");
        assert!(!folder.path().join(SECRET_FILE).exists());
        std::fs::write(&key_file, "a key every host of the cluster shares").unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let one = MasterSecret::load(folder.path(), Some(&key_file)).unwrap();
        let other =
            MasterSecret::load(tempfile::tempdir().unwrap().path(), Some(&key_file)).unwrap();
        assert_eq!(one.for_mount("admin"), other.for_mount("admin"));
        let peeked = MasterSecret::peek(folder.path(), Some(&key_file)).unwrap();
        assert_eq!(one.for_mount("admin"), peeked.for_mount("admin"));
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let readable = MasterSecret::load(folder.path(), Some(&key_file))
            .err()
            .unwrap();
        assert!(readable.contains("chmod 600"), "{readable}");
    }
}
