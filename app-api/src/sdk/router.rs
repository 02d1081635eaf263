//! URL rules, matching and building (Werkzeug's `Map`, in small).
//!
//! Pure code: no I/O. A rule is a path with `<name>`, `<int:name>` or
//! `<path:name>` parts; matching yields the endpoint and its parameters, or a
//! reason to answer 404, 405 or a trailing-slash redirect.

use std::{
    fmt,
    sync::{Arc, OnceLock},
};

use percent_encoding::utf8_percent_encode;

use super::{
    Error, Request, Response,
    url::{PATH, SEGMENT},
};

/// What a handler returns.
pub type HandlerResult = Result<Response, Error>;

/// A request handler.
pub type Handler = Arc<dyn Fn(&Request) -> HandlerResult + Send + Sync>;

/// Turns a client error (4xx) into the page to show (Flask's
/// `errorhandler`).
pub type ErrorHandler = Arc<dyn Fn(&Request, &Error) -> Response + Send + Sync>;

/// Parameters as `(name, value)` pairs.
type Params<'a> = Vec<(&'a str, &'a str)>;

/// A mistake in a URL rule, found when the router is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad URL rule {:?}: {}", self.rule, self.reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Converter {
    /// One segment, no `/`.
    Segment,
    /// An unsigned integer.
    Int,
    /// The rest of the path, `/` included (must come last).
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Param { name: String, converter: Converter },
}

/// A parsed URL rule such as `/post/<slug>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    text: String,
    parts: Vec<Part>,
    trailing_slash: bool,
}

impl Rule {
    /// Parses a rule; it must start with `/`.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let error = |reason: &str| RuleError {
            rule: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(body) = text.strip_prefix('/') else {
            return Err(error("must start with '/'"));
        };
        let trailing_slash = body.ends_with('/');
        let body = body.strip_suffix('/').unwrap_or(body);
        let mut parts = Vec::new();
        if !body.is_empty() {
            let segments: Vec<&str> = body.split('/').collect();
            for (index, segment) in segments.iter().enumerate() {
                if segment.is_empty() {
                    return Err(error("empty segment ('//')"));
                }
                let part = match segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
                    Some(inner) => {
                        let (converter, name) = match inner.split_once(':') {
                            None => (Converter::Segment, inner),
                            Some(("int", name)) => (Converter::Int, name),
                            Some(("path", name)) => (Converter::Path, name),
                            Some(("string", name)) => (Converter::Segment, name),
                            Some((other, _)) => {
                                return Err(error(&format!(
                                    "unknown converter {other:?} (use string, int or path)"
                                )));
                            }
                        };
                        if name.is_empty()
                            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        {
                            return Err(error(&format!("bad parameter name {name:?}")));
                        }
                        if converter == Converter::Path && index + 1 != segments.len() {
                            return Err(error("a <path:...> parameter must come last"));
                        }
                        Part::Param {
                            name: name.to_owned(),
                            converter,
                        }
                    }
                    None if segment.contains(['<', '>']) => {
                        return Err(error(
                            "a parameter must be a whole segment, e.g. /post/<slug>",
                        ));
                    }
                    None => Part::Literal((*segment).to_owned()),
                };
                parts.push(part);
            }
        }
        let mut names: Vec<&str> = parts
            .iter()
            .filter_map(|part| match part {
                Part::Param { name, .. } => Some(name.as_str()),
                Part::Literal(_) => None,
            })
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(error("a parameter name appears twice"));
        }
        Ok(Rule {
            text: text.to_owned(),
            parts,
            trailing_slash,
        })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the rule has no parameters.
    fn is_static(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
    }

    /// The literal first segment every path it matches starts with, if the
    /// rule starts with one.
    fn first_literal(&self) -> Option<&str> {
        match self.parts.first() {
            Some(Part::Literal(literal)) => Some(literal),
            _ => None,
        }
    }

    /// Matches a decoded path (starting with `/`): the parameters, or `None`.
    fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        // A rule without parameters matches exactly its own text.
        if self.is_static() {
            return (path == self.text).then(Vec::new);
        }
        let body = path.strip_prefix('/')?;
        if self.parts.is_empty() {
            return body.is_empty().then(Vec::new);
        }
        // Most rules start with a literal: a different first segment rules
        // the rest out at once (the router tries its rules in order).
        if let Some(Part::Literal(first)) = self.parts.first()
            && !(body.starts_with(first.as_str())
                && matches!(body.as_bytes().get(first.len()), None | Some(b'/')))
        {
            return None;
        }
        let ends_with_path = matches!(
            self.parts.last(),
            Some(Part::Param {
                converter: Converter::Path,
                ..
            })
        );
        // A final `<path:...>` takes a trailing slash into its value.
        let body = match body.strip_suffix('/') {
            Some(rest) if !ends_with_path => {
                if !self.trailing_slash {
                    return None;
                }
                rest
            }
            _ if self.trailing_slash => return None,
            _ => body,
        };
        let mut params = Vec::new();
        // `None` once the whole path is consumed.
        let mut rest = Some(body);
        for part in &self.parts {
            let current = rest?;
            let (segment, tail) = match part {
                Part::Param {
                    converter: Converter::Path,
                    ..
                } => (current, None),
                _ => match split_segment(current) {
                    Some((segment, tail)) => (segment, Some(tail)),
                    None => (current, None),
                },
            };
            if segment.is_empty() {
                return None;
            }
            match part {
                Part::Literal(literal) if literal == segment => {}
                Part::Literal(_) => return None,
                Part::Param { name, converter } => {
                    if *converter == Converter::Int && !segment.bytes().all(|b| b.is_ascii_digit())
                    {
                        return None;
                    }
                    params.push((name.clone(), segment.to_owned()));
                }
            }
            rest = tail;
        }
        rest.is_none().then_some(params)
    }

    /// Appends the path for these parameters to `path`; the parameters the
    /// rule does not use are returned for the query string.
    fn build_into<'a>(
        &self,
        path: &mut String,
        params: &[(&'a str, &'a str)],
    ) -> Result<Params<'a>, String> {
        for part in &self.parts {
            path.push('/');
            match part {
                Part::Literal(literal) => path.push_str(literal),
                Part::Param { name, converter } => {
                    let Some((_, value)) = params.iter().find(|(key, _)| key == name) else {
                        return Err(format!("missing parameter {name:?}"));
                    };
                    let set = match converter {
                        Converter::Int if !value.bytes().all(|b| b.is_ascii_digit()) => {
                            return Err(format!("parameter {name:?} must be an integer"));
                        }
                        Converter::Path => PATH,
                        _ => SEGMENT,
                    };
                    if value.is_empty() {
                        return Err(format!("parameter {name:?} is empty"));
                    }
                    path.extend(utf8_percent_encode(value, set));
                }
            }
        }
        if self.trailing_slash || self.parts.is_empty() {
            path.push('/');
        }
        Ok(params
            .iter()
            .filter(|(key, _)| {
                !self
                    .parts
                    .iter()
                    .any(|part| matches!(part, Part::Param { name, .. } if name == key))
            })
            .copied()
            .collect())
    }
}

