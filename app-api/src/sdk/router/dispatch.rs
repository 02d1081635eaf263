//! One request's way through an app: match, before-request hooks, the
//! handler, error pages, after-request hooks, and the session saved.

use percent_encoding::utf8_percent_encode;

use super::{Hooks, Match, Router};
use crate::{
    abi::AppRequest,
    sdk::{Error, Mount, Request, Response, url::PATH},
};

impl Router {
    /// Answers one request. An error comes back only for a server error
    /// (5xx) the app has no page for: the host logs it and answers its
    /// generic page.
    pub(crate) fn dispatch(&self, mount: &Mount, raw: &AppRequest) -> Result<Response, Error> {
        let (req, outcome, route_hooks) = match self.find(&raw.method, &raw.path) {
            Match::Found(route, params) => {
                let req = Request::new(raw, mount, self, Some(route), params);
                let outcome = run(&req, &self.hooks, &route.hooks, route);
                (req, outcome, Some(&*route.hooks))
            }
            unmatched => {
                let req = Request::new(raw, mount, self, None, Vec::new());
                let outcome = unmatched_outcome(unmatched, raw);
                (req, outcome, None)
            }
        };
        let mut response = match outcome {
            Ok(response) => response,
            Err((error, allow)) => {
                let page = self.error_response(&req, error)?;
                match allow {
                    Some(allow) => page.with_header("allow", allow),
                    None => page,
                }
            }
        };
        for hook in route_hooks
            .into_iter()
            .flat_map(|hooks| hooks.after.iter().rev())
            .chain(self.hooks.after.iter().rev())
        {
            response = hook(&req, response);
        }
        Ok(req.save_session(response))
    }

    /// The page for an error: the app's for its status (or for every 4xx),
    /// else the SDK's plain one for a client error. A server error without
    /// a page comes back as the error.
    fn error_response(&self, req: &Request, error: Error) -> Result<Response, Error> {
        let status = error.status();
        match self.error_page(status) {
            Some(page) => {
                if status >= 500 {
                    // the page hides the message from the client: the log keeps it
                    tracing::error!(status, "{}", error.message());
                }
                Ok(page(req, &error))
            }
            None if (400..500).contains(&status) => Ok(Response::from(error)),
            None => Err(error),
        }
    }
}

/// What a handler, or a hook answering for it, made of a matched request;
/// an error comes with no `Allow` header.
type Outcome = Result<Response, (Error, Option<String>)>;

/// Runs the before-request hooks (the router's, then the blueprints',
/// outermost first), then the handler unless a hook answered.
fn run(req: &Request, router: &Hooks, blueprints: &Hooks, route: &super::Route) -> Outcome {
    let answer = || {
        for hook in router.before.iter().chain(&blueprints.before) {
            if let Some(response) = hook(req)? {
                return Ok(response);
            }
        }
        (route.handler)(req)
    };
    answer().map_err(|error| (error, None))
}

