//! Which mount answers a request path (Werkzeug's `DispatcherMiddleware`,
//! with its traps removed). Pure: no I/O.
//!
//! - The longest mounted prefix wins, on `/` segment boundaries
//!   (`/administrator` is not under `/admin`), case-sensitively.
//! - Matching is on the percent-decoded path (`/%61dmin/` is admin), with
//!   `.`/`..` segments resolved as nginx does; an encoded slash (`%2F`) is
//!   refused, since it would mean a different path before and after decoding.
//! - A bare prefix (`/admin`) redirects to `/admin/` with 308 and a relative
//!   `Location`, keeping the query.
//! - Lookup walks a tree of segments, so its cost depends on the depth of
//!   the path, not on the number of mounts.

use std::{borrow::Cow, collections::HashMap};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Escaped when a decoded path is written into a `Location`: all but RFC
/// 3986's `pchar` and `/` (section 3.3). The SDK's `url::PATH`, which apps
/// write their URLs with, escapes the same (a test checks): the host
/// depends on the contract, not on the SDK.
const LOCATION_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Mount prefixes arranged as a tree of path segments, with each mount's
/// static URL path.
#[derive(Debug, Default)]
pub struct PrefixTable {
    root: Node,
    /// By mount index: the URL paths below the prefix of the folders the
    /// host serves for the mount (`/static`, `/uploads`).
    folders: Vec<Vec<(String, Folder)>>,
}

/// A folder the host serves itself for a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// The mount's static folder.
    Static,
    /// The site's stored uploads.
    Uploads,
}

/// One mount as the dispatcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct MountPrefix<'a> {
    /// The normalised prefix (`""` for the root).
    pub prefix: &'a str,
    /// The static URL path below the prefix, if the mount serves static files.
    pub static_url_path: Option<&'a str>,
    /// The uploads URL path below the prefix, if the mount serves uploads.
    pub uploads_url_path: Option<&'a str>,
}

#[derive(Debug, Default)]
struct Node {
    mount: Option<usize>,
    /// foldhash, not SipHash, which is slower: the keys are the mount
    /// table's prefixes, so request paths cannot choose collisions.
    children: HashMap<Box<str>, Node, foldhash::fast::RandomState>,
}

impl PrefixTable {
    /// Builds the table; mount indexes are positions in `mounts`. A later
    /// duplicate prefix replaces an earlier one; the mount table refuses
    /// duplicates before this.
    pub fn new<'a>(mounts: impl IntoIterator<Item = MountPrefix<'a>>) -> PrefixTable {
        let mut table = PrefixTable::default();
        for (index, mount) in mounts.into_iter().enumerate() {
            let mut node = &mut table.root;
            for segment in mount.prefix.split('/').skip(1) {
                node = node.children.entry(segment.into()).or_default();
            }
            node.mount = Some(index);
            let folders = [
                (mount.static_url_path, Folder::Static),
                (mount.uploads_url_path, Folder::Uploads),
            ];
            table.folders.push(
                folders
                    .into_iter()
                    .filter_map(|(path, folder)| Some((path?.to_owned(), folder)))
                    .collect(),
            );
        }
        table
    }

    /// The host-served folder of the mount that `path` (below the mount)
    /// is in, and the file below it that it names (`""` for the folder
    /// itself); `None` outside them.
    fn static_file<'p>(&self, mount: usize, path: &'p str) -> Option<(Folder, &'p str)> {
        self.folders
            .get(mount)?
            .iter()
            .find_map(|(folder_path, folder)| {
                let rest = path.strip_prefix(folder_path.as_str())?;
                if rest.is_empty() {
                    return Some((*folder, ""));
                }
                Some((*folder, rest.strip_prefix('/')?))
            })
    }

    /// The mount with the longest prefix of `path` (decoded, starting with
    /// `/`) on a segment boundary, and the length of that prefix in bytes.
    pub(crate) fn lookup(&self, path: &str) -> Option<(usize, usize)> {
        let mut node = &self.root;
        let mut best = node.mount.map(|mount| (mount, 0));
        let mut end = 0;
        let below_root = path.strip_prefix('/').unwrap_or(path);
        for segment in below_root.split('/') {
            match node.children.get(segment) {
                Some(child) => {
                    node = child;
                    end += 1 + segment.len();
                    if let Some(mount) = node.mount {
                        best = Some((mount, end));
                    }
                }
                None => break,
            }
        }
        best
    }
}

