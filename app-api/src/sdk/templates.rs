//! HTML templates (minijinja, Jinja2's syntax) with what Flask gives its
//! templates: autoescaping, `url_for`, `static_url`, `upload_url`,
//! `csrf_token()`, `get_flashed_messages()`, `request` and `app_name`.
//!
//! An app's templates folder is embedded into its library with
//! [`templates!`](crate::templates!): a built app needs no files beside
//! it. When the host runs with `--reload`, templates are read from that
//! folder instead (the path it had when the app was built) and read again
//! whenever a file in it changes, so an edit shows on the next request
//! without a rebuild.
//!
//! ```
//! use app_api::{prelude::*, sdk::{templates::Templates, testing::TestClient}};
//! use app_api::minijinja::context;
//!
//! fn build(mount: &Mount) -> Result<Router, Error> {
//!     // a folder beside Cargo.toml; here it holds hello.html:
//!     // <a href="{{ url_for("hello", name=name) }}">{{ name }}</a>
//!     let templates = Templates::new(mount)
//!         .source(app_api::templates!("tests/templates"))
//!         .build()?;
//!     Ok(Router::new().get("/hello/<name>", "hello", move |req: &Request| {
//!         let name: &str = req.param("name")?;
//!         templates.page(req, "hello.html", context! { name })
//!     }))
//! }
//!
//! let client = TestClient::new(build, Mount::new("blog", "/blog")).unwrap();
//! let page = client.get("/hello/%3Cb%3E");
//! assert_eq!(page.body_text(), "<a href=\"/blog/hello/%3Cb%3E\">&lt;b&gt;</a>");
//! ```
//!
//! Later sources replace earlier ones' templates of the same name: an app
//! adds a shared crate's folder first, then its own.

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use minijinja::{Environment, Value, context, value::Kwargs};

use super::{Error, Mount, Request, Response, Urls};

/// Files by name, as embedded.
type EmbeddedFiles = Vec<(String, Cow<'static, [u8]>)>;

/// What a folder of templates holds on disk: each file's path, size and
/// time of change; a change in any means the templates changed.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// A folder of templates: embedded in the library, and where it was when
/// the library was built. Made by [`templates!`](crate::templates!).
#[derive(Clone)]
pub struct Source {
    folder: &'static str,
    embedded: fn() -> EmbeddedFiles,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("folder", &self.folder)
            .finish()
    }
}

impl Source {
    #[doc(hidden)]
    pub fn new<E: rust_embed::RustEmbed>(folder: &'static str) -> Source {
        Source {
            folder,
            embedded: embedded_files::<E>,
        }
    }

    /// The folder the templates came from when the library was built.
    pub fn folder(&self) -> &Path {
        Path::new(self.folder)
    }
}

fn embedded_files<E: rust_embed::RustEmbed>() -> EmbeddedFiles {
    E::iter()
        .filter_map(|name| E::get(&name).map(|file| (name.into_owned(), file.data)))
        .collect()
}

/// Embeds a folder of templates (relative to the crate's `Cargo.toml`)
/// into the library: `app_api::templates!("templates")` gives a
/// [`Source`](crate::sdk::templates::Source) for
/// [`Templates`](crate::sdk::templates::Templates). The crate must depend
/// on the SDK under its own name, `app_api`.
#[macro_export]
macro_rules! templates {
    ($folder:tt) => {{
        #[derive($crate::__private::rust_embed::RustEmbed)]
        #[crate_path = "app_api::__private::rust_embed"]
        #[folder = $folder]
        struct Embedded;
        $crate::sdk::templates::Source::new::<Embedded>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/",
            $folder
        ))
    }};
}