/// The answer when no route takes the request: `OPTIONS`, the
/// trailing-slash redirect, or a 404 or 405 to show as an error page.
fn unmatched_outcome(unmatched: Match<'_>, raw: &AppRequest) -> Outcome {
    match unmatched {
        Match::Found(..) => unreachable!("a found route runs its handler"),
        Match::MethodNotAllowed(allowed) => Err((
            Error::new(405, "The method is not allowed for the requested URL."),
            Some(allowed.join(", ")),
        )),
        Match::Options(allowed) => Ok(Response::text("").with_header("allow", allowed.join(", "))),
        Match::AddSlash => {
            // the path is decoded: `?` and `#` in it are the path's own
            let mut location: String = [raw.script_root.as_str(), &raw.path, "/"]
                .into_iter()
                .flat_map(|piece| utf8_percent_encode(piece, PATH))
                .collect();
            if !raw.query.is_empty() {
                location.push('?');
                location.push_str(&raw.query);
            }
            Ok(Response::redirect_with(308, &location))
        }
        Match::NotFound => Err((Error::not_found(), None)),
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::RVec;

    use super::*;
    use crate::sdk::{Routes, router::Router};

    /// The `Location` the router's trailing-slash redirect sends for a
    /// `GET` of the decoded `path` at the root mount.
    fn added_slash(path: &str, query: &str) -> String {
        let router = Router::new().get("/<name>/", "folder", |_: &Request| Ok(Response::text("")));
        let mount = Mount::new("site", "/");
        let request = AppRequest {
            method: "GET".into(),
            scheme: "http".into(),
            host: "localhost".into(),
            script_root: "".into(),
            path: path.into(),
            query: query.into(),
            headers: RVec::new(),
            body: RVec::new(),
            remote_addr: "127.0.0.1:1".into(),
            request_id: "1".into(),
            extensions: RVec::new(),
        };
        let response = router.dispatch(&mount, &request).unwrap();
        assert_eq!(response.status(), 308);
        response.header("location").unwrap().to_owned()
    }

    #[test]
    fn the_trailing_slash_redirect_never_leads_off_site() {
        for (path, query, location) in [
            ("/about", "", "/about/"),
            ("/about", "x=1", "/about/?x=1"),
            ("/\\evil.example", "", "/%5Cevil.example/"),
            ("/a b\"<>", "", "/a%20b%22%3C%3E/"),
            ("/what?#", "", "/what%3F%23/"),
        ] {
            assert_eq!(added_slash(path, query), location, "{path:?}");
        }
    }
}

#[cfg(test)]
mod hook_tests {
    use std::sync::{Arc, Mutex};

    use crate::sdk::{
        Blueprint, Error, Mount, Request, Response, Router, Routes, testing::TestClient,
    };

    /// Records the order things ran in, as `name` strings.
    type Log = Arc<Mutex<Vec<String>>>;

    fn noted(log: &Log, what: &str) {
        log.lock().unwrap().push(what.to_owned());
    }

    fn client(build: impl FnOnce(&Mount) -> Result<Router, Error>) -> TestClient {
        TestClient::new(build, Mount::new("site", "/site")).unwrap()
    }

    #[test]
    fn hooks_run_outside_in_and_after_hooks_inside_out() {
        let log: Log = Arc::default();
        let (a, b, c, d, e) = (
            Arc::clone(&log),
            Arc::clone(&log),
            Arc::clone(&log),
            Arc::clone(&log),
            Arc::clone(&log),
        );
        let blueprint = Blueprint::new("bp")
            .before_request(move |_: &Request| {
                noted(&a, "bp before");
                Ok(None)
            })
            .after_request(move |_: &Request, response: Response| {
                noted(&b, "bp after");
                response
            })
            .get("/x", "x", move |req: &Request| {
                noted(&c, "handler");
                Ok(Response::text(
                    req.endpoint().unwrap_or_default().to_owned(),
                ))
            });
        let client = client(move |_| {
            Ok(Router::new()
                .before_request(move |_: &Request| {
                    noted(&d, "router before");
                    Ok(None)
                })
                .after_request(move |_: &Request, response: Response| {
                    noted(&e, "router after");
                    response.with_header("x-everywhere", "yes")
                })
                .register(blueprint, "/<lang_code>"))
        });
        let response = client.get("/en/x");
        assert_eq!(response.body_text(), "bp.x");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "router before",
                "bp before",
                "handler",
                "bp after",
                "router after"
            ]
        );
        // the router's after hooks see its 404s and 405s too
        log.lock().unwrap().clear();
        let missing = client.get("/nowhere");
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.header("x-everywhere"), Some("yes"));
        assert_eq!(*log.lock().unwrap(), ["router after"]);
        let wrong = client.post_form("/en/x", &[]);
        assert_eq!(wrong.status(), 405);
        assert_eq!(wrong.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(wrong.header("x-everywhere"), Some("yes"));
    }

    #[test]
    fn a_before_hook_answers_instead_of_the_handler_and_only_for_its_blueprint() {
        let guarded = Blueprint::new("admin")
            .before_request(|req: &Request| match req.header("x-user") {
                Some(_) => Ok(None),
                None => Ok(Some(Response::redirect_with(303, "/login"))),
            })
            .get("/secret", "secret", |_: &Request| {
                Ok(Response::text("secret"))
            });
        let csrf = |req: &Request| -> Result<Option<Response>, Error> {
            if req.method() == "POST" {
                req.session().verify_csrf(req.form().get("csrf_token"))?;
            }
            Ok(None)
        };
        let client = client(move |_| {
            Ok(Router::new()
                .before_request(csrf)
                .get("/open", "open", |_: &Request| Ok(Response::text("open")))
                .post("/open", "open_post", |_: &Request| {
                    Ok(Response::text("posted"))
                })
                .register(guarded, ""))
        });
        assert_eq!(client.get("/open").body_text(), "open");
        let refused = client.get("/secret");
        assert_eq!(refused.status(), 303);
        assert_eq!(refused.header("location"), Some("/login"));
        let allowed = client.request("GET", "/secret", &[("x-user", "ann")], b"");
        assert_eq!(allowed.body_text(), "secret");
        // the router's CSRF hook covers every unsafe method
        let forged = client.post_form("/open", &[("csrf_token", "forged")]);
        assert_eq!(forged.status(), 400);
        assert!(forged.body_text().contains("CSRF"));
    }

    #[test]
    fn url_for_fills_prefix_parameters_from_the_request_and_given_ones_win() {
        let pages = Blueprint::new("pages").get("/about", "about", |req: &Request| {
            let same = req.url_for("pages.about", &[])?;
            let other = req.url_for("pages.about", &[("lang_code", "nl")])?;
            let outside = req.url_for("index", &[("lang_code", "de")])?;
            Ok(Response::text(format!("{same} {other} {outside}")))
        });
        let client = client(move |_| {
            Ok(Router::new()
                .get("/", "index", |_: &Request| Ok(Response::text("")))
                .register(pages, "/<lang_code>"))
        });
        // a parameter the target rule lacks goes to the query, as ever
        assert_eq!(
            client.get("/en/about").body_text(),
            "/site/en/about /site/nl/about /site/?lang_code=de"
        );
    }

    #[test]
    fn typed_parameters_match_canonical_numbers_only() {
        let client = client(|_| {
            Ok(Router::new()
                .get("/post/<int:id>", "post", |req: &Request| {
                    let id: i64 = req.param("id")?;
                    Ok(Response::text(format!("post {id}")))
                })
                .get("/small/<n>", "small", |req: &Request| {
                    let n: u8 = req.param("n")?;
                    Ok(Response::text(format!("{n}")))
                })
                .get("/typo/<n>", "typo", |req: &Request| {
                    let n: u8 = req.param("m")?;
                    Ok(Response::text(format!("{n}")))
                }))
        });
        assert_eq!(client.get("/post/42").body_text(), "post 42");
        for path in [
            "/post/042",
            "/post/-1",
            "/post/9223372036854775808",
            "/small/300",
        ] {
            assert_eq!(client.get(path).status(), 404, "{path}");
        }
        assert_eq!(client.get("/small/7").body_text(), "7");
        // a name the rule lacks is the app's mistake: a 500 naming it
        let typo = client.get("/typo/1");
        assert_eq!(typo.status(), 500);
    }

    #[test]
    fn typed_bodies_and_queries_name_the_field_that_is_wrong() {
        #[derive(serde::Deserialize)]
        struct Item {
            name: String,
            tags: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        struct Paging {
            page: u32,
        }
        let client = client(|_| {
            Ok(Router::new()
                .post("/items", "items", |req: &Request| {
                    let items: Vec<Item> = req.json()?;
                    let tags: usize = items.iter().map(|item| item.tags.len()).sum();
                    Ok(Response::json(&serde_json::json!({
                        "first": items.first().map(|item| item.name.clone()),
                        "tags": tags,
                    })))
                })
                .get("/list", "list", |req: &Request| {
                    let paging: Paging = req.query_as()?;
                    Ok(Response::text(format!("page {}", paging.page)))
                }))
        });
        let ok = client.post_json(
            "/items",
            &serde_json::json!([{"name": "a", "tags": ["x", "y"]}, {"name": "b", "tags": []}]),
        );
        assert_eq!(ok.body_text(), r#"{"first":"a","tags":2}"#);
        let wrong = client.post_json("/items", &serde_json::json!([{"name": "a", "tags": [1]}]));
        assert_eq!(wrong.status(), 400);
        assert!(
            wrong.body_text().contains("[0].tags[0]"),
            "{}",
            wrong.body_text()
        );
        let not_json = client.post_form("/items", &[("name", "a")]);
        assert_eq!(not_json.status(), 415);
        assert_eq!(client.get("/list?page=3").body_text(), "page 3");
        let bad = client.get("/list?page=x");
        assert_eq!(bad.status(), 400);
        assert!(bad.body_text().contains("\"page\""), "{}", bad.body_text());
        let missing = client.get("/list");
        assert_eq!(missing.status(), 400);
        assert!(
            missing.body_text().contains("page"),
            "{}",
            missing.body_text()
        );
    }

    #[test]
    fn a_changed_session_is_saved_whatever_the_handler_returns() {
        let client = client(|_| {
            Ok(Router::new()
                .get("/remember", "remember", |req: &Request| {
                    req.session().insert("name", "ann");
                    // an error page still carries the change
                    Err(Error::not_found())
                })
                .get("/name", "name", |req: &Request| {
                    Ok(Response::text(
                        req.session().get::<String>("name").unwrap_or_default(),
                    ))
                })
                .get("/plain", "plain", |_: &Request| Ok(Response::text("plain"))))
        });
        let remembered = client.get("/remember");
        assert_eq!(remembered.status(), 404);
        assert!(remembered.header("set-cookie").is_some());
        assert_eq!(remembered.header("vary"), Some("Cookie"));
        let read = client.get("/name");
        assert_eq!(read.body_text(), "ann");
        // read, not changed: no new cookie, but caches must vary on it
        assert_eq!(read.header("set-cookie"), None);
        assert_eq!(read.header("vary"), Some("Cookie"));
        let plain = client.get("/plain");
        assert_eq!(plain.header("vary"), None);
    }

    #[test]
    fn error_pages_are_chosen_by_status_then_for_every_client_error() {
        let client = client(|_| {
            Ok(Router::new()
                .get("/gone", "gone", |_: &Request| Err(Error::gone("It left.")))
                .get("/broken", "broken", |_: &Request| {
                    Err(Error::internal("disk full"))
                })
                .get("/busy", "busy", |_: &Request| {
                    Err(Error::unavailable("later"))
                })
                .error_handler(|_: &Request, error: &Error| {
                    Response::text(format!("client page: {}", error.message()))
                        .with_status(error.status())
                })
                .register_error_handler(404, |req: &Request, _: &Error| {
                    Response::text(format!("no {}", req.path())).with_status(404)
                })
                .register_error_handler(500, |_: &Request, _: &Error| {
                    Response::text("sorry").with_status(500)
                }))
        });
        assert_eq!(client.get("/nowhere").body_text(), "no /nowhere");
        assert_eq!(client.get("/gone").body_text(), "client page: It left.");
        let broken = client.get("/broken");
        assert_eq!(
            (broken.status(), broken.body_text().as_str()),
            (500, "sorry")
        );
        // no page for 503: the host's own answer (the test client's plain one)
        let busy = client.get("/busy");
        assert_eq!(busy.status(), 503);
        assert!(!busy.body_text().contains("later"));
    }
}

#[cfg(test)]
mod param_value_tests {
    use crate::sdk::{Blueprint, Mount, Request, Response, Router, Routes, testing::TestClient};

    #[test]
    fn restricted_parameters_match_their_values_only() {
        let client = TestClient::new(
            |_: &Mount| {
                Ok(Router::new()
                    .get("/<lang_code>/", "index", |req: &Request| {
                        Ok(Response::text(req.param::<String>("lang_code")?))
                    })
                    .register(
                        Blueprint::new("pages")
                            .get("/about", "about", |_: &Request| Ok(Response::text("about"))),
                        "/<lang_code>",
                    )
                    .param_values("lang_code", &["en", "nl"]))
            },
            Mount::new("blog", "/"),
        )
        .unwrap();
        assert_eq!(client.get("/nl/").body_text(), "nl");
        assert_eq!(client.get("/en/about").body_text(), "about");
        assert_eq!(client.get("/de/about").status(), 404);
        assert_eq!(client.get("/de/").status(), 404);
        // a language without its slash is redirected; anything else is 404
        assert_eq!(client.get("/en").status(), 308);
        assert_eq!(client.get("/favicon.ico").status(), 404);
    }
}
