//! The `pages` blueprint: pages every app of the blog shows from the same
//! code (About, the original setup's hello), and the error page both apps
//! answer client errors with.

use std::sync::Arc;

use app_api::prelude::*;
use minijinja::context;

use crate::Site;

/// Adds the blueprint's routes: `pages.about` and `pages.hello`.
pub fn register(router: Router, site: &Arc<Site>) -> Router {
    let about = Arc::clone(site);
    let errors = Arc::clone(site);
    router
        .get("/about", "pages.about", move |req: &Request| {
            about.templates.page(req, "about.html", context! {})
        })
        .get("/hello", "pages.hello", hello)
        .error_handler(move |req: &Request, error: &Error| error_page(&errors, req, error))
}

/// The greeting of the original Flask setup, byte for byte:
/// `'Hello ' + app_name + '! request.url = ' + request.url`.
pub fn hello(req: &Request) -> Result<Response, Error> {
    Ok(Response::text(format!(
        "Hello {}! request.url = {}",
        req.app_name(),
        req.url()
    )))
}

/// The page for a client error (4xx), in the site's layout.
pub fn error_page(site: &Site, req: &Request, error: &Error) -> Response {
    let status = error.status();
    let title = app_api::sdk::reason_phrase(status);
    let page = context! { status => status, title => title, message => error.message() };
    match site.templates.render(req, None, "error.html", page) {
        Ok(html) => Response::html(html).with_status(status),
        Err(render_error) => {
            tracing::error!("the error page failed: {render_error}");
            Response::from(error.clone())
        }
    }
}
