//! A mount's static folder, served by the host itself (the request never
//! enters the app), the way nginx's static module does: content type,
//! validators and conditional requests, single byte ranges, `HEAD`, and
//! streaming in chunks so a large file never sits in memory. The site's
//! uploads are served the same way, from their folder or from an object
//! store (S3), whose objects are read as files are.
//!
//! Files of types that gain from it are sent compressed to clients that
//! accept it (`compression`): a precompressed sibling (`style.css.br`,
//! `.gz`) when there is one not older than the file, as nginx's
//! `gzip_static`; else a small file is compressed once, at best effort,
//! and kept with it in the cache; a large one is compressed as it is sent.
//! Never a range: a request with `Range` gets the file as it is.
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
    borrow::Cow,
    fs::File,
    io::{self, SeekFrom},
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use object_store::{GetOptions, ObjectStore, path::Path as Key};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::compression::{self, Chunks, Effort, Encoding};
use cache::FileCache;
use conditional::{Conditions, Outcome, Validators};
use entry::{FileEntry, Stamp};
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
    /// A large file or object, compressed as it is sent.
    Compressing(Encoding, Box<Source>),
}

/// A small file compressed, kept with its entry.
struct Encoded {
    validators: Validators,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    content: Bytes,
}

impl Encoded {
    /// `content`, in `encoding`, of a file (or sibling) with `validators`.
    fn new(encoding: Encoding, validators: &Validators, content: Bytes) -> Encoded {
        let (validators, etag, last_modified) = encoded_tags(encoding, validators);
        Encoded {
            validators,
            etag,
            last_modified,
            content,
        }
    }
}

/// The validators of the form in `encoding` of a file with `validators`,
/// and the `ETag` and `Last-Modified` values they give.
fn encoded_tags(
    encoding: Encoding,
    validators: &Validators,
) -> (Validators, Option<HeaderValue>, Option<HeaderValue>) {
    let validators = Validators {
        etag: encoding.etag(&validators.etag),
        last_modified: validators.last_modified,
    };
    let etag = HeaderValue::from_str(&validators.etag).ok();
    let last_modified = HeaderValue::from_str(&validators.http_date()).ok();
    (validators, etag, last_modified)
}

/// The representation of a file a response sends: as it is, or in one
/// encoding, each with its own validators.
struct Form<'e> {
    encoding: Option<Encoding>,
    validators: Cow<'e, Validators>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    /// `None` when compressed as it is sent.
    size: Option<u64>,
    source: Source,
}