struct Route {
    methods: Vec<String>,
    rule: Rule,
    endpoint: String,
    handler: Handler,
}

/// The outcome of matching a request against the routes.
pub(crate) enum Match<'r> {
    /// A route answers: its handler and the path parameters.
    Found(&'r Handler, Vec<(String, String)>),
    /// The path exists, but not for this method; the allowed methods.
    MethodNotAllowed(Vec<String>),
    /// `OPTIONS` on an existing path; the allowed methods.
    Options(Vec<String>),
    /// The path exists with a trailing slash (Werkzeug's strict slashes).
    AddSlash,
    /// Nothing matches.
    NotFound,
}

/// An app's routes: rules, their methods, endpoints and handlers.
///
/// ```
/// use app_api::prelude::*;
/// let router = Router::new()
///     .get("/", "index", |_req: &Request| Ok(Response::text("home")))
///     .get("/post/<slug>", "post", |req: &Request| {
///         Ok(Response::text(req.param("slug").unwrap_or_default().to_owned()))
///     })
///     .route(&["GET", "POST"], "/login", "login", |_req: &Request| Ok(Response::text("login")));
/// assert_eq!(router.url_for("post", &[("slug", "a b")]).unwrap(), "/post/a%20b");
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    errors: Vec<RuleError>,
    error_handler: Option<ErrorHandler>,
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
    /// templates call this a few times per card of a listing.
    fn url_for(
        &self,
        root: &str,
        endpoint: &str,
        params: &[(&str, &str)],
    ) -> Result<String, Error> {
        let (_, rule) = self
            .rules
            .iter()
            .find(|(name, _)| name == endpoint)
            .ok_or_else(|| Error::internal(format!("url_for: no endpoint named {endpoint:?}")))?;
        let mut url = String::with_capacity(root.len() + rule.text.len() + 16);
        url.push_str(root);
        let extra = rule
            .build_into(&mut url, params)
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
}

impl Urls {
    pub(crate) fn new(
        map: Arc<UrlMap>,
        script_root: &str,
        static_url_path: &str,
        uploads_url_path: &str,
    ) -> Urls {
        Urls {
            map,
            script_root: script_root.to_owned(),
            static_url_path: static_url_path.to_owned(),
            uploads_url_path: uploads_url_path.to_owned(),
        }
    }

