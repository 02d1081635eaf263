//! What the blog's `frontend` and `admin` apps share: the data model on the
//! host's database, the templates and their base layout, the `auth` and
//! `pages` blueprints (both registered under `/<lang_code>`, as in the
//! Flask setup this replaces), the languages, markdown rendering, and the
//! static files in `shared/static/`.

pub mod auth;
pub mod i18n;
pub mod markdown;
pub mod model;
pub mod pages;
mod password;
pub mod render_cache;
mod session_user;
pub mod templates;

use std::sync::Arc;

use app_api::{minijinja, prelude::*, sdk::templates::Source};

use markdown::HtmlCache;
use minijinja::Value;
use model::Blog;
use render_cache::RenderCache;

/// The endpoint of each app's home page; blueprints link to it.
pub const HOME_ENDPOINT: &str = "index";

/// What one app instance's handlers share.
#[derive(Debug)]
pub struct Site {
    /// The data.
    pub blog: Blog,
    /// The templates: shared and the app's own.
    pub templates: app_api::sdk::templates::Templates,
    /// Post bodies and comments rendered to HTML.
    pub bodies: HtmlCache,
    /// Error pages rendered (see [`pages::error_page`]).
    pub error_pages: RenderCache,
}

/// The most bytes of rendered post bodies (markdown and HTML) an app
/// instance keeps: some thousand posts of a few KB.
const BODIES_BUDGET: usize = 8 << 20;

/// The most bytes of rendered error pages an app instance keeps: a page is
/// some 2 KB, and each status, message, language and script root makes its
/// own.
const ERROR_PAGES_BUDGET: usize = 256 << 10;

/// Who a page is for: whether it may show the logged-in user (and so
/// reads the session) or is the same for everyone (kept in a cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The visitor: the page greets a logged-in user.
    Visitor,
    /// Anyone: the page reads no session.
    Anyone,
}

impl Site {
    /// Opens the model (migrating the schema) and builds the templates:
    /// the shared ones, then the app's own (which may replace shared ones).
    pub fn open(mount: &Mount, own: Source) -> Result<Arc<Site>, Error> {
        let templates = app_api::sdk::templates::Templates::new(mount)
            .source(app_api::templates!("templates"))
            .source(own)
            .setup(templates::setup)
            .build()?;
        Ok(Arc::new(Site {
            blog: Blog::open(mount.db()?)?,
            templates,
            bodies: HtmlCache::new(BODIES_BUDGET),
            error_pages: RenderCache::new(ERROR_PAGES_BUDGET),
        }))
    }

    /// Renders `name` with `page` and what every page of the blog gets:
    /// `lang`, the `switcher` (this page in each language), `hreflang`
    /// alternates, and for a [`Audience::Visitor`] page the logged-in
    /// `user`.
    pub fn render(
        &self,
        req: &Request,
        audience: Audience,
        name: &str,
        page: Value,
    ) -> Result<String, Error> {
        let lang = i18n::lang(req);
        let user = match audience {
            Audience::Visitor => session_user::remembered(&req.session()),
            Audience::Anyone => None,
        };
        let (switcher, alternates) = language_links(req, lang, &page);
        self.templates.render_with(
            req,
            name,
            page,
            vec![
                ("lang", Value::from(lang)),
                ("_", i18n::translator(lang)),
                ("user", Value::from_serialize(user)),
                ("public", Value::from(audience == Audience::Anyone)),
                ("switcher", Value::from_serialize(switcher)),
                ("alternates", Value::from_serialize(alternates)),
            ],
        )
    }

    /// [`render`](Site::render) for the visitor, as a `200 text/html`
    /// response.
    pub fn page(&self, req: &Request, name: &str, page: Value) -> Result<Response, Error> {
        Ok(Response::html(self.render(
            req,
            Audience::Visitor,
            name,
            page,
        )?))
    }
}

/// A language's entry in the switcher.
#[derive(Debug, serde::Serialize)]
struct LanguageLink {
    code: &'static str,
    name: &'static str,
    href: String,
    current: bool,
}

/// The switcher's links and the `hreflang` alternates of this page. A page
/// whose matched rule has a `<lang_code>` exists in each language at the
/// same endpoint, unless the page says `one_language` (a post is written
/// in one): then the switcher leads to each language's home page and
/// there are no alternates. Other pages switch to the home pages too.
fn language_links(
    req: &Request,
    lang: &str,
    page: &Value,
) -> (Vec<LanguageLink>, Vec<LanguageLink>) {
    let one_language = page
        .get_attr("one_language")
        .is_ok_and(|value| value.is_true());
    let localised = req.params().iter().any(|(name, _)| name == i18n::PARAM);
    let same_page = localised && !one_language;
    let links: Vec<LanguageLink> = i18n::LANGUAGES
        .iter()
        .filter_map(|(code, name)| {
            let href = match req.endpoint() {
                Some(endpoint) if same_page => {
                    let mut params: Vec<(&str, &str)> = req
                        .params()
                        .iter()
                        .filter(|(key, _)| key != i18n::PARAM)
                        .map(|(key, value)| (key.as_str(), value.as_str()))
                        .collect();
                    params.push((i18n::PARAM, code));
                    req.url_for(endpoint, &params)
                }
                _ => req.url_for(HOME_ENDPOINT, &[(i18n::PARAM, code)]),
            };
            // a home page that takes no language puts it in the query
            // (the admin's): no switcher there
            href.ok()
                .filter(|href| !href.contains('?'))
                .map(|href| LanguageLink {
                    code,
                    name,
                    href,
                    current: *code == lang,
                })
        })
        .collect();
    let alternates = if same_page {
        links
            .iter()
            .map(|link| LanguageLink {
                code: link.code,
                name: link.name,
                href: format!("{}{}", req.host_url(), link.href),
                current: link.current,
            })
            .collect()
    } else {
        Vec::new()
    };
    (links, alternates)
}