/// A change to the environment, made again whenever templates are
/// reloaded: filters, functions, globals.
type Setup = Arc<dyn Fn(&mut Environment<'static>) + Send + Sync>;

/// What [`Templates::new`] starts: the sources, extra templates and setup.
pub struct TemplatesBuilder {
    reload: bool,
    sources: Vec<Source>,
    extra: Vec<(String, String)>,
    setup: Vec<Setup>,
}

impl TemplatesBuilder {
    /// Adds a folder of templates; its templates replace earlier ones of
    /// the same name.
    pub fn source(mut self, source: Source) -> TemplatesBuilder {
        self.sources.push(source);
        self
    }

    /// Adds one template from a string (after every source's).
    pub fn template(mut self, name: &str, text: &str) -> TemplatesBuilder {
        self.extra.push((name.to_owned(), text.to_owned()));
        self
    }

    /// Changes the environment: add filters, functions and globals.
    pub fn setup<F>(mut self, setup: F) -> TemplatesBuilder
    where
        F: Fn(&mut Environment<'static>) + Send + Sync + 'static,
    {
        self.setup.push(Arc::new(setup));
        self
    }

    /// Compiles every template: a syntax error fails here, naming the
    /// template and line.
    pub fn build(self) -> Result<Templates, Error> {
        let fingerprint = self.fingerprint();
        let environment = Arc::new(self.environment()?);
        Ok(Templates {
            inner: Arc::new(Inner {
                current: Mutex::new((fingerprint, environment)),
                builder: self,
            }),
        })
    }

    /// The templates' files: from the folders on disk when reloading,
    /// else embedded.
    fn files(&self) -> Result<Vec<(String, String)>, Error> {
        let mut files = Vec::new();
        for source in &self.sources {
            let found = if self.reload {
                from_disk(source.folder())?
            } else {
                (source.embedded)()
                    .into_iter()
                    .map(|(name, data)| {
                        let text = String::from_utf8(data.into_owned()).map_err(|_| {
                            Error::internal(format!("template {name} is not UTF-8 text"))
                        })?;
                        Ok((name, text))
                    })
                    .collect::<Result<_, Error>>()?
            };
            files.extend(found);
        }
        files.extend(self.extra.iter().cloned());
        Ok(files)
    }

    fn environment(&self) -> Result<Environment<'static>, Error> {
        let mut env = Environment::new();
        // printing an undefined value is an error; testing it is not
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.set_formatter(html_formatter);
        for (name, text) in self.files()? {
            env.add_template_owned(name.clone(), text)
                .map_err(|error| Error::internal(format!("template {name}: {error:#}")))?;
        }
        for setup in &self.setup {
            setup(&mut env);
        }
        Ok(env)
    }

    /// What the folders hold now (names, sizes, times), when reloading.
    fn fingerprint(&self) -> Fingerprint {
        if !self.reload {
            return Vec::new();
        }
        let mut found = Vec::new();
        for source in &self.sources {
            walk(source.folder(), &mut |path, metadata| {
                found.push((path.to_owned(), metadata.len(), metadata.modified().ok()));
            });
        }
        found
    }
}

/// Every file below `folder`, with its metadata; unreadable parts skipped
/// (reading them reports the error).
fn walk(folder: &Path, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => walk(&path, visit),
            Ok(metadata) => visit(&path, &metadata),
            Err(_) => {}
        }
    }
}

/// The templates in `folder` on disk, named by their paths inside it.
fn from_disk(folder: &Path) -> Result<Vec<(String, String)>, Error> {
    if !folder.is_dir() {
        return Err(Error::internal(format!(
            "templates folder {} is not there: --reload reads templates where the app was built (run the host on the machine that built it, or without --reload)",
            folder.display()
        )));
    }
    let mut paths = Vec::new();
    walk(folder, &mut |path, _| paths.push(path.to_owned()));
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(folder)
                .unwrap_or(&path)
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path).map_err(|error| {
                Error::internal(format!("template {}: {error}", path.display()))
            })?;
            Ok((name, text))
        })
        .collect()
}

/// An app's templates, ready to render; cheap to clone.
#[derive(Clone)]
pub struct Templates {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("sources", &self.inner.builder.sources)
            .field("reload", &self.inner.builder.reload)
            .finish()
    }
}

struct Inner {
    builder: TemplatesBuilder,
    /// The folders' fingerprint when the environment was built, and it.
    current: Mutex<(Fingerprint, Arc<Environment<'static>>)>,
}

impl Templates {
    /// Starts the templates of `mount`: add sources, then
    /// [`build`](TemplatesBuilder::build). They reload from disk when
    /// the host runs with `--reload`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(mount: &Mount) -> TemplatesBuilder {
        TemplatesBuilder {
            reload: mount.reload,
            sources: Vec::new(),
            extra: Vec::new(),
            setup: Vec::new(),
        }
    }

