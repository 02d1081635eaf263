//! An app's routes (Werkzeug's `Map`, in small), the blueprints they come
//! from, the hooks around handlers, and error pages.
//!
//! [`rule`] holds the pure rule logic; this module matches a request to a
//! route and builds URLs; [`dispatch`] runs a matched request through its
//! hooks, handler and error pages.

mod blueprint;
mod dispatch;
mod rule;

use std::sync::{Arc, OnceLock};

pub use blueprint::Blueprint;
pub(crate) use rule::split_segment;
pub use rule::{Rule, RuleError};

use super::{Error, Request, Response};

/// What a handler returns.
pub type HandlerResult = Result<Response, Error>;

/// A request handler.
pub type Handler = Arc<dyn Fn(&Request) -> HandlerResult + Send + Sync>;

/// Turns an error into the page to show (Flask's `errorhandler`).
pub type ErrorHandler = Arc<dyn Fn(&Request, &Error) -> Response + Send + Sync>;

/// Runs before a handler (Flask's `before_request`): `Ok(None)` lets the
/// request go on, `Ok(Some(response))` answers instead of the handler, an
/// error answers with its error page.
pub type BeforeRequest = Arc<dyn Fn(&Request) -> Result<Option<Response>, Error> + Send + Sync>;

/// Runs on a response before it leaves (Flask's `after_request`): may
/// change it or replace it.
pub type AfterRequest = Arc<dyn Fn(&Request, Response) -> Response + Send + Sync>;

/// Gives a value for a URL parameter from the current request (see
/// [`Router::url_default`]).
pub type UrlDefault = Arc<dyn Fn(&Request) -> Option<String> + Send + Sync>;

/// The hooks of one router or blueprint.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    before: Vec<BeforeRequest>,
    after: Vec<AfterRequest>,
}

impl Hooks {
    /// These hooks, then `inner`'s: a blueprint's inside its parent's.
    fn then(&self, inner: &Hooks) -> Hooks {
        Hooks {
            before: self.before.iter().chain(&inner.before).cloned().collect(),
            after: self.after.iter().chain(&inner.after).cloned().collect(),
        }
    }
}

/// Adding routes and hooks, the same on a [`Router`] and a [`Blueprint`].
///
/// Each route method takes the rule, the endpoint name (what
/// [`url_for`](Request::url_for) asks for) and the handler. `HEAD` is
/// implied by `GET`. A bad rule or a duplicate endpoint makes the app's
/// initialisation fail with its reason.
///
/// ```
/// use app_api::{prelude::*, sdk::testing::TestClient};
///
/// // a REST resource, with a login check before its handlers and a
/// // header after them
/// let notes = Blueprint::new("notes")
///     .before_request(|req: &Request| match req.header("authorization") {
///         Some("Bearer letmein") => Ok(None),
///         _ => Err(Error::unauthorized("Say who you are.")),
///     })
///     .get("/<int:id>", "show", |req: &Request| {
///         let id: i64 = req.param("id")?;
///         Ok(Response::json(&serde_json::json!({ "id": id })))
///     })
///     .put("/<int:id>", "replace", |_: &Request| Ok(Response::text("replaced")))
///     .patch("/<int:id>", "change", |_: &Request| Ok(Response::text("changed")))
///     .delete("/<int:id>", "remove", |_: &Request| {
///         Ok(Response::text("").with_status(StatusCode::NO_CONTENT))
///     });
/// let build = |_: &Mount| -> Result<Router, Error> {
///     Ok(Router::new()
///         .register(notes, "/notes")
///         .after_request(|_: &Request, response: Response| {
///             response.with_header("x-served-by", "notes")
///         }))
/// };
/// let client = TestClient::new(build, Mount::new("api", "/api")).unwrap();
/// let auth = [("authorization", "Bearer letmein")];
/// let shown = client.request("GET", "/notes/7", &auth, b"");
/// assert_eq!(shown.body_text(), r#"{"id":7}"#);
/// assert_eq!(shown.header("x-served-by"), Some("notes"));
/// assert_eq!(client.request("DELETE", "/notes/7", &auth, b"").status(), 204);
/// assert_eq!(client.request("PATCH", "/notes/7", &auth, b"").body_text(), "changed");
/// // the hook answered: no handler ran
/// assert_eq!(client.get("/notes/7").status(), 401);
/// // `/notes/07` is no URL of note 7
/// assert_eq!(client.request("GET", "/notes/07", &auth, b"").status(), 404);
/// ```
pub trait Routes: Sized {
    /// Adds a route for `methods`.
    fn route<F>(self, methods: &[&str], rule: &str, endpoint: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static;

    /// Adds a `GET` (and `HEAD`) route.
    fn get<F>(self, rule: &str, endpoint: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["GET"], rule, endpoint, handler)
    }

