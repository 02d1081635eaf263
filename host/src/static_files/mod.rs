//! A mount's static folder, served by the host itself (the request never
//! enters the app), the way nginx's static module does: content type,
//! validators and conditional requests, single byte ranges, `HEAD`, and
//! streaming in chunks so a large file never sits in memory. The site's
//! uploads are served the same way, from their folder or from an object
//! store (S3), whose objects are read as files are.
//!
//! Follows tower-http's `ServeDir` and adds what it lacks: strong `ETag`s,
//! `If-Match`/`If-Unmodified-Since`, per-mount `Cache-Control`, `nosniff`,
//! and containment of symlinks that point outside the folder. A 404 never
//! tells whether a file exists (permission errors are 404s too).

mod cache;
mod conditional;
mod entry;
mod path;
mod range;

use std::{
    fs::File,
    io::{self, SeekFrom},
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use object_store::{GetOptions, ObjectStore, path::Path as Key};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use cache::FileCache;
use conditional::{Conditions, Outcome};
use entry::FileEntry;
use range::RangeRequest;

/// Files up to this size are read in one go on the async worker (from the
/// page cache this is a memcpy, cheaper than a hand-off to a blocking
/// thread), and kept in the cache; larger ones are streamed.
const SMALL_FILE: u64 = cache::MAX_FILE;

/// The chunk size of streamed files.
const CHUNK: usize = 64 * 1024;

/// A folder of static files of one mount.
pub struct StaticFolder {
    place: Place,
    cache_control: HeaderValue,
    cache: FileCache,
    /// Files people uploaded: served sandboxed.
    sandboxed: bool,
}

/// Where the files are.
enum Place {
    Folder {
        /// The folder, canonical (symlinks resolved), so that a file's
        /// canonical path can be checked against it where `openat2` is
        /// missing.
        root: PathBuf,
        /// The folder, open: files are opened beneath it.
        directory: File,
    },
    /// Objects named `prefix/<file name>` (no deeper paths).
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: Key,
    },
}

/// Where a file's bytes come from.
enum Source {
    /// Small files: all of it, in memory.
    Memory(Bytes),
    /// Large files: read when sent.
    File(File),
    /// Large objects: fetched when sent.
    Object(Key),
}

/// Why a file cannot be served.
enum Unserved {
    /// Not there (or not to be shown): 404.
    Missing,
    /// The store did not answer: 503.
    Unavailable,
}

/// What serving a request for a file came to. The server makes the
/// response of it (`http::respond`), as it makes every response.
pub struct Served {
    /// The status.
    pub status: StatusCode,
    /// The headers the file or the refusal calls for (validators, ranges,
    /// `Allow`).
    pub headers: HeaderMap,
    /// The body.
    pub content: Content,
    /// Body bytes sent (0 for `HEAD` and 304).
    pub bytes: u64,
}

/// The body of a [`Served`].
pub enum Content {
    /// The host's short page for the status (404, 405, 412, 416).
    StatusPage,
    /// None (`HEAD`, 304).
    Empty,
    /// All of it, in memory.
    Whole(Bytes),
    /// Read from the file or the store as it is sent.
    Stream(StreamedBody),
}

impl Served {
    fn refused(status: StatusCode) -> Served {
        Served {
            status,
            headers: HeaderMap::new(),
            content: Content::StatusPage,
            bytes: 0,
        }
    }
}

