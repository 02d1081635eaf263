//! What the blog's `frontend` and `admin` apps share: the data model on the
//! host's database, the templates and their base layout, the `auth` and
//! `pages` blueprints, markdown rendering, and the static files in
//! `shared/static/`.

pub mod auth;
pub mod markdown;
pub mod model;
pub mod pages;
mod password;
pub mod render_cache;
mod session_user;
pub mod templates;

use std::sync::Arc;

use app_api::prelude::*;

use markdown::HtmlCache;
use model::Blog;
use render_cache::RenderCache;
use templates::Templates;

/// The endpoint of each app's home page; blueprints link to it.
pub const HOME_ENDPOINT: &str = "index";

/// What one app instance's handlers share.
#[derive(Debug)]
pub struct Site {
    /// The data.
    pub blog: Blog,
    /// The templates: shared and the app's own.
    pub templates: Templates,
    /// Post bodies rendered to HTML.
    pub bodies: HtmlCache,
    /// Error pages rendered (see [`pages::error_page`]).
    pub error_pages: RenderCache,
}

/// The most bytes of rendered post bodies (markdown and HTML) an app
/// instance keeps: some thousand posts of a few KB.
const BODIES_BUDGET: usize = 8 << 20;

/// The most bytes of rendered error pages an app instance keeps: a page is
/// some 2 KB, and each status, message and script root makes its own.
const ERROR_PAGES_BUDGET: usize = 256 << 10;

impl Site {
    /// Opens the model (migrating the schema) and builds the templates,
    /// adding the app's own.
    pub fn open(
        mount: &Mount,
        own_templates: &[(&'static str, &'static str)],
    ) -> Result<Arc<Site>, Error> {
        Ok(Arc::new(Site {
            blog: Blog::open(mount.db()?)?,
            templates: Templates::new(own_templates)?,
            bodies: HtmlCache::new(BODIES_BUDGET),
            error_pages: RenderCache::new(ERROR_PAGES_BUDGET),
        }))
    }
}
