//! A short-lived cache of small static files, like nginx's
//! `open_file_cache`: a hit costs no system call.
//!
//! Opening, checking, reading and closing a small file costs more than
//! answering the request itself (`docs/performance.md`). An entry lives
//! [`TTL`], so a changed file is served at most that late.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use bytes::Bytes;

use super::entry::FileEntry;

/// How long an entry is trusted without looking at the file again.
pub const TTL: Duration = Duration::from_secs(1);

/// Files larger than this are not cached (nor read whole: they are
/// streamed). Files up to this size cost less CPU served from here than
/// read from the page cache each time.
pub const MAX_FILE: u64 = 256 * 1024;

/// The cache holds at most this many bytes of content (plus the
/// compressed forms kept with the entries, each smaller than its file)...
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// ...and this many files; when either is reached, it starts over.
const MAX_ENTRIES: usize = 4096;

struct Cached {
    entry: Arc<FileEntry>,
    content: Bytes,
    loaded: Instant,
}

/// Small files by URL path.
#[derive(Default)]
pub struct FileCache {
    entries: Mutex<(HashMap<String, Cached>, usize)>,
}

impl FileCache {
    fn lock(&self) -> MutexGuard<'_, (HashMap<String, Cached>, usize)> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry for `url_path`, if any, and whether it is fresh (if not,
    /// the file must be looked at again; if it has not changed, the entry
    /// serves on, with the forms compressed of it).
    pub fn get(&self, url_path: &str) -> Option<(Arc<FileEntry>, Bytes, bool)> {
        let entries = self.lock();
        let cached = entries.0.get(url_path)?;
        let fresh = cached.loaded.elapsed() < TTL;
        Some((Arc::clone(&cached.entry), cached.content.clone(), fresh))
    }

    /// Remembers a small file's entry and content.
    pub fn insert(&self, url_path: &str, entry: Arc<FileEntry>, content: Bytes) {
        let mut guard = self.lock();
        let (entries, bytes) = &mut *guard;
        if entries.len() >= MAX_ENTRIES || *bytes + content.len() > MAX_BYTES {
            entries.clear();
            *bytes = 0;
        }
        *bytes += content.len();
        if let Some(old) = entries.insert(
            url_path.to_owned(),
            Cached {
                entry,
                content,
                loaded: Instant::now(),
            },
        ) {
            *bytes -= old.content.len();
        }
    }
}
