//! minijinja templates: the shared base layout and pages in
//! `shared/templates/`, plus each app's own. Autoescaping is on for every
//! `.html` template, and templates build URLs the way Flask's do:
//! `url_for('post', slug=post.slug)`, `static_url('style.css')`,
//! `upload_url(image.file_name)`; all three include the mount's prefix.

use std::{borrow::Cow, sync::Arc};

use app_api::{
    prelude::*,
    sdk::{Session, Urls},
};
use minijinja::{Environment, Value, context, value::Kwargs};

/// The shared templates, by name.
pub const SHARED: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    ("about.html", include_str!("../templates/about.html")),
];

/// The templates of one app: the shared ones and its own.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Templates {
    /// The shared templates plus `own` (which may replace shared ones).
    pub fn new(own: &[(&'static str, &'static str)]) -> Result<Templates, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in SHARED.iter().chain(own) {
            env.add_template_owned(*name, *source)
                .map_err(|error| Error::internal(format!("template {name}: {error:#}")))?;
        }
        env.add_filter("date", date_filter);
        env.set_formatter(html_formatter);
        Ok(Templates { env: Arc::new(env) })
    }

    /// Renders `name` as the body of an HTML response. The context gets
    /// `url_for`, `static_url`, `upload_url`, `app_name`, `csrf_token`
    /// (when `session` is given: pages with forms), the logged-in `user`
    /// and the flashed messages.
    pub fn render(
        &self,
        req: &Request,
        session: Option<&mut Session>,
        name: &str,
        page: Value,
    ) -> Result<String, Error> {
        // one copy of the URL builder (three strings) for the three
        // functions, not one each
        let urls = Arc::new(req.urls());
        let (csrf_token, flashes, user) = match session {
            Some(session) => (
                Some(session.csrf_token()),
                take_flashes(session),
                crate::session_user::remembered(session),
            ),
            None => (None, Vec::new(), None),
        };
        let globals = context! {
            url_for => url_function(Arc::clone(&urls)),
            static_url => file_function(Arc::clone(&urls), Urls::static_url),
            upload_url => file_function(urls, Urls::upload_url),
            app_name => req.app_name(),
            csrf_token => csrf_token,
            flashes => flashes,
            user => user,
        };
        let template = self
            .env
            .get_template(name)
            .map_err(|error| Error::internal(format!("template {name}: {error:#}")))?;
        template
            .render(context! { ..page, ..globals })
            .map_err(|error| Error::internal(format!("rendering {name}: {error:#}")))
    }

    /// A page without forms (no session): [`render`](Templates::render) as
    /// a `200 text/html` response that sets no cookie.
    pub fn page(&self, req: &Request, name: &str, page: Value) -> Result<Response, Error> {
        Ok(Response::html(self.render(req, None, name, page)?))
    }

    /// A page with forms: [`render`](Templates::render) with the session
    /// (its CSRF token, user and flashed messages) as a `200 text/html`
    /// response that saves the session.
    pub fn form_page(
        &self,
        req: &Request,
        session: &mut Session,
        name: &str,
        page: Value,
    ) -> Result<Response, Error> {
        let html = self.render(req, Some(session), name, page)?;
        Ok(Response::html(html).with_session(req, session))
    }
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
fn escape_html(text: &str, out: &mut String) {
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

/// `{{ post.created_at|date }}`: Unix seconds as `2026-11-25`;
/// `|date("rfc3339")` for feeds.
fn date_filter(seconds: i64, format: Option<&str>) -> Result<String, minijinja::Error> {
    let time = time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|error| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
    })?;
    let text = match format {
        Some("rfc3339") => time.format(&time::format_description::well_known::Rfc3339),
        _ => time.format(time::macros::format_description!("[year]-[month]-[day]")),
    };
    text.map_err(|error| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
    })
}

const FLASH_KEY: &str = "_flashes";

/// Keeps a message for the next page the person sees (Flask's `flash`).
pub fn flash(session: &mut Session, message: &str) {
    let mut flashes: Vec<String> = session.get(FLASH_KEY).unwrap_or_default();
    flashes.push(message.to_owned());
    session.insert(FLASH_KEY, flashes);
}

fn take_flashes(session: &mut Session) -> Vec<String> {
    let flashes: Vec<String> = session.get(FLASH_KEY).unwrap_or_default();
    if !flashes.is_empty() {
        session.remove(FLASH_KEY);
    }
    flashes
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn templates_escape_values_unless_marked_safe() {
        let templates = Templates::new(&[("t.html", "{{ a }}|{{ b }}")]).unwrap();
        let template = templates.env.get_template("t.html").unwrap();
        let html = template
            .render(context! { a => "<b>'x'</b>", b => Value::from_safe_string("<i>/</i>".into()) })
            .unwrap();
        assert_eq!(html, "&lt;b&gt;&#39;x&#39;&lt;/b&gt;|<i>/</i>");
    }

    #[test]
    fn url_for_in_templates_takes_strings_numbers_and_extra_arguments() {
        use app_api::sdk::testing::TestClient;
        let source = "{{ url_for('post', slug=slug) }}|{{ url_for('post', slug='a b', page=2, q='x&y') }}\
                      |{{ url_for('index', page=n + 1) }}";
        let templates = Templates::new(&[("t.html", source)]).unwrap();
        let build = move |_: &Mount| -> Result<Router, Error> {
            let templates = templates.clone();
            Ok(Router::new()
                .get("/", "index", move |req: &Request| {
                    templates.page(req, "t.html", context! { slug => "hello", n => 1 })
                })
                .get("/post/<slug>", "post", |_| Ok(Response::text(""))))
        };
        let client = TestClient::new(build, Mount::new("blog", "/blog")).unwrap();
        let response = client.get("/");
        assert_eq!(response.status(), 200);
        // the page is HTML: the query's `&` is escaped
        assert_eq!(
            response.body_text(),
            "/blog/post/hello|/blog/post/a%20b?page=2&amp;q=x%26y|/blog/?page=2"
        );
    }
}