impl StaticFolder {
    /// Opens `folder`, which must exist; `max_age` seconds of caching (0 is
    /// `no-cache`: the client must revalidate, which 304s make cheap).
    pub fn open(folder: &Path, max_age: u64) -> io::Result<StaticFolder> {
        let root = folder.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a folder"));
        }
        let directory = File::open(&root)?;
        Ok(StaticFolder::at(Place::Folder { root, directory }, max_age))
    }

    /// The objects below `prefix` in `store`, served as files are.
    pub fn in_store(store: Arc<dyn ObjectStore>, prefix: Key, max_age: u64) -> StaticFolder {
        StaticFolder::at(Place::Store { store, prefix }, max_age)
    }

    fn at(place: Place, max_age: u64) -> StaticFolder {
        let cache_control = if max_age == 0 {
            HeaderValue::from_static("no-cache")
        } else {
            HeaderValue::from_str(&format!("public, max-age={max_age}"))
                .expect("digits are a valid header value")
        };
        StaticFolder {
            place,
            cache_control,
            cache: FileCache::default(),
            sandboxed: false,
        }
    }

    /// Serves every file with `Content-Security-Policy: sandbox`: a file
    /// someone uploaded that a browser renders anyway (an SVG, HTML sniffed
    /// despite `nosniff` by an old browser) runs no script and reaches no
    /// cookie of the site.
    pub fn sandboxed(mut self) -> StaticFolder {
        self.sandboxed = true;
        self
    }

    /// Answers `method` for the file at `url_path` (decoded, below the
    /// static URL path).
    pub async fn serve(&self, method: &Method, headers: &HeaderMap, url_path: &str) -> Served {
        if method != Method::GET && method != Method::HEAD {
            let mut refused = Served::refused(StatusCode::METHOD_NOT_ALLOWED);
            refused
                .headers
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return refused;
        }
        let (entry, source) = match self.load(url_path).await {
            Ok(loaded) => loaded,
            Err(Unserved::Missing) => return Served::refused(StatusCode::NOT_FOUND),
            Err(Unserved::Unavailable) => {
                return Served::refused(StatusCode::SERVICE_UNAVAILABLE);
            }
        };
        let (size, validators) = (entry.size, &entry.validators);
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let conditions = Conditions {
            if_match: text(header::IF_MATCH),
            if_unmodified_since: text(header::IF_UNMODIFIED_SINCE),
            if_none_match: text(header::IF_NONE_MATCH),
            if_modified_since: text(header::IF_MODIFIED_SINCE),
        };
        match conditional::evaluate(&conditions, validators) {
            Outcome::Proceed => {}
            Outcome::NotModified => {
                let mut headers = HeaderMap::new();
                self.add_validators(&mut headers, &entry);
                return Served {
                    status: StatusCode::NOT_MODIFIED,
                    headers,
                    content: Content::Empty,
                    bytes: 0,
                };
            }
            Outcome::Failed => return Served::refused(StatusCode::PRECONDITION_FAILED),
        }
        let range = match text(header::RANGE) {
            Some(value) if conditional::if_range_allows(text(header::IF_RANGE), validators) => {
                range::parse(value, size)
            }
            _ => RangeRequest::Full,
        };
        let (status_code, start, length) = match range {
            RangeRequest::Full => (StatusCode::OK, 0, size),
            RangeRequest::Partial { start, end } => {
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            RangeRequest::Unsatisfiable => {
                let mut refused = Served::refused(StatusCode::RANGE_NOT_SATISFIABLE);
                refused.headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("valid"),
                );
                return refused;
            }
        };
        let head = method == Method::HEAD;
        let body = match source {
            _ if head => Content::Empty,
            Source::Memory(bytes) => {
                let (start, end) = (to_usize(start), to_usize(start + length));
                Content::Whole(bytes.slice(start..end))
            }
            Source::File(file) => match read_body(file, start, length).await {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(file = %url_path, %error, "cannot read a static file");
                    return Served::refused(StatusCode::NOT_FOUND);
                }
            },
            Source::Object(key) => match self.fetch(&key, start, length).await {
                Ok(stream) => Content::Stream(StreamedBody::new(stream, length)),
                Err(error) => {
                    tracing::warn!(file = %url_path, %error, "cannot read an object of the uploads store");
                    return Served::refused(StatusCode::SERVICE_UNAVAILABLE);
                }
            },
        };
        let mut headers = HeaderMap::new();
        let out = &mut headers;
        out.insert(header::CONTENT_TYPE, entry.content_type.clone());
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if status_code == StatusCode::PARTIAL_CONTENT {
            out.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + length - 1))
                    .expect("valid"),
            );
        }
        self.add_validators(out, &entry);
        Served {
            status: status_code,
            headers,
            content: body,
            bytes: if head { 0 } else { length },
        }
    }

    fn add_validators(&self, headers: &mut HeaderMap, entry: &FileEntry) {
        if let Some(etag) = &entry.etag {
            headers.insert(header::ETAG, etag.clone());
        }
        if let Some(date) = &entry.last_modified {
            headers.insert(header::LAST_MODIFIED, date.clone());
        }
        headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.sandboxed {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            );
        }
    }

    /// The file `url_path` names: from the cache, or opened (and, if small,
    /// read and cached).
    async fn load(&self, url_path: &str) -> Result<(Arc<FileEntry>, Source), Unserved> {
        if let Some((entry, bytes)) = self.cache.get(url_path) {
            return Ok((entry, Source::Memory(bytes)));
        }
        let (entry, content) = match &self.place {
            Place::Folder { .. } => {
                let (file, metadata, relative) = self.locate(url_path).ok_or(Unserved::Missing)?;
                let entry = Arc::new(FileEntry::new(&relative, &metadata));
                if entry.size > cache::MAX_FILE {
                    return Ok((entry, Source::File(file)));
                }
                let content = read_range(&file, 0, entry.size).map_err(|_| Unserved::Missing)?;
                (entry, content.into())
            }
            Place::Store { store, prefix } => {
                let relative = path::relative_file(url_path).ok_or(Unserved::Missing)?;
                let name = relative.to_str().filter(|name| !name.contains('/'));
                let key = prefix.child(name.ok_or(Unserved::Missing)?);
                let unavailable = |error: object_store::Error| match error {
                    object_store::Error::NotFound { .. } => Unserved::Missing,
                    error => {
                        tracing::warn!(file = %url_path, %error, "the uploads store did not answer");
                        Unserved::Unavailable
                    }
                };
                let meta = store.head(&key).await.map_err(unavailable)?;
                let modified = std::time::SystemTime::from(meta.last_modified);
                let entry = Arc::new(FileEntry::from_parts(&relative, meta.size, modified));
                if entry.size > cache::MAX_FILE {
                    return Ok((entry, Source::Object(key)));
                }
                let content = store
                    .get(&key)
                    .await
                    .map_err(unavailable)?
                    .bytes()
                    .await
                    .map_err(unavailable)?;
                (entry, content)
            }
        };
        if content.len() as u64 != entry.size {
            // changed while read: serve what was asked next time
            return Err(Unserved::Missing);
        }
        self.cache
            .insert(url_path, Arc::clone(&entry), content.clone());
        Ok((entry, Source::Memory(content)))
    }

    /// `length` bytes of the object `key` from `start`, as they arrive.
    async fn fetch(&self, key: &Key, start: u64, length: u64) -> object_store::Result<Chunks> {
        let Place::Store { store, .. } = &self.place else {
            unreachable!("objects are read from stores only");
        };
        let options = GetOptions {
            range: Some((start..start + length).into()),
            ..GetOptions::default()
        };
        let stream = store.get_opts(key, options).await?.into_stream();
        Ok(Box::pin(futures_util::StreamExt::map(stream, |chunk| {
            chunk.map_err(io::Error::other)
        })))
    }

    /// Opens the regular file `url_path` names inside the folder: `None` for
    /// anything unsafe, missing, unreadable, not a regular file, or (after
    /// resolving symlinks) outside the folder.
    fn locate(&self, url_path: &str) -> Option<(File, std::fs::Metadata, PathBuf)> {
        let Place::Folder { root, directory } = &self.place else {
            return None;
        };
        let relative = path::relative_file(url_path)?;
        let file = open_beneath(root, directory, &relative)?;
        let metadata = file.metadata().ok()?;
        metadata.is_file().then_some((file, metadata, relative))
    }
}