/// Where a request goes. Paths borrow from the request's when decoding
/// changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// To a mount's app.
    App {
        /// The mount index.
        mount: usize,
        /// The decoded path below the mount, starting with `/`.
        path: Cow<'a, str>,
    },
    /// To a folder the host serves for a mount.
    Static {
        /// The mount index.
        mount: usize,
        /// Which folder.
        folder: Folder,
        /// The decoded file path below the static URL path (`css/site.css`;
        /// empty for the folder itself).
        file: Cow<'a, str>,
    },
    /// A bare prefix: redirect (308) to this relative location.
    Redirect(String),
    /// No mount covers the path.
    NotFound,
    /// The path cannot be served; the reason for the 400 body.
    BadRequest(&'static str),
}

/// Decides where a request with this raw (still percent-encoded) path and
/// query goes.
pub fn route<'a>(table: &PrefixTable, raw_path: &'a str, query: Option<&str>) -> Route<'a> {
    let path = match decode_path(raw_path) {
        Ok(path) => path,
        Err(reason) => return unservable(table, raw_path, reason),
    };
    let Some((mount, prefix_len)) = table.lookup(&path) else {
        return Route::NotFound;
    };
    if prefix_len > 0 && prefix_len == path.len() {
        let mut location: String = utf8_percent_encode(&path, LOCATION_PATH).collect();
        location.push('/');
        if let Some(query) = query {
            location.push('?');
            location.push_str(query);
        }
        return Route::Redirect(location);
    }
    if let Some((folder, file)) = table.static_file(mount, &path[prefix_len..]) {
        let start = path.len() - file.len();
        return Route::Static {
            mount,
            folder,
            file: tail(path, start),
        };
    }
    Route::App {
        mount,
        path: tail(path, prefix_len),
    }
}