    /// Like [`Request::url_for`].
    pub fn url_for(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.map.url_for(&self.script_root, endpoint, params)
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

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route for `methods`. `HEAD` is implied by `GET`. A bad rule or a
    /// duplicate endpoint makes the app's initialisation fail with its reason.
    pub fn route<F>(mut self, methods: &[&str], rule: &str, endpoint: &str, handler: F) -> Router
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        let parsed = match Rule::parse(rule) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.errors.push(error);
                return self;
            }
        };
        if self.routes.iter().any(|route| route.endpoint == endpoint) {
            self.errors.push(RuleError {
                rule: rule.to_owned(),
                reason: format!("endpoint {endpoint:?} is already used by another rule"),
            });
            return self;
        }
        let mut methods: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
            methods.push("HEAD".to_owned());
        }
        self.routes.push(Route {
            methods,
            rule: parsed,
            endpoint: endpoint.to_owned(),
            handler: Arc::new(handler),
        });
        // built from the routes on first use: a new route makes them anew
        self.url_map = OnceLock::new();
        self.index = OnceLock::new();
        self
    }

    /// Adds a `GET` (and `HEAD`) route.
    pub fn get<F>(self, rule: &str, endpoint: &str, handler: F) -> Router
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["GET"], rule, endpoint, handler)
    }

    /// Adds a `POST` route.
    pub fn post<F>(self, rule: &str, endpoint: &str, handler: F) -> Router
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.route(&["POST"], rule, endpoint, handler)
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
            if let Some(params) = route.rule.matches(path) {
                if route.methods.iter().any(|m| m == method) {
                    return Match::Found(&route.handler, params);
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
                .any(|r| r.rule.matches(&with_slash).is_some())
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
        self.url_map().url_for("", endpoint, params)
    }

    /// Like [`url_for`](Router::url_for), after `root`.
    pub(crate) fn url_for_under(
        &self,
        root: &str,
        endpoint: &str,
        params: &[(&str, &str)],
    ) -> Result<String, Error> {
        self.url_map().url_for(root, endpoint, params)
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

    /// Sets the page shown for client errors (4xx): unknown URLs, wrong
    /// methods and the errors handlers return (Flask's `errorhandler`).
    /// Server errors (5xx) stay the host's: they are logged and answered
    /// with a generic page.
    pub fn error_handler<F>(mut self, handler: F) -> Router
    where
        F: Fn(&Request, &Error) -> Response + Send + Sync + 'static,
    {
        self.error_handler = Some(Arc::new(handler));
        self
    }

    /// The error page handler, if one is set.
    pub(crate) fn error_page(&self) -> Option<&ErrorHandler> {
        self.error_handler.as_ref()
    }
}

/// `path` split around its first `/`. A byte search: `split_once('/')`
/// sets up a char searcher, which costs more than a path's short segments
/// take to scan, on every route tried for every request.
fn split_segment(path: &str) -> Option<(&str, &str)> {
    let at = path.bytes().position(|byte| byte == b'/')?;
    // `/` is ASCII, so `at` and `at + 1` are char boundaries
    Some((&path[..at], &path[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Matched = Option<Vec<(String, String)>>;

    fn params(pairs: &[(&str, &str)]) -> Matched {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn segments_split_at_the_first_slash() {
        for (path, split) in [
            ("posts/7/edit", Some(("posts", "7/edit"))),
            ("/x", Some(("", "x"))),
            ("é/ü", Some(("é", "ü"))),
            ("x/", Some(("x", ""))),
            ("posts", None),
            ("", None),
        ] {
            assert_eq!(super::split_segment(path), split, "{path:?}");
            assert_eq!(path.split_once('/'), split, "{path:?}");
        }
    }

    #[test]
    fn rules_match_like_werkzeug() {
        let rows: &[(&str, &str, Matched)] = &[
            ("/", "/", params(&[])),
            ("/", "/x", None),
            ("/about", "/about", params(&[])),
            // strict slashes: `/about` does not match `/about/`
            ("/about", "/about/", None),
            ("/about/", "/about/", params(&[])),
            ("/about/", "/about", None),
            // the first segment is compared whole
            ("/about", "/aboutus", None),
            ("/about", "/abou", None),
            ("/about/", "/about/x", None),
            ("/post/<slug>", "/posts/hello", None),
            ("/post/<slug>", "/post/hello", params(&[("slug", "hello")])),
            ("/post/<slug>", "/post/", None),
            ("/post/<slug>", "/post/a/b", None),
            ("/post/<int:id>", "/post/42", params(&[("id", "42")])),
            ("/post/<int:id>", "/post/4x", None),
            (
                "/files/<path:rest>",
                "/files/a/b.txt",
                params(&[("rest", "a/b.txt")]),
            ),
            (
                "/a/<x>/b/<y>",
                "/a/1/b/2",
                params(&[("x", "1"), ("y", "2")]),
            ),
            ("/a/<x>/b/<y>", "/a/1/c/2", None),
        ];
        for (rule, path, expected) in rows {
            let parsed = Rule::parse(rule).unwrap();
            assert_eq!(&parsed.matches(path), expected, "rule {rule} path {path}");
        }
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for rule in [
            "about",
            "/a//b",
            "/<bad name>",
            "/<float:x>",
            "/x<y>",
            "/<path:p>/tail",
            "/<a>/<a>",
        ] {
            assert!(Rule::parse(rule).is_err(), "{rule} should be refused");
        }
    }

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
                    &[("page", "2"), ("slug", "x"), ("q", "a b")]
                )
                .unwrap(),
            "/admin/post/x?page=2&q=a+b"
        );
        assert_eq!(
            router.url_for_under("/admin", "index", &[]).unwrap(),
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
                    (Match::Found(handler, _), Some(expected)) => {
                        assert!(Arc::ptr_eq(handler, expected), "{method} {path}")
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