    /// Adds a `POST` route.
    fn post<F>(self, rule: &str, endpoint: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["POST"], rule, endpoint, handler)
    }

    /// Adds a `PUT` route.
    fn put<F>(self, rule: &str, endpoint: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["PUT"], rule, endpoint, handler)
    }

    /// Adds a `PATCH` route.
    fn patch<F>(self, rule: &str, endpoint: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["PATCH"], rule, endpoint, handler)
    }

    /// Adds a `DELETE` route.
    fn delete<F>(self, rule: &str, endpoint: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["DELETE"], rule, endpoint, handler)
    }

    /// Adds a hook that runs before every handler of this router or
    /// blueprint, in the order added (a router's before a blueprint's):
    /// return `Ok(Some(response))` to answer instead, e.g. a redirect to
    /// the login page, or an error such as the CSRF check's 400.
    fn before_request<F>(self, hook: F) -> Self
    where
        F: Fn(&Request) -> Result<Option<Response>, Error> + Send + Sync + 'static;

    /// Adds a hook that gets every response of this router's (or this
    /// blueprint's) routes before it leaves, error pages included;
    /// a router's also gets its 404s and 405s. The last added runs first,
    /// a blueprint's before its router's (as in Flask).
    fn after_request<F>(self, hook: F) -> Self
    where
        F: Fn(&Request, Response) -> Response + Send + Sync + 'static;
}

/// Methods as the router keeps them: upper case, `HEAD` with `GET`.
fn normalise_methods(methods: &[&str]) -> Vec<String> {
    let mut methods: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
        methods.push("HEAD".to_owned());
    }
    methods
}

/// One route as the router keeps it.
pub(crate) struct Route {
    methods: Vec<String>,
    rule: Rule,
    endpoint: String,
    handler: Handler,
    /// How many of the rule's parameters (the first ones) come from the
    /// prefixes of the blueprints it was registered through: `url_for`
    /// fills them in from the current request.
    prefix_params: usize,
    /// The hooks of those blueprints, outermost first.
    hooks: Arc<Hooks>,
}

impl Route {
    /// The endpoint, e.g. `auth.login`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The rule as written after its prefixes, e.g. `/<lang_code>/login`.
    pub(crate) fn rule(&self) -> &str {
        self.rule.as_str()
    }

    /// How many of the matched parameters come from blueprint prefixes.
    pub(crate) fn prefix_params(&self) -> usize {
        self.prefix_params
    }
}

/// The outcome of matching a request against the routes.
pub(crate) enum Match<'r> {
    /// A route answers: the route and the path parameters.
    Found(&'r Route, Vec<(String, String)>),
    /// The path exists, but not for this method; the allowed methods.
    MethodNotAllowed(Vec<String>),
    /// `OPTIONS` on an existing path; the allowed methods.
    Options(Vec<String>),
    /// The path exists with a trailing slash (Werkzeug's strict slashes).
    AddSlash,
    /// Nothing matches.
    NotFound,
}

/// An app's routes: rules, their methods, endpoints and handlers, the
/// blueprints registered on it, its hooks and its error pages.
///
/// ```
/// use app_api::prelude::*;
/// let router = Router::new()
///     .get("/", "index", |_req: &Request| Ok(Response::text("home")))
///     .get("/post/<slug>", "post", |req: &Request| {
///         let slug: &str = req.param("slug")?;
///         Ok(Response::text(slug.to_owned()))
///     })
///     .route(&["GET", "POST"], "/login", "login", |_req: &Request| Ok(Response::text("login")));
/// assert_eq!(router.url_for("post", &[("slug", "a b")]).unwrap(), "/post/a%20b");
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    errors: Vec<RuleError>,
    hooks: Hooks,
    /// The page for every client error (4xx) without a page of its own.
    client_error_page: Option<ErrorHandler>,
    /// Pages for one status each.
    error_pages: Vec<(u16, ErrorHandler)>,
    /// Values for URL parameters a request does not have (Flask's
    /// `url_defaults`).
    url_defaults: Vec<(String, UrlDefault)>,
    /// The only values some parameters match, by name.
    param_values: Vec<(String, Vec<String>)>,
    url_map: OnceLock<Arc<UrlMap>>,
    index: OnceLock<Index>,
}