/// Opens `relative` in the folder `root` (open as `directory`) so that
/// resolving it can never leave the folder.
///
/// Linux's `openat2` with `RESOLVE_BENEATH` does it in the kernel, in one
/// system call, symlinks included (absolute ones are refused). On kernels
/// without it (before 5.6), the canonical path is checked.
fn open_beneath(root: &Path, directory: &File, relative: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    {
        match openat2(
            directory,
            relative,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => Some(File::from(fd)),
            Err(rustix::io::Errno::NOSYS) => {
                let canonical = root.join(relative).canonicalize().ok()?;
                if !canonical.starts_with(root) {
                    return None;
                }
                File::open(&canonical).ok()
            }
            Err(_) => None,
        }
    }
}

/// The body for `length` bytes from `start`: read at once when small,
/// streamed in chunks otherwise.
async fn read_body(file: File, start: u64, length: u64) -> io::Result<Content> {
    if length <= SMALL_FILE {
        return Ok(Content::Whole(read_range(&file, start, length)?.into()));
    }
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(start)).await?;
    }
    let chunks = ReaderStream::with_capacity(file.take(length), CHUNK);
    Ok(Content::Stream(StreamedBody::new(Box::pin(chunks), length)))
}

/// The chunks of a streamed body.
type Chunks = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// `length` bytes of `file` from `start` (fewer if the file is shorter),
/// read straight into the buffer's unused capacity: one system call for a
/// file in the page cache. (`read_to_end` on a `Take` reads 8 KiB, then 16,
/// 32, 64...: five reads for a 200 KB file, counted with strace.)
fn read_range(file: &File, start: u64, length: u64) -> io::Result<Vec<u8>> {
    let length = usize::try_from(length).map_err(io::Error::other)?;
    let mut buffer = Vec::with_capacity(length);
    while buffer.len() < length {
        let offset = start + buffer.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buffer), offset) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    // the file may have grown since its size was read
    buffer.truncate(length);
    Ok(buffer)
}

/// A file streamed in chunks of [`CHUNK`] bytes, or an object as the
/// store sends it.
pub struct StreamedBody {
    /// In a mutex only to be `Sync`, as response bodies are; never
    /// contended (`get_mut`).
    chunks: Mutex<Chunks>,
    remaining: u64,
}

impl StreamedBody {
    fn new(chunks: Chunks, length: u64) -> StreamedBody {
        StreamedBody {
            chunks: Mutex::new(chunks),
            remaining: length,
        }
    }
}

impl HttpBody for StreamedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let chunks = self
            .chunks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        match chunks.as_mut().poll_next(context) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) if self.remaining > 0 => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank (or the store sent less) while it was being sent",
            )))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_whole_or_up_to_the_end_of_the_file() {
        let content: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        io::Write::write_all(&mut file, &content).unwrap();
        let rows: [(u64, u64, &[u8]); 5] = [
            (0, 200 * 1024, &content),
            (1000, 150_000, &content[1000..151_000]),
            (0, 0, &[]),
            // past the end (the file shrank since its size was read)
            (200 * 1024 - 10, 100, &content[200 * 1024 - 10..]),
            (300 * 1024, 10, &[]),
        ];
        for (start, length, expected) in rows {
            let read = read_range(&file, start, length).unwrap();
            assert!(read == expected, "{start}+{length}: {} bytes", read.len());
        }
    }
}
