//! What is known of one static file: its size, its validators and the
//! headers they give, its content type, and its compressed forms.

use std::{path::Path, time::SystemTime};

use http::HeaderValue;

use super::{Encoded, conditional::Validators};
use crate::compression::{self, Encoding};

/// What is known of one file: its validators and the headers they give.
pub struct FileEntry {
    pub(super) validators: Validators,
    pub(super) size: u64,
    pub(super) content_type: HeaderValue,
    pub(super) etag: Option<HeaderValue>,
    pub(super) last_modified: Option<HeaderValue>,
    /// Whether its type gains from compression and it is large enough to.
    pub(super) compressible: bool,
    /// The size and modification time of its precompressed siblings
    /// (`.br`, `.gz`) not older than it, by [`Encoding::index`].
    pub(super) siblings: [Option<Stamp>; 2],
    /// Its compressed forms, made once (a small file's only), by
    /// [`Encoding::index`]; `None` inside when compressing did not make it
    /// smaller.
    pub(super) encoded: [tokio::sync::OnceCell<Option<Encoded>>; 2],
}

/// A file's size and modification time.
pub type Stamp = (u64, SystemTime);

impl FileEntry {
    pub(super) fn new(relative: &Path, metadata: &std::fs::Metadata) -> FileEntry {
        let modified = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
        FileEntry::from_parts(relative, metadata.len(), modified)
    }

    /// The entry of a file (or an object) of `size` bytes changed last at
    /// `modified`: its validators are made of the two, so every host
    /// reading one object gives it the same `ETag`.
    pub(super) fn from_parts(
        relative: &Path,
        size: u64,
        modified: std::time::SystemTime,
    ) -> FileEntry {
        let validators = Validators::new(modified, size);
        let content_type = content_type(relative);
        FileEntry {
            etag: HeaderValue::from_str(&validators.etag).ok(),
            last_modified: HeaderValue::from_str(&validators.http_date()).ok(),
            validators,
            size,
            compressible: size >= compression::MIN_SIZE
                && compression::compressible(content_type.as_bytes()),
            content_type,
            siblings: [None, None],
            encoded: Default::default(),
        }
    }

    /// Whether `fresh`, read again from the same file, says the same: then
    /// this entry, and what it has compressed, serves on.
    pub(super) fn same_as(&self, fresh: &FileEntry) -> bool {
        self.validators == fresh.validators && self.siblings == fresh.siblings
    }

    /// The stamp of its precompressed sibling for `encoding`, if any.
    pub(super) fn sibling(&self, encoding: Encoding) -> Option<Stamp> {
        self.siblings[encoding.index()]
    }
}

/// The content type by extension; text types in UTF-8.
fn content_type(path: &Path) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml")
        || matches!(
            mime.suffix().map(|suffix| suffix.as_str()),
            Some("json" | "xml")
        );
    let value = if textual && mime.get_param("charset").is_none() {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_carry_utf8_for_text() {
        let rows = [
            ("style.css", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("logo.png", "image/png"),
            ("icon.svg", "image/svg+xml; charset=utf-8"),
            ("blob", "application/octet-stream"),
        ];
        for (file, expected) in rows {
            assert_eq!(content_type(Path::new(file)), expected, "{file}");
        }
    }
}
