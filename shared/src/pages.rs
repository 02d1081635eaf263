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

/// The error page handler for a router: every client error, and server
/// errors registered for it (`register_error_handler(500, ..)`), in the
/// site's layout and the visitor's language.
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

/// What a server error's page says instead of its message, which is for
/// the log (the SDK logs it): it may name files, queries or data.
pub(crate) const SERVER_ERROR: &str =
    "Something went wrong on our side and it has been noted. Try again in a moment.";

/// The page for an error, in the site's layout: a client error's message,
/// or for a server error (5xx) a sentence saying only that. Rendered once
/// per status, message, language and script root, then kept
/// (`Site::error_pages`): the page depends on nothing else (no session, so
/// no user, flashes or CSRF token), and a public site answers many 404s,
/// to scanners too; a kept page costs a copy instead of a render.
pub fn error_page(site: &Site, req: &Request, error: &Error) -> Response {
    let status = error.status();
    let lang = i18n::lang(req);
    let message = if status >= 500 {
        SERVER_ERROR
    } else {
        error.message()
    };
    let key = error_page_key(status, req.script_root(), lang, message);
    let page = site.error_pages.get_or_render(&key, || {
        let title = app_api::sdk::reason_phrase(status);
        let page = context! { status => status, title => title, message => message };
        site.render(req, Audience::Anyone, "error.html", page)
    });
    match page {
        Ok(html) => Response::html(html.to_string()).with_status(status),
        Err(render_error) => {
            tracing::error!("the error page failed: {render_error}");
            Response::from(Error::new(status, message))
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
    fn a_server_error_page_is_the_sites_and_keeps_the_message_for_the_log() {
        let build = |mount: &Mount| -> Result<Router, Error> {
            let site = Site::open(mount, app_api::templates!("templates"))?;
            Ok(crate::i18n::localise(
                Router::new()
                    .get("/<lang_code>/", "index", |_: &Request| {
                        Ok(Response::text(""))
                    })
                    .get("/<lang_code>/boom", "boom", |_: &Request| {
                        Err(Error::internal("the disk /srv/blog is full"))
                    })
                    .register(blueprint(&site), "/<lang_code>")
                    .register_error_handler(500, error_handler(&site)),
            ))
        };
        let client = TestClient::new(build, Mount::new("frontend", "/")).unwrap();
        for (path, said) in [
            ("/en/boom", "Something went wrong on our side"),
            ("/nl/boom", "Er ging bij ons iets mis"),
        ] {
            let page = client.get(path);
            assert_eq!(page.status(), 500);
            let html = page.body_text();
            assert!(html.contains("<footer class=\"site-footer\">"), "{html}");
            assert!(html.contains(said), "{html}");
            assert!(!html.contains("/srv/blog"), "{html}");
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