    /// The environment to render with: when reloading, made again if a
    /// file changed since.
    fn environment(&self) -> Result<Arc<Environment<'static>>, Error> {
        let builder = &self.inner.builder;
        let mut current = self
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if builder.reload {
            let now = builder.fingerprint();
            if now != current.0 {
                *current = (now, Arc::new(builder.environment()?));
                tracing::info!("templates changed: reloaded them");
            }
        }
        Ok(Arc::clone(&current.1))
    }

    /// Renders `name` with `page`'s values and the request's: `url_for`,
    /// `static_url`, `upload_url`, `csrf_token()`, `get_flashed_messages()`,
    /// `request` (`path`, `endpoint`, `view_args`, `script_root`) and
    /// `app_name`; a value of `page` wins over the request's of the same
    /// name. The session is touched only if the template calls
    /// `csrf_token()` or `get_flashed_messages()`.
    pub fn render(&self, req: &Request, name: &str, page: Value) -> Result<String, Error> {
        self.render_with(req, name, page, Vec::new())
    }

    /// [`render`](Templates::render) with more values beside the request's,
    /// e.g. what every page of a site adds (its language, the user);
    /// `page`'s still win.
    pub fn render_with(
        &self,
        req: &Request,
        name: &str,
        page: Value,
        more: Vec<(&'static str, Value)>,
    ) -> Result<String, Error> {
        let env = self.environment()?;
        let template = env
            .get_template(name)
            .map_err(|error| Error::internal(format!("template {name}: {error:#}")))?;
        template
            .render(Value::from_object(Vars::new(req, page, more)))
            .map_err(|error| Error::internal(format!("rendering {name}: {error:#}")))
    }

    /// [`render`](Templates::render) as a `200 text/html` response.
    pub fn page(&self, req: &Request, name: &str, page: Value) -> Result<Response, Error> {
        Ok(Response::html(self.render(req, name, page)?))
    }
}

/// A render's variables: the page's first, then the request's and the
/// caller's. A template looks a variable up at every use: the page's map
/// once, then a scan of a dozen names (maps merged by minijinja, or one
/// minijinja map of them all, cost a tenth of a page's rendering more).
#[derive(Debug)]
struct Vars {
    page: Value,
    others: Vec<(&'static str, Value)>,
}

impl Vars {
    fn new(req: &Request, page: Value, more: Vec<(&'static str, Value)>) -> Vars {
        let mut others = globals(req);
        // the caller's before the request's: the caller's win
        others.splice(0..0, more);
        Vars { page, others }
    }
}

impl minijinja::value::Object for Vars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Ok(value) = self.page.get_item(key)
            && !value.is_undefined()
        {
            return Some(value);
        }
        let key = key.as_str()?;
        self.others
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        let mut names: Vec<Value> = self
            .page
            .try_iter()
            .map(Iterator::collect)
            .unwrap_or_default();
        names.extend(self.others.iter().map(|(name, _)| Value::from(*name)));
        minijinja::value::Enumerator::Values(names)
    }
}

/// What every template gets from the request.
fn globals(req: &Request) -> Vec<(&'static str, Value)> {
    // one copy of the URL builder (a few strings) for the three functions
    let urls = Arc::new(req.urls());
    let (csrf_session, flash_session) = (req.session(), req.session());
    let view_args: Vec<(&str, &str)> = req
        .params()
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    vec![
        ("url_for", url_function(Arc::clone(&urls))),
        (
            "static_url",
            file_function(Arc::clone(&urls), Urls::static_url),
        ),
        ("upload_url", file_function(urls, Urls::upload_url)),
        (
            "csrf_token",
            Value::from_function(move || csrf_session.csrf_token()),
        ),
        (
            "get_flashed_messages",
            Value::from_function(move || flash_session.take_flashes()),
        ),
        ("app_name", Value::from(req.app_name())),
        (
            "request",
            context! {
                path => req.path(),
                script_root => req.script_root(),
                endpoint => req.endpoint(),
                view_args => Value::from_iter(view_args),
            },
        ),
    ]
}

fn url_function(urls: Arc<Urls>) -> Value {
    Value::from_function(
        move |endpoint: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            // each argument read once (a lookup in the call's keyword map)
            // and string values (slugs) borrowed: a listing calls this for
            // every card
            let values = kwargs
                .args()
                .map(|key| Ok((key, kwargs.get::<Value>(key)?)))
                .collect::<Result<Vec<_>, minijinja::Error>>()?;
            let texts: Vec<Cow<'_, str>> = values
                .iter()
                .map(|(_, value)| {
                    value
                        .as_str()
                        .map_or_else(|| value.to_string().into(), Cow::from)
                })
                .collect();
            let params: Vec<(&str, &str)> = values
                .iter()
                .zip(&texts)
                .map(|((key, _), text)| (*key, text.as_ref()))
                .collect();
            urls.url_for(endpoint, &params).map_err(|error| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    error.message().to_owned(),
                )
            })
        },
    )
}

fn file_function(urls: Arc<Urls>, build: fn(&Urls, &str) -> String) -> Value {
    Value::from_function(move |file: &str| build(&urls, file))
}