/// Which routes can match a path, by the path's first segment: a request
/// tries only those, in the order they were added, instead of every rule.
#[derive(Debug, Default)]
struct Index {
    /// Routes whose rule starts with a literal segment, by that segment
    /// (sorted for binary search; route positions ascending).
    by_first: Vec<(String, Vec<usize>)>,
    /// Routes whose rule starts with a parameter, or is `/`.
    others: Vec<usize>,
}

impl Index {
    fn new(routes: &[Route]) -> Index {
        let mut index = Index::default();
        for (position, route) in routes.iter().enumerate() {
            let Some(first) = route.rule.first_literal() else {
                index.others.push(position);
                continue;
            };
            match index
                .by_first
                .binary_search_by(|(literal, _)| literal.as_str().cmp(first))
            {
                Ok(at) => index.by_first[at].1.push(position),
                Err(at) => index
                    .by_first
                    .insert(at, (first.to_owned(), vec![position])),
            }
        }
        index
    }

    /// The positions of the routes that can match `path`, ascending.
    fn candidates(&self, path: &str) -> impl Iterator<Item = usize> {
        let body = path.strip_prefix('/').unwrap_or(path);
        let first = split_segment(body).map_or(body, |(first, _)| first);
        let mut literal: &[usize] = self
            .by_first
            .binary_search_by(|(key, _)| key.as_str().cmp(first))
            .map_or(&[], |at| &self.by_first[at].1);
        let mut others: &[usize] = &self.others;
        // both lists ascend: merge them
        std::iter::from_fn(
            move || match (literal.split_first(), others.split_first()) {
                (Some((&a, rest)), Some((&b, _))) if a < b => {
                    literal = rest;
                    Some(a)
                }
                (Some((&a, rest)), None) => {
                    literal = rest;
                    Some(a)
                }
                (_, Some((&b, rest))) => {
                    others = rest;
                    Some(b)
                }
                (None, None) => None,
            },
        )
    }
}

/// The endpoints and their rules, for building URLs.
#[derive(Debug, Default)]
pub(crate) struct UrlMap {
    rules: Vec<(String, Rule)>,
}

impl UrlMap {
    /// `root` followed by the path for `endpoint`, built in one string:
    /// templates call this a few times per card of a listing. A parameter
    /// missing from `params` is taken from `defaults` (the current
    /// request's prefix parameters).
    fn url_for(
        &self,
        root: &str,
        endpoint: &str,
        params: &[(&str, &str)],
        defaults: &[(String, String)],
    ) -> Result<String, Error> {
        let (_, rule) = self
            .rules
            .iter()
            .find(|(name, _)| name == endpoint)
            .ok_or_else(|| Error::internal(format!("url_for: no endpoint named {endpoint:?}")))?;
        let mut url = String::with_capacity(root.len() + rule.as_str().len() + 16);
        url.push_str(root);
        let extra = rule
            .build_into(&mut url, params, defaults)
            .map_err(|reason| Error::internal(format!("url_for({endpoint:?}): {reason}")))?;
        if !extra.is_empty() {
            url.push('?');
            let query_starts = url.len();
            url = form_urlencoded::Serializer::for_suffix(url, query_starts)
                .extend_pairs(extra)
                .finish();
        }
        Ok(url)
    }
}

/// An owned URL builder for one request's mount (see
/// [`Request::urls`]): what templates use for `url_for` and `static_url`.
#[derive(Debug, Clone)]
pub struct Urls {
    map: Arc<UrlMap>,
    script_root: String,
    static_url_path: String,
    uploads_url_path: String,
    defaults: Vec<(String, String)>,
}

impl Urls {
    pub(crate) fn new(
        map: Arc<UrlMap>,
        script_root: &str,
        static_url_path: &str,
        uploads_url_path: &str,
        defaults: Vec<(String, String)>,
    ) -> Urls {
        Urls {
            map,
            script_root: script_root.to_owned(),
            static_url_path: static_url_path.to_owned(),
            uploads_url_path: uploads_url_path.to_owned(),
            defaults,
        }
    }