/// `path` from byte `start` on, still borrowed if it was.
fn tail(path: Cow<'_, str>, start: usize) -> Cow<'_, str> {
    match path {
        Cow::Borrowed(path) => Cow::Borrowed(&path[start..]),
        Cow::Owned(mut path) => {
            path.drain(..start);
            Cow::Owned(path)
        }
    }
}

/// A path that cannot be decoded or normalised is a 400, except inside a
/// static URL path, where it can only be an attempt to leave the folder
/// (`..%2f`, `%00`, `../..`): a 404 there, like every path that names no file.
fn unservable(table: &PrefixTable, raw_path: &str, reason: &'static str) -> Route<'static> {
    // Decoded but not normalised: `/static/..` is still inside `/static`.
    let path = percent_decode_str(raw_path).decode_utf8_lossy();
    let in_static = path.starts_with('/')
        && table
            .lookup(&path)
            .is_some_and(|(mount, len)| table.static_file(mount, &path[len..]).is_some());
    if in_static {
        Route::NotFound
    } else {
        Route::BadRequest(reason)
    }
}

/// The reason given for an encoded slash.
const ENCODED_SLASH: &str = "an encoded slash (%2F) in the path is not allowed";

/// Percent-decodes a request path and resolves its `.` and `..` segments.
pub(crate) fn decode_path(raw_path: &str) -> Result<Cow<'_, str>, &'static str> {
    if !raw_path.starts_with('/') {
        return Err("the request target must be a path starting with '/'");
    }
    // The common case, nothing encoded and no dot segment, needs no work.
    if !may_need_decoding(raw_path) {
        return Ok(Cow::Borrowed(raw_path));
    }
    if find_encoded_slash(raw_path).is_some() {
        return Err(ENCODED_SLASH);
    }
    let decoded = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| "the path is not valid UTF-8 once percent-decoded")?;
    if decoded.contains('\0') {
        return Err("the path contains a NUL byte");
    }
    remove_dot_segments(&decoded).map(Cow::Owned)
}

/// Where `%2F` or `%2f` starts in a raw path.
fn find_encoded_slash(raw_path: &str) -> Option<usize> {
    raw_path.as_bytes().windows(3).position(|window| {
        window[0] == b'%' && window[1] == b'2' && window[2].eq_ignore_ascii_case(&b'f')
    })
}

/// Whether a path starting with `/` may have something to decode or
/// resolve: a `%`, a NUL, or a segment starting with `.` (which may be `.`
/// or `..`). One pass over the bytes; a `false` is certain.
fn may_need_decoding(path: &str) -> bool {
    let mut previous = 0;
    path.bytes().any(|byte| {
        let found = byte == b'%' || byte == 0 || (byte == b'.' && previous == b'/');
        previous = byte;
        found
    })
}

/// RFC 3986 section 5.2.4 on a path starting with `/`; climbing above the
/// root is an error (nginx answers 400 too).
fn remove_dot_segments(path: &str) -> Result<String, &'static str> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if index == last {
                    kept.push("");
                }
            }
            ".." => {
                if kept.pop().is_none() {
                    return Err("the path climbs above the root with '..'");
                }
                if index == last {
                    kept.push("");
                }
            }
            other => kept.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in kept {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_escape_what_the_sdk_escapes() {
        for byte in 0..=127u8 {
            let text = (byte as char).to_string();
            assert_eq!(
                utf8_percent_encode(&text, LOCATION_PATH).to_string(),
                utf8_percent_encode(&text, app_api::sdk::url::PATH).to_string(),
                "byte {byte}"
            );
        }
    }

    fn mounts<'a>(rows: &[(&'a str, Option<&'a str>)]) -> Vec<MountPrefix<'a>> {
        rows.iter()
            .map(|(prefix, static_url_path)| MountPrefix {
                prefix,
                static_url_path: *static_url_path,
                uploads_url_path: static_url_path.map(|_| "/uploads"),
            })
            .collect()
    }

    fn table() -> PrefixTable {
        PrefixTable::new(mounts(&[
            ("", Some("/static")),
            ("/admin", Some("/static")),
            ("/admin/reports", None),
        ]))
    }

    fn static_file(mount: usize, file: &str) -> Route<'_> {
        Route::Static {
            mount,
            folder: Folder::Static,
            file: file.into(),
        }
    }

    fn app(mount: usize, path: &str) -> Route<'_> {
        Route::App {
            mount,
            path: path.into(),
        }
    }

    #[test]
    fn dispatch_table_from_the_design() {
        let rows: &[(&str, Option<&str>, Route)] = &[
            ("/", None, app(0, "/")),
            ("/admin/", None, app(1, "/")),
            ("/admin/users/5", Some("x=1"), app(1, "/users/5")),
            ("/admin", None, Route::Redirect("/admin/".into())),
            // the query survives the redirect
            ("/admin", Some("x=1"), Route::Redirect("/admin/?x=1".into())),
            // segment boundary: not admin
            ("/administrator", None, app(0, "/administrator")),
            // case-sensitive
            ("/Admin/", None, app(0, "/Admin/")),
            ("/ADMIN/", None, app(0, "/ADMIN/")),
            // matching is on the decoded path
            ("/%61dmin/", None, app(1, "/")),
            ("/%61dmin", None, Route::Redirect("/admin/".into())),
            // the nested mount wins over its parent
            ("/admin/reports/", None, app(2, "/")),
            ("/admin/reports/2024", None, app(2, "/2024")),
            (
                "/admin/reports",
                None,
                Route::Redirect("/admin/reports/".into()),
            ),
            ("/admin/reportsx", None, app(1, "/reportsx")),
            // dot segments resolve before matching
            ("/admin/../x", None, app(0, "/x")),
            ("/x/../admin/", None, app(1, "/")),
            ("/admin/./a", None, app(1, "/a")),
            ("/admin/a/..", None, app(1, "/")),
            // decoded characters stay decoded for the app
            ("/admin/a%20b", None, app(1, "/a b")),
            ("/admin/%C3%A9", None, app(1, "/é")),
            // static URL paths never reach the app
            ("/static/style.css", None, static_file(0, "style.css")),
            (
                "/admin/static/css/a%20b.css",
                None,
                static_file(1, "css/a b.css"),
            ),
            ("/static/", None, static_file(0, "")),
            (
                "/admin/uploads/a%20b.png",
                None,
                Route::Static {
                    mount: 1,
                    folder: Folder::Uploads,
                    file: "a b.png".into(),
                },
            ),
            (
                "/admin/reports/uploads/x.png",
                None,
                app(2, "/uploads/x.png"),
            ),
            ("/static", None, static_file(0, "")),
            ("/staticx/a", None, app(0, "/staticx/a")),
            // a mount without a static folder gets the path itself
            ("/admin/reports/static/x", None, app(2, "/static/x")),
            // dot segments cannot climb out of the static path into it
            ("/static/../plugins.json", None, app(0, "/plugins.json")),
            ("/static/%2e%2e/plugins.json", None, app(0, "/plugins.json")),
            // what would be a 400 elsewhere names no file inside a static path
            ("/static/..%2fplugins.json", None, Route::NotFound),
            ("/admin/static/..%2F..%2Fx", None, Route::NotFound),
            ("/static/style.css%00", None, Route::NotFound),
            ("/static/../../etc/passwd", None, Route::NotFound),
            ("/static/%FF", None, Route::NotFound),
        ];
        let table = table();
        for (path, query, expected) in rows {
            assert_eq!(&route(&table, path, *query), expected, "path {path}");
        }
    }

    #[test]
    fn paths_that_need_no_decoding_are_borrowed_not_copied() {
        let table = table();
        let rows = [
            ("/admin/users/5", true),
            ("/static/style.css", true),
            ("/admin/%75sers/5", false),
            ("/admin/x/../users/5", false),
        ];
        for (path, borrowed) in rows {
            let found = match route(&table, path, None) {
                Route::App { path, .. } | Route::Static { file: path, .. } => path,
                other => panic!("{path}: {other:?}"),
            };
            assert_eq!(matches!(found, Cow::Borrowed(_)), borrowed, "{path}");
        }
    }

    #[test]
    fn only_paths_with_escapes_nuls_or_dot_segments_are_decoded() {
        let rows = [
            ("/", false),
            ("/hello", false),
            ("/a.b/c.", false),
            ("/admin/users/5", false),
            ("/%41", true),
            ("/a\0", true),
            ("/.", true),
            ("/a/..", true),
            ("/a/./b", true),
            // a segment merely starting with a dot takes the careful path too
            ("/.well-known/x", true),
        ];
        for (path, expected) in rows {
            assert_eq!(may_need_decoding(path), expected, "{path:?}");
        }
    }

    #[test]
    fn paths_that_cannot_be_served_are_bad_requests() {
        let table = table();
        for path in [
            "/admin%2Fusers",
            "/admin%2fusers",
            "/%2e%2e/x/../..",
            "/..",
            "/a/%00",
            "/%FF",
            "*",
            "admin",
        ] {
            assert!(
                matches!(route(&table, path, None), Route::BadRequest(_)),
                "{path} should be a bad request"
            );
        }
    }

    #[test]
    fn without_a_root_mount_unmatched_paths_are_not_found() {
        let table = PrefixTable::new(mounts(&[("/admin", None)]));
        assert_eq!(route(&table, "/", None), Route::NotFound);
        assert_eq!(route(&table, "/adminx/", None), Route::NotFound);
        assert_eq!(route(&table, "/admin/x", None), app(0, "/x"));
    }

    #[test]
    fn lookup_cost_does_not_depend_on_unrelated_mounts() {
        let prefixes: Vec<String> = (0..1000).map(|i| format!("/app{i}")).collect();
        let table = PrefixTable::new(prefixes.iter().map(|prefix| MountPrefix {
            prefix,
            static_url_path: None,
            uploads_url_path: None,
        }));
        assert_eq!(table.lookup("/app999/x"), Some((999, 7)));
        assert_eq!(table.lookup("/app1000/x"), None);
        // one child map per level: the root holds all 1000, the rest none
        assert_eq!(table.root.children.len(), 1000);
    }

    #[test]
    fn never_panics_on_arbitrary_paths() {
        let table = table();
        let pieces = [
            "/", "%", "%2", "%2e", ".", "..", "a", "é", "%C3", "\0", "admin", "?",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let path = format!("/{a}{b}{c}");
                    let _ = route(&table, &path, Some("q"));
                }
            }
        }
    }
}