/// HTML autoescaping of `& < > " '`. minijinja's own also turns every
/// `/` into `&#x2f;`: valid, but it makes every URL in a page's source
/// hard to read, and `/` cannot end an attribute value or start a tag.
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if state.auto_escape() == minijinja::AutoEscape::Html && !value.is_safe() => {
            if !text.bytes().any(|byte| entity(byte).is_some()) {
                return out.write_str(text).map_err(Into::into);
            }
            // escaped into one string and written once: HTML escaped as
            // text (a feed's entries) has a special character every few
            // bytes, and writing each piece to the output separately, found
            // by `str::find` with a set of chars, took half of the feed's CPU
            let mut escaped = String::with_capacity(text.len() + text.len() / 4);
            escape_html(text, &mut escaped);
            out.write_str(&escaped).map_err(Into::into)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// The entity that stands for `byte` in HTML text, if it needs one.
fn entity(byte: u8) -> Option<&'static str> {
    match byte {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&quot;"),
        b'\'' => Some("&#39;"),
        _ => None,
    }
}

/// Appends `text` to `out` with `& < > " '` escaped.
pub fn escape_html(text: &str, out: &mut String) {
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        if let Some(entity) = entity(byte) {
            // `at` is an ASCII byte, so a char boundary
            out.push_str(&text[start..at]);
            out.push_str(entity);
            start = at + 1;
        }
    }
    out.push_str(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::{Router, Routes, testing::TestClient};

    #[test]
    fn html_text_is_escaped_and_slashes_are_not() {
        for (text, expected) in [
            ("plain text / path", "plain text / path"),
            ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
            (
                "<p class=\"x\">it's</p>",
                "&lt;p class=&quot;x&quot;&gt;it&#39;s&lt;/p&gt;",
            ),
            ("café <é>", "café &lt;é&gt;"),
            ("&", "&amp;"),
            ("", ""),
        ] {
            let mut out = String::new();
            escape_html(text, &mut out);
            assert_eq!(out, expected, "{text:?}");
        }
    }

    /// A client for an app rendering `t.html` from `source`, at `/blog`.
    fn client(mount: Mount, source: Option<Source>, text: Option<&str>) -> TestClient {
        let build = move |mount: &Mount| -> Result<Router, Error> {
            let mut templates = Templates::new(mount);
            if let Some(source) = source {
                templates = templates.source(source);
            }
            if let Some(text) = text {
                templates = templates.template("t.html", text);
            }
            let templates = templates.build()?;
            Ok(Router::new()
                .get("/", "index", move |req: &Request| {
                    templates.page(req, "t.html", context! { slug => "hello", n => 1 })
                })
                .get("/post/<slug>", "post", |_| Ok(Response::text(""))))
        };
        TestClient::new(build, mount).unwrap()
    }

    #[test]
    fn url_for_in_templates_takes_strings_numbers_and_extra_arguments() {
        let source = "{{ url_for('post', slug=slug) }}|{{ url_for('post', slug='a b', page=2, q='x&y') }}\
                      |{{ url_for('index', page=n + 1) }}|{{ '<b>' }}|{{ request.endpoint }}";
        let response = client(Mount::new("blog", "/blog"), None, Some(source)).get("/");
        assert_eq!(response.status(), 200);
        // the page is HTML: the query's `&` is escaped
        assert_eq!(
            response.body_text(),
            "/blog/post/hello|/blog/post/a%20b?page=2&amp;q=x%26y|/blog/?page=2|&lt;b&gt;|index"
        );
    }

    #[test]
    fn pages_touch_the_session_only_when_they_use_it() {
        let plain = client(Mount::new("blog", "/"), None, Some("hi")).get("/");
        assert_eq!(plain.header("set-cookie"), None);
        assert_eq!(plain.header("vary"), None);
        let client = client(
            Mount::new("blog", "/"),
            None,
            Some("<input value='{{ csrf_token() }}'>"),
        );
        let form = client.get("/");
        assert!(form.header("set-cookie").is_some());
        let token = client.csrf_token().unwrap();
        assert_eq!(form.body_text(), format!("<input value='{token}'>"));
    }

    #[test]
    fn reloading_reads_the_folder_again_when_a_file_changes() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("t.html"), "one").unwrap();
        // a source whose folder is the temporary one; nothing embedded
        let path: &'static str = Box::leak(folder.path().to_str().unwrap().to_owned().into());
        let source = Source {
            folder: path,
            embedded: Vec::new,
        };
        let mut mount = Mount::new("blog", "/");
        mount.reload = true;
        let client = client(mount, Some(source.clone()), None);
        assert_eq!(client.get("/").body_text(), "one");
        std::fs::write(folder.path().join("t.html"), "two, longer").unwrap();
        assert_eq!(client.get("/").body_text(), "two, longer");
        // not reloading: the embedded files only (none here)
        let fixed = self::client(Mount::new("blog", "/"), Some(source), None);
        assert_eq!(fixed.get("/").status(), 500);
    }
}