impl<'e> Form<'e> {
    fn identity(entry: &'e FileEntry, source: Source) -> Form<'e> {
        Form {
            encoding: None,
            validators: Cow::Borrowed(&entry.validators),
            etag: entry.etag.clone(),
            last_modified: entry.last_modified.clone(),
            size: Some(entry.size),
            source,
        }
    }

    /// A small file's compressed form, kept with it.
    fn kept(encoding: Encoding, encoded: &'e Encoded) -> Form<'e> {
        Form {
            encoding: Some(encoding),
            validators: Cow::Borrowed(&encoded.validators),
            etag: encoded.etag.clone(),
            last_modified: encoded.last_modified.clone(),
            size: Some(encoded.content.len() as u64),
            source: Source::Memory(encoded.content.clone()),
        }
    }

    /// A large file's form in `encoding`, read from `source` (a sibling of
    /// `size` bytes with `validators`, or the file compressed as sent).
    fn large(
        encoding: Encoding,
        validators: &Validators,
        size: Option<u64>,
        source: Source,
    ) -> Form<'e> {
        let (validators, etag, last_modified) = encoded_tags(encoding, validators);
        Form {
            encoding: Some(encoding),
            validators: Cow::Owned(validators),
            etag,
            last_modified,
            size,
            source,
        }
    }
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
    /// Body bytes sent (0 for `HEAD` and 304, and for a body compressed as
    /// it is sent, whose length is not known beforehand).
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
    /// static URL path); compressed if `compress` and the client accepts it.
    pub async fn serve(
        &self,
        method: &Method,
        headers: &HeaderMap,
        url_path: &str,
        compress: bool,
    ) -> Served {
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
        // the response depends on Accept-Encoding whenever the file could
        // be compressed, even when it is not: caches must keep both
        let varies = compress && entry.compressible;
        let accepted = headers
            .get(header::ACCEPT_ENCODING)
            .map(HeaderValue::as_bytes);
        let encoding = match varies && !headers.contains_key(header::RANGE) {
            true => compression::negotiate(accepted, &Encoding::ALL),
            false => None,
        };
        let form = match encoding {
            Some(encoding) => self.encoded(url_path, &entry, source, encoding).await,
            None => Form::identity(&entry, source),
        };
        let validators = form.validators.as_ref();
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
                self.add_validators(&mut headers, &form, varies);
                return Served {
                    status: StatusCode::NOT_MODIFIED,
                    headers,
                    content: Content::Empty,
                    bytes: 0,
                };
            }
            Outcome::Failed => return Served::refused(StatusCode::PRECONDITION_FAILED),
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, entry.content_type.clone());
        self.add_validators(&mut headers, &form, varies);
        let head = method == Method::HEAD;
        let Some(size) = form.size else {
            // compressed as it is sent: whole, its length unknown
            let content = match form.source {
                _ if head => Content::Empty,
                source => match self.read(url_path, source, 0, entry.size).await {
                    Ok(content) => content,
                    Err(refused) => return refused,
                },
            };
            return Served {
                status: StatusCode::OK,
                headers,
                content,
                bytes: 0,
            };
        };
        let range = match text(header::RANGE) {
            Some(value)
                if form.encoding.is_none()
                    && conditional::if_range_allows(text(header::IF_RANGE), validators) =>
            {
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
        let content = match form.source {
            _ if head => Content::Empty,
            source => match self.read(url_path, source, start, length).await {
                Ok(content) => content,
                Err(refused) => return refused,
            },
        };
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if form.encoding.is_none() {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
        if status_code == StatusCode::PARTIAL_CONTENT {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + length - 1))
                    .expect("valid"),
            );
        }
        Served {
            status: status_code,
            headers,
            content,
            bytes: if head { 0 } else { length },
        }
    }

    fn add_validators(&self, headers: &mut HeaderMap, form: &Form<'_>, varies: bool) {
        if let Some(etag) = &form.etag {
            headers.insert(header::ETAG, etag.clone());
        }
        if let Some(date) = &form.last_modified {
            headers.insert(header::LAST_MODIFIED, date.clone());
        }
        if let Some(encoding) = form.encoding {
            headers.insert(header::CONTENT_ENCODING, encoding.header_value());
        }
        if varies {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
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

    /// The body: `length` bytes of `source` from `start`; or, for a source
    /// compressed as it is sent, the whole of its `length` bytes compressed.
    async fn read(
        &self,
        url_path: &str,
        source: Source,
        start: u64,
        length: u64,
    ) -> Result<Content, Served> {
        let missing = |error: io::Error| {
            tracing::warn!(file = %url_path, %error, "cannot read a static file");
            Served::refused(StatusCode::NOT_FOUND)
        };
        let unavailable = |error: object_store::Error| {
            tracing::warn!(file = %url_path, %error, "cannot read an object of the uploads store");
            Served::refused(StatusCode::SERVICE_UNAVAILABLE)
        };
        match source {
            Source::Memory(bytes) => {
                let (start, end) = (to_usize(start), to_usize(start + length));
                Ok(Content::Whole(bytes.slice(start..end)))
            }
            Source::File(file) if length <= SMALL_FILE => Ok(Content::Whole(
                read_range(&file, start, length).map_err(missing)?.into(),
            )),
            Source::File(file) => {
                let chunks = file_chunks(file, start, length).await.map_err(missing)?;
                Ok(Content::Stream(StreamedBody::new(chunks, Some(length))))
            }
            Source::Object(key) => {
                let chunks = self.fetch(&key, start, length).await.map_err(unavailable)?;
                Ok(Content::Stream(StreamedBody::new(chunks, Some(length))))
            }
            Source::Compressing(encoding, source) => {
                let chunks = match *source {
                    Source::File(file) => file_chunks(file, 0, length).await.map_err(missing)?,
                    Source::Object(key) => {
                        self.fetch(&key, 0, length).await.map_err(unavailable)?
                    }
                    _ => unreachable!("only large files and objects are compressed as sent"),
                };
                let chunks = encoding.compress_stream(chunks);
                Ok(Content::Stream(StreamedBody::new(chunks, None)))
            }
        }
    }

    /// The form of the file in `encoding`: its sibling, or the file
    /// compressed (once if small); as it is if compressing it does not
    /// make it smaller.
    async fn encoded<'e>(
        &self,
        url_path: &str,
        entry: &'e FileEntry,
        source: Source,
        encoding: Encoding,
    ) -> Form<'e> {
        match source {
            Source::Memory(content) => {
                let kept = entry.encoded[encoding.index()]
                    .get_or_init(|| self.encode_once(url_path, entry, content.clone(), encoding))
                    .await;
                match kept {
                    Some(encoded) => Form::kept(encoding, encoded),
                    None => Form::identity(entry, Source::Memory(content)),
                }
            }
            source => match self.sibling(url_path, encoding, entry.validators.last_modified) {
                Some((file, (size, modified))) => Form::large(
                    encoding,
                    &Validators::new(modified, size),
                    Some(size),
                    Source::File(file),
                ),
                None => Form::large(
                    encoding,
                    &entry.validators,
                    None,
                    Source::Compressing(encoding, Box::new(source)),
                ),
            },
        }
    }

    /// A small file in `encoding`, made once: its sibling's content if it
    /// has one, else `content` compressed (off the async workers: brotli's
    /// best effort takes milliseconds per 10 KB).
    async fn encode_once(
        &self,
        url_path: &str,
        entry: &FileEntry,
        content: Bytes,
        encoding: Encoding,
    ) -> Option<Encoded> {
        if let Some(stamp) = entry.sibling(encoding)
            && let Some((file, found)) =
                self.sibling(url_path, encoding, entry.validators.last_modified)
            && found == stamp
            && let Ok(read) = read_range(&file, 0, stamp.0)
        {
            return Some(Encoded::new(
                encoding,
                &Validators::new(stamp.1, stamp.0),
                read.into(),
            ));
        }
        let size = content.len();
        let compressed =
            tokio::task::spawn_blocking(move || encoding.compress(&content, Effort::Best))
                .await
                .ok()?;
        (compressed.len() < size)
            .then(|| Encoded::new(encoding, &entry.validators, compressed.into()))
    }

    /// The precompressed sibling of `url_path` for `encoding`, open, with
    /// its stamp, if it is a regular file of the folder not older than the
    /// file (`modified`): an older one was left from a former version.
    fn sibling(
        &self,
        url_path: &str,
        encoding: Encoding,
        modified: std::time::SystemTime,
    ) -> Option<(File, Stamp)> {
        let Place::Folder { root, directory } = &self.place else {
            return None;
        };
        let mut name = path::relative_file(url_path)?.into_os_string();
        name.push(".");
        name.push(encoding.extension());
        let file = open_beneath(root, directory, Path::new(&name))?;
        let metadata = file.metadata().ok()?;
        let stamp = (metadata.len(), metadata.modified().ok()?);
        // compared in whole seconds, as the file's validators keep it
        let not_older = stamp.1 >= modified;
        (metadata.is_file() && not_older).then_some((file, stamp))
    }

    /// The file `url_path` names: from the cache, or opened (and, if small,
    /// read and cached). An entry that is no longer fresh serves on, with
    /// what it has compressed, if the file and its siblings have not changed.
    async fn load(&self, url_path: &str) -> Result<(Arc<FileEntry>, Source), Unserved> {
        let known = match self.cache.get(url_path) {
            Some((entry, content, true)) => return Ok((entry, Source::Memory(content))),
            Some((entry, content, false)) => Some((entry, content)),
            None => None,
        };
        let unchanged = |fresh: &FileEntry| {
            known
                .as_ref()
                .filter(|(known, _)| known.same_as(fresh))
                .map(|(known, content)| (Arc::clone(known), content.clone()))
        };
        let (entry, content) = match &self.place {
            Place::Folder { .. } => {
                let (file, metadata, relative) = self.locate(url_path).ok_or(Unserved::Missing)?;
                let mut entry = FileEntry::new(&relative, &metadata);
                if entry.size > cache::MAX_FILE {
                    return Ok((Arc::new(entry), Source::File(file)));
                }
                if entry.compressible {
                    entry.siblings = Encoding::ALL.map(|encoding| {
                        self.sibling(url_path, encoding, entry.validators.last_modified)
                            .map(|(_, stamp)| stamp)
                    });
                }
                match unchanged(&entry) {
                    Some(known) => known,
                    None => {
                        let content =
                            read_range(&file, 0, entry.size).map_err(|_| Unserved::Missing)?;
                        (Arc::new(entry), content.into())
                    }
                }
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
                let entry = FileEntry::from_parts(&relative, meta.size, modified);
                if entry.size > cache::MAX_FILE {
                    return Ok((Arc::new(entry), Source::Object(key)));
                }
                match unchanged(&entry) {
                    Some(known) => known,
                    None => {
                        let content = store
                            .get(&key)
                            .await
                            .map_err(unavailable)?
                            .bytes()
                            .await
                            .map_err(unavailable)?;
                        (Arc::new(entry), content)
                    }
                }
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

/// `length` bytes of `file` from `start`, in chunks as they are sent.
async fn file_chunks(file: File, start: u64, length: u64) -> io::Result<Chunks> {
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(start)).await?;
    }
    Ok(Box::pin(ReaderStream::with_capacity(
        file.take(length),
        CHUNK,
    )))
}

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
    /// Bytes still to come; `None` when compressed as sent.
    remaining: Option<u64>,
}

impl StreamedBody {
    fn new(chunks: Chunks, length: Option<u64>) -> StreamedBody {
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
                self.remaining = self
                    .remaining
                    .map(|remaining| remaining.saturating_sub(chunk.len() as u64));
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) if self.remaining.is_some_and(|remaining| remaining > 0) => {
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank (or the store sent less) while it was being sent",
                ))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
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
