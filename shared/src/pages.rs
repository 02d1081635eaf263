//! The `pages` blueprint: pages every app of the blog shows from the same
//! code (About), the original setup's hello, and the error page both apps
//! answer client errors with.

use std::sync::Arc;

use app_api::{minijinja::context, prelude::*};

use crate::{Audience, Site, i18n};

/// The blueprint: `pages.about`. Both apps register it under
/// `/<lang_code>`.
pub fn blueprint(site: &Arc<Site>) -> Blueprint {
    let about = Arc::clone(site);
    Blueprint::new("pages").get("/about", "about", move |req: &Request| {
        about.page(req, "about.html", context! {})
    })
}

/// The error page handler for a router (every client error, in the
/// site's layout and the visitor's language).
pub fn error_handler(
    site: &Arc<Site>,
) -> impl Fn(&Request, &Error) -> Response + Send + Sync + 'static {
    let site = Arc::clone(site);
    move |req: &Request, error: &Error| error_page(&site, req, error)
}

/// The greeting of the original Flask setup, byte for byte:
/// `'Hello ' + app_name + '! request.url = ' + request.url`, made in a
/// string of the right size (`format!` guesses its size, and outgrows the
/// guess here).
pub fn hello(req: &Request) -> Result<Response, Error> {
    const HELLO: &str = "Hello ";
    const URL_IS: &str = "! request.url = ";
    let (name, url) = (req.app_name(), req.url());
    let mut body = String::with_capacity(HELLO.len() + name.len() + URL_IS.len() + url.len());
    body.push_str(HELLO);
    body.push_str(name);
    body.push_str(URL_IS);
    body.push_str(&url);
    Ok(Response::text(body))
}

/// The page for a client error (4xx), in the site's layout. Rendered once
/// per status, message, language and script root, then kept
/// (`Site::error_pages`): the page depends on nothing else (no session, so
/// no user, flashes or CSRF token), and a public site answers many 404s,
/// to scanners too; a kept page costs a copy instead of a render.
pub fn error_page(site: &Site, req: &Request, error: &Error) -> Response {
    let status = error.status();
    let lang = i18n::lang(req);
    let key = error_page_key(status, req.script_root(), lang, error.message());
    let page = site.error_pages.get_or_render(&key, || {
        let title = app_api::sdk::reason_phrase(status);
        let page = context! { status => status, title => title, message => error.message() };
        site.render(req, Audience::Anyone, "error.html", page)
    });
    match page {
        Ok(html) => Response::html(html.to_string()).with_status(status),
        Err(render_error) => {
            tracing::error!("the error page failed: {render_error}");
            Response::from(error.clone())
        }
    }
}

/// What an error page depends on, as one key: a status has three digits,
/// and a script root and a language code no line break, so the parts
/// cannot run into each other.
fn error_page_key(status: u16, script_root: &str, lang: &str, message: &str) -> String {
    format!("{status}\n{script_root}\n{lang}\n{message}")
}

#[cfg(test)]
mod tests {
    use app_api::sdk::testing::TestClient;

    use super::*;

    #[test]
    fn the_greeting_is_the_flask_setups_with_the_request_url() {
        let cases = [
            (
                "frontend",
                "/",
                "/hello",
                "Hello frontend! request.url = http://localhost/hello",
            ),
            (
                "admin",
                "/admin",
                "/hello",
                "Hello admin! request.url = http://localhost/admin/hello",
            ),
            (
                "admin",
                "/admin",
                "/hello?x=1&y=%C3%A9",
                "Hello admin! request.url = http://localhost/admin/hello?x=1&y=%C3%A9",
            ),
        ];
        for (name, prefix, target, expected) in cases {
            let client = TestClient::new(
                |_: &Mount| Ok(Router::new().get("/hello", "hello", hello)),
                Mount::new(name, prefix),
            )
            .unwrap();
            let response = client.get(target);
            assert_eq!(response.status(), 200, "{target}");
            assert_eq!(response.body_text(), expected, "{name} {target}");
        }
    }

    #[test]
    fn error_pages_are_kept_apart_by_status_root_and_message() {
        let keys = [
            error_page_key(404, "", "en", "Not Found"),
            error_page_key(404, "/blog", "en", "Not Found"),
            error_page_key(405, "", "en", "Not Found"),
            error_page_key(404, "", "nl", "Not Found"),
            error_page_key(404, "", "en", "There is no post at this address."),
            // a message that looks like a key's tail cannot collide
            error_page_key(404, "", "en", "/blog\nen\nNot Found"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