    /// Like [`Request::url_for`].
    pub fn url_for(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.map
            .url_for(&self.script_root, endpoint, params, &self.defaults)
    }

    /// Like [`Request::static_url`].
    pub fn static_url(&self, file: &str) -> String {
        super::request::file_url(&self.script_root, &self.static_url_path, file)
    }

    /// Like [`Request::upload_url`].
    pub fn upload_url(&self, name: &str) -> String {
        super::request::file_url(&self.script_root, &self.uploads_url_path, name)
    }
}

impl Routes for Router {
    fn route<F>(mut self, methods: &[&str], rule: &str, endpoint: &str, handler: F) -> Router
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        let route = blueprint::Pending {
            methods: normalise_methods(methods),
            rule: rule.to_owned(),
            endpoint: endpoint.to_owned(),
            handler: Arc::new(handler),
        };
        self.add(route, 0, &Arc::default());
        self
    }

    fn before_request<F>(mut self, hook: F) -> Router
    where
        F: Fn(&Request) -> Result<Option<Response>, Error> + Send + Sync + 'static,
    {
        self.hooks.before.push(Arc::new(hook));
        self
    }

    fn after_request<F>(mut self, hook: F) -> Router
    where
        F: Fn(&Request, Response) -> Response + Send + Sync + 'static,
    {
        self.hooks.after.push(Arc::new(hook));
        self
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route whose rule and endpoint are final.
    fn add(&mut self, route: blueprint::Pending, prefix_params: usize, hooks: &Arc<Hooks>) {
        let rule = match Rule::parse(&route.rule) {
            Ok(rule) => rule,
            Err(error) => {
                self.errors.push(error);
                return;
            }
        };
        if self
            .routes
            .iter()
            .any(|known| known.endpoint == route.endpoint)
        {
            self.errors.push(RuleError {
                rule: route.rule,
                reason: format!(
                    "endpoint {:?} is already used by another rule",
                    route.endpoint
                ),
            });
            return;
        }
        self.routes.push(Route {
            methods: route.methods,
            rule,
            endpoint: route.endpoint,
            handler: route.handler,
            prefix_params,
            hooks: Arc::clone(hooks),
        });
        // built from the routes on first use: a new route makes them anew
        self.url_map = OnceLock::new();
        self.index = OnceLock::new();
    }

    /// Registers a blueprint's routes under `prefix` (Flask's
    /// `register_blueprint(bp, url_prefix=...)`): `""` for none, else a
    /// path such as `/<lang_code>`, which may hold parameters like any
    /// rule. Endpoints are named `blueprint.endpoint` (`auth.login`), and
    /// `url_for` fills the prefix's parameters from the current request
    /// unless given.
    ///
    /// ```
    /// use app_api::prelude::*;
    /// let auth = Blueprint::new("auth")
    ///     .get("/login", "login", |req: &Request| {
    ///         let lang: &str = req.param("lang_code")?;
    ///         Ok(Response::text(format!("{lang} {}", req.url_for("auth.login", &[])?)))
    ///     });
    /// let router = Router::new().register(auth, "/<lang_code>");
    /// assert_eq!(
    ///     router.url_for("auth.login", &[("lang_code", "nl")]).unwrap(),
    ///     "/nl/login"
    /// );
    /// ```
    pub fn register(mut self, blueprint: Blueprint, prefix: &str) -> Router {
        let mut pending = Vec::new();
        let outer = Hooks::default();
        if let Err(error) = blueprint.flatten(prefix, "", &outer, &mut pending) {
            self.errors.push(error);
        }
        for (route, prefix_params, hooks) in pending {
            self.add(route, prefix_params, &hooks);
        }
        self
    }

    /// Gives `url_for` a value for the parameter `name` when neither the
    /// call nor the current request's prefix has one (Flask's
    /// `url_defaults`): e.g. the visitor's language for `<lang_code>` on a
    /// page outside the `/<lang_code>` blueprints.
    ///
    /// ```
    /// use app_api::{prelude::*, sdk::testing::TestClient};
    /// let pages = Blueprint::new("pages").get("/about", "about", |_: &Request| Ok(Response::text("")));
    /// let build = |_: &Mount| -> Result<Router, Error> {
    ///     Ok(Router::new()
    ///         .register(pages, "/<lang_code>")
    ///         .get("/", "index", |req: &Request| Ok(Response::text(req.url_for("pages.about", &[])?)))
    ///         .url_default("lang_code", |req: &Request| {
    ///             Some(req.header("x-lang").unwrap_or("en").to_owned())
    ///         }))
    /// };
    /// let client = TestClient::new(build, Mount::new("blog", "/")).unwrap();
    /// assert_eq!(client.get("/").body_text(), "/en/about");
    /// assert_eq!(client.request("GET", "/", &[("x-lang", "nl")], b"").body_text(), "/nl/about");
    /// ```
    pub fn url_default<F>(mut self, name: &str, value: F) -> Router
    where
        F: Fn(&Request) -> Option<String> + Send + Sync + 'static,
    {
        self.url_defaults.push((name.to_owned(), Arc::new(value)));
        self
    }

    /// Lets a parameter called `name`, in every rule, match only one of
    /// `values` (Werkzeug's `any` converter, by name): with
    /// `param_values("lang_code", &["en", "nl"])`, `/<lang_code>/about`
    /// matches `/nl/about` but not `/de/about` (a 404), and `/favicon.ico`
    /// is never taken for a language missing its trailing slash.
    ///
    /// ```
    /// use app_api::{prelude::*, sdk::testing::TestClient};
    /// let build = |_: &Mount| -> Result<Router, Error> {
    ///     Ok(Router::new()
    ///         .get("/<lang_code>/", "index", |req: &Request| {
    ///             Ok(Response::text(req.param::<String>("lang_code")?))
    ///         })
    ///         .param_values("lang_code", &["en", "nl"]))
    /// };
    /// let client = TestClient::new(build, Mount::new("blog", "/")).unwrap();
    /// assert_eq!(client.get("/nl/").body_text(), "nl");
    /// assert_eq!(client.get("/de/").status(), 404);
    /// assert_eq!(client.get("/favicon.ico").status(), 404);
    /// ```
    pub fn param_values(mut self, name: &str, values: &[&str]) -> Router {
        self.param_values.retain(|(known, _)| known != name);
        self.param_values.push((
            name.to_owned(),
            values.iter().map(|value| (*value).to_owned()).collect(),
        ));
        self
    }

    /// Whether matched `params` hold only allowed values.
    fn allowed(&self, params: &[(String, String)]) -> bool {
        self.param_values.iter().all(|(name, values)| {
            params
                .iter()
                .filter(|(key, _)| key == name)
                .all(|(_, value)| values.iter().any(|allowed| allowed == value))
        })
    }

    /// The rule's parameters for `path`, if it matches with allowed values.
    fn matches(&self, rule: &Rule, path: &str) -> Option<Vec<(String, String)>> {
        rule.matches(path).filter(|params| self.allowed(params))
    }

    /// The `url_default` functions, by parameter name.
    pub(crate) fn url_default_functions(&self) -> &[(String, UrlDefault)] {
        &self.url_defaults
    }

    /// Sets the page shown for every client error (4xx) without a page of
    /// its own: unknown URLs, wrong methods and the errors handlers and
    /// hooks return. Server errors (5xx) stay the host's (logged, and
    /// answered with a generic page) unless a page is registered for their
    /// status with [`register_error_handler`](Router::register_error_handler).
    pub fn error_handler<F>(mut self, handler: F) -> Router
    where
        F: Fn(&Request, &Error) -> Response + Send + Sync + 'static,
    {
        self.client_error_page = Some(Arc::new(handler));
        self
    }

    /// Sets the page for one status, 4xx or 5xx (Flask's
    /// `register_error_handler(500, ...)`). A server error's message is
    /// still logged under the app's logger; the page is what the client
    /// sees.
    ///
    /// ```
    /// use app_api::{prelude::*, sdk::testing::TestClient};
    /// let build = |_: &Mount| -> Result<Router, Error> {
    ///     Ok(Router::new()
    ///         .get("/", "index", |_: &Request| Err(Error::internal("the disk is full")))
    ///         .register_error_handler(500, |_: &Request, _: &Error| {
    ///             Response::html("<h1>Sorry</h1>").with_status(StatusCode::INTERNAL_SERVER_ERROR)
    ///         }))
    /// };
    /// let client = TestClient::new(build, Mount::new("blog", "/")).unwrap();
    /// let response = client.get("/");
    /// assert_eq!(response.status(), 500);
    /// assert_eq!(response.body_text(), "<h1>Sorry</h1>");
    /// ```
    pub fn register_error_handler<F>(mut self, status: impl super::IntoStatus, handler: F) -> Router
    where
        F: Fn(&Request, &Error) -> Response + Send + Sync + 'static,
    {
        let status = status.into_status();
        self.error_pages.retain(|(known, _)| *known != status);
        self.error_pages.push((status, Arc::new(handler)));
        self
    }

    /// The page for an error of `status`, if the app has one.
    pub(crate) fn error_page(&self, status: u16) -> Option<&ErrorHandler> {
        self.error_pages
            .iter()
            .find(|(known, _)| *known == status)
            .map(|(_, page)| page)
            .or_else(|| {
                (400..500)
                    .contains(&status)
                    .then_some(self.client_error_page.as_ref())
                    .flatten()
            })
    }

    /// The rule mistakes collected while building, if any.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.errors.as_slice() {
            [] => Ok(()),
            errors => Err(Error::internal(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// `(methods, rule, endpoint)` for every route, in order.
    pub fn routes(&self) -> impl Iterator<Item = (String, &str, &str)> {
        self.routes.iter().map(|route| {
            (
                route.methods.join(","),
                route.rule.as_str(),
                route.endpoint.as_str(),
            )
        })
    }

    /// Finds what answers `method` on the decoded `path`.
    pub(crate) fn find(&self, method: &str, path: &str) -> Match<'_> {
        let mut allowed: Vec<String> = Vec::new();
        let index = self.index.get_or_init(|| Index::new(&self.routes));
        for route in index
            .candidates(path)
            .map(|position| &self.routes[position])
        {
            if let Some(params) = self.matches(&route.rule, path) {
                if route.methods.iter().any(|m| m == method) {
                    return Match::Found(route, params);
                }
                for m in &route.methods {
                    if !allowed.contains(m) {
                        allowed.push(m.clone());
                    }
                }
            }
        }
        if !allowed.is_empty() {
            allowed.push("OPTIONS".to_owned());
            return if method == "OPTIONS" {
                Match::Options(allowed)
            } else {
                Match::MethodNotAllowed(allowed)
            };
        }
        if !path.ends_with('/') {
            let with_slash = format!("{path}/");
            if self
                .routes
                .iter()
                .any(|r| self.matches(&r.rule, &with_slash).is_some())
            {
                return Match::AddSlash;
            }
        }
        Match::NotFound
    }

    /// The path (relative to the mount) for `endpoint`, parameters that the
    /// rule does not use going into the query string, as Flask's `url_for`.
    /// [`Request::url_for`] adds the mount prefix.
    pub fn url_for(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.url_map().url_for("", endpoint, params, &[])
    }

    /// Like [`url_for`](Router::url_for), after `root`, with `defaults` for
    /// the parameters not given.
    pub(crate) fn url_for_under(
        &self,
        root: &str,
        endpoint: &str,
        params: &[(&str, &str)],
        defaults: &[(String, String)],
    ) -> Result<String, Error> {
        self.url_map().url_for(root, endpoint, params, defaults)
    }

    /// The rules by endpoint, built once.
    pub(crate) fn url_map(&self) -> &Arc<UrlMap> {
        self.url_map.get_or_init(|| {
            Arc::new(UrlMap {
                rules: self
                    .routes
                    .iter()
                    .map(|route| (route.endpoint.clone(), route.rule.clone()))
                    .collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_encodes_parameters_and_puts_extras_in_the_query() {
        let router = Router::new()
            .get("/", "index", |_| Ok(Response::text("")))
            .get("/post/<slug>", "post", |_| Ok(Response::text("")))
            .get("/files/<path:rest>", "files", |_| Ok(Response::text("")))
            .get("/dir/", "dir", |_| Ok(Response::text("")));
        assert_eq!(router.url_for("index", &[]).unwrap(), "/");
        assert_eq!(
            router.url_for("post", &[("slug", "a/b c")]).unwrap(),
            "/post/a%2Fb%20c"
        );
        assert_eq!(
            router
                .url_for("post", &[("slug", "x"), ("page", "2")])
                .unwrap(),
            "/post/x?page=2"
        );
        assert_eq!(
            router.url_for("files", &[("rest", "a/b")]).unwrap(),
            "/files/a/b"
        );
        assert_eq!(router.url_for("dir", &[]).unwrap(), "/dir/");
        assert_eq!(
            router
                .url_for_under(
                    "/admin",
                    "post",
                    &[("page", "2"), ("slug", "x"), ("q", "a b")],
                    &[]
                )
                .unwrap(),
            "/admin/post/x?page=2&q=a+b"
        );
        assert_eq!(
            router.url_for_under("/admin", "index", &[], &[]).unwrap(),
            "/admin/"
        );
        assert!(router.url_for("post", &[]).is_err());
        assert!(router.url_for("nope", &[]).is_err());
    }

    #[test]
    fn find_tells_404_405_options_and_missing_slash_apart() {
        let router = Router::new()
            .get("/a", "a", |_| Ok(Response::text("")))
            .post("/a", "a_post", |_| Ok(Response::text("")))
            .get("/dir/", "dir", |_| Ok(Response::text("")));
        assert!(matches!(router.find("GET", "/a"), Match::Found(..)));
        assert!(matches!(router.find("HEAD", "/a"), Match::Found(..)));
        assert!(matches!(router.find("POST", "/a"), Match::Found(..)));
        match router.find("DELETE", "/a") {
            Match::MethodNotAllowed(allowed) => {
                assert_eq!(allowed, ["GET", "HEAD", "POST", "OPTIONS"])
            }
            _ => panic!("expected 405"),
        }
        assert!(matches!(router.find("OPTIONS", "/a"), Match::Options(_)));
        assert!(matches!(router.find("GET", "/dir"), Match::AddSlash));
        assert!(matches!(router.find("GET", "/missing"), Match::NotFound));
    }

    #[test]
    fn the_index_finds_what_trying_every_rule_in_order_finds() {
        let ok = |_: &Request| Ok(Response::text(""));
        let router = Router::new()
            .get("/", "index", ok)
            .get("/<page>", "page", ok)
            .get("/post/<slug>", "post", ok)
            .get("/<path:rest>", "catch_all", ok)
            .post("/post/<slug>", "post_edit", ok)
            .get("/post/<int:id>/raw", "raw", ok)
            .get("/about/", "about", ok)
            .get("/about/team", "team", ok)
            .route(&["DELETE"], "/posts/<int:id>", "delete", ok)
            .get("/hello", "hello", ok);
        let paths = [
            "/",
            "/hello",
            "/hello/",
            "/about",
            "/about/",
            "/about/team",
            "/post",
            "/post/a",
            "/post/1/raw",
            "/posts/1",
            "/posts/x",
            "/x/y/z",
            "//",
            "/p%2Fq",
        ];
        for path in paths {
            for method in ["GET", "POST", "DELETE", "PUT"] {
                // the reference: every rule, in order
                let mut allowed: Vec<&str> = Vec::new();
                let mut expected = None;
                for route in &router.routes {
                    if route.rule.matches(path).is_some() {
                        if route.methods.iter().any(|m| m == method) {
                            expected = Some(&route.handler);
                            break;
                        }
                        allowed.extend(route.methods.iter().map(String::as_str));
                    }
                }
                match (router.find(method, path), expected) {
                    (Match::Found(route, _), Some(expected)) => {
                        assert!(Arc::ptr_eq(&route.handler, expected), "{method} {path}")
                    }
                    (Match::MethodNotAllowed(found), None) => {
                        assert!(!allowed.is_empty(), "{method} {path}");
                        assert!(allowed.iter().all(|m| found.iter().any(|f| f == m)));
                    }
                    (Match::AddSlash | Match::NotFound, None) => {
                        assert!(allowed.is_empty(), "{method} {path}")
                    }
                    _ => panic!("{method} {path}: the index found something else"),
                }
            }
        }
    }

    #[test]
    fn routes_added_after_a_lookup_are_found() {
        let ok = |_: &Request| Ok(Response::text(""));
        let router = Router::new().get("/a", "a", ok);
        assert!(matches!(router.find("GET", "/b"), Match::NotFound));
        assert!(router.url_for("b", &[]).is_err());
        let router = router.get("/b", "b", ok);
        assert!(matches!(router.find("GET", "/b"), Match::Found(..)));
        assert_eq!(router.url_for("b", &[]).unwrap(), "/b");
    }

    #[test]
    fn duplicate_endpoints_fail_the_build() {
        let router = Router::new()
            .get("/a", "same", |_| Ok(Response::text("")))
            .get("/b", "same", |_| Ok(Response::text("")));
        assert!(router.check().is_err());
    }
}
