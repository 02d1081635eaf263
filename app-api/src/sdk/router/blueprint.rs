//! Blueprints: named groups of routes with their own hooks, registered on
//! a router (or another blueprint) under a prefix (Flask's `Blueprint`).

use std::sync::Arc;

use super::{Handler, HandlerResult, Hooks, Routes, Rule, RuleError, normalise_methods};
use crate::sdk::{Error, Request, Response};

/// A route before its blueprint is registered: rule and endpoint as the
/// blueprint wrote them.
pub(crate) struct Pending {
    pub(crate) methods: Vec<String>,
    pub(crate) rule: String,
    pub(crate) endpoint: String,
    pub(crate) handler: Handler,
}

/// A route made final by registration, with how many of its parameters
/// come from prefixes and the hooks of the blueprints it came through.
pub(crate) type Registered = (Pending, usize, Arc<Hooks>);

/// A named group of routes, hooks and nested blueprints that a router
/// mounts under a prefix, as often as it likes (Flask's `Blueprint`).
///
/// Endpoints are named after the blueprint: `login` in blueprint `auth` is
/// `auth.login`; in a blueprint `account` nested in `site` it is
/// `site.account.login`. The blueprint's hooks run for its own routes (and
/// its children's), inside the router's.
///
/// ```
/// use app_api::{prelude::*, sdk::testing::TestClient};
///
/// fn auth() -> Blueprint {
///     Blueprint::new("auth")
///         .get("/login", "login", |req: &Request| {
///             // the prefix's <lang_code> is filled in from this request
///             Ok(Response::text(req.url_for("auth.logout", &[])?))
///         })
///         .get("/logout", "logout", |_: &Request| Ok(Response::text("bye")))
///         .after_request(|_: &Request, response: Response| response.with_header("x-auth", "1"))
/// }
///
/// let build = |_: &Mount| -> Result<Router, Error> {
///     Ok(Router::new().register(auth(), "/<lang_code>"))
/// };
/// let client = TestClient::new(build, Mount::new("admin", "/admin")).unwrap();
/// let response = client.get("/nl/login");
/// assert_eq!(response.body_text(), "/admin/nl/logout");
/// assert_eq!(response.header("x-auth"), Some("1"));
/// ```
pub struct Blueprint {
    name: String,
    routes: Vec<Pending>,
    children: Vec<(String, Blueprint)>,
    hooks: Hooks,
    errors: Vec<RuleError>,
}

impl Blueprint {
    /// An empty blueprint. The name must be non-empty, without `.`.
    pub fn new(name: &str) -> Blueprint {
        let mut errors = Vec::new();
        if name.is_empty() || name.contains('.') {
            errors.push(RuleError {
                rule: String::new(),
                reason: format!(
                    "bad blueprint name {name:?}: give a non-empty name without '.', e.g. \"auth\""
                ),
            });
        }
        Blueprint {
            name: name.to_owned(),
            routes: Vec::new(),
            children: Vec::new(),
            hooks: Hooks::default(),
            errors,
        }
    }

    /// The blueprint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nests `child` under `prefix` (below this blueprint's own prefix);
    /// its endpoints become `this.child.endpoint`.
    pub fn register(mut self, child: Blueprint, prefix: &str) -> Blueprint {
        self.children.push((prefix.to_owned(), child));
        self
    }

    /// The routes with their final rules, endpoints and hooks, into `out`:
    /// `prefix` is the whole prefix above this blueprint, `names` the names
    /// of its parents (`site.`), `outer` their hooks.
    pub(crate) fn flatten(
        self,
        prefix: &str,
        names: &str,
        outer: &Hooks,
        out: &mut Vec<Registered>,
    ) -> Result<(), RuleError> {
        if let Some(error) = self.errors.into_iter().next() {
            return Err(error);
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix_params = match prefix {
            "" => 0,
            _ if !prefix.starts_with('/') => {
                return Err(RuleError {
                    rule: prefix.to_owned(),
                    reason: format!(
                        "the prefix of blueprint {:?} must start with '/', e.g. \"/<lang_code>\"",
                        self.name
                    ),
                });
            }
            _ => Rule::parse(prefix)?.param_names().count(),
        };
        let hooks = Arc::new(outer.then(&self.hooks));
        let names = format!("{names}{}.", self.name);
        for route in self.routes {
            out.push((
                Pending {
                    rule: join(prefix, &route.rule),
                    endpoint: format!("{names}{}", route.endpoint),
                    ..route
                },
                prefix_params,
                Arc::clone(&hooks),
            ));
        }
        for (child_prefix, child) in self.children {
            child.flatten(&join(prefix, &child_prefix), &names, &hooks, out)?;
        }
        Ok(())
    }
}

/// A rule below a prefix, as Flask joins them: `/<lang_code>` and `/` make
/// `/<lang_code>/`, and `/login` makes `/<lang_code>/login`.
fn join(prefix: &str, rule: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if rule.is_empty() {
        return if prefix.is_empty() {
            "/".to_owned()
        } else {
            prefix.to_owned()
        };
    }
    format!("{prefix}{rule}")
}

impl Routes for Blueprint {
    fn route<F>(mut self, methods: &[&str], rule: &str, endpoint: &str, handler: F) -> Blueprint
    where
        F: Fn(&Request) -> HandlerResult + Send + Sync + 'static,
    {
        self.routes.push(Pending {
            methods: normalise_methods(methods),
            rule: rule.to_owned(),
            endpoint: endpoint.to_owned(),
            handler: Arc::new(handler),
        });
        self
    }

    fn before_request<F>(mut self, hook: F) -> Blueprint
    where
        F: Fn(&Request) -> Result<Option<Response>, Error> + Send + Sync + 'static,
    {
        self.hooks.before.push(Arc::new(hook));
        self
    }

    fn after_request<F>(mut self, hook: F) -> Blueprint
    where
        F: Fn(&Request, Response) -> Response + Send + Sync + 'static,
    {
        self.hooks.after.push(Arc::new(hook));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::Router;

    fn ok(_: &Request) -> HandlerResult {
        Ok(Response::text(""))
    }

    #[test]
    fn rules_join_their_prefixes_as_in_flask() {
        for (prefix, rule, joined) in [
            ("", "/login", "/login"),
            ("/<lang_code>", "/login", "/<lang_code>/login"),
            ("/<lang_code>/", "/login", "/<lang_code>/login"),
            ("/<lang_code>", "/", "/<lang_code>/"),
            ("/a", "", "/a"),
            ("", "", "/"),
        ] {
            assert_eq!(join(prefix, rule), joined, "{prefix:?} + {rule:?}");
        }
    }

    #[test]
    fn nested_blueprints_name_endpoints_and_join_prefixes() {
        let inner = Blueprint::new("account").get("/me", "me", ok);
        let outer = Blueprint::new("site")
            .get("/", "home", ok)
            .register(inner, "/account");
        let router = Router::new().register(outer, "/<lang_code>");
        let routes: Vec<(String, String)> = router
            .routes()
            .map(|(_, rule, endpoint)| (rule.to_owned(), endpoint.to_owned()))
            .collect();
        assert_eq!(
            routes,
            [
                ("/<lang_code>/".to_owned(), "site.home".to_owned()),
                (
                    "/<lang_code>/account/me".to_owned(),
                    "site.account.me".to_owned()
                ),
            ]
        );
        assert_eq!(
            router
                .url_for("site.account.me", &[("lang_code", "en")])
                .unwrap(),
            "/en/account/me"
        );
    }

    #[test]
    fn bad_names_prefixes_and_clashes_fail_the_build() {
        for router in [
            Router::new().register(Blueprint::new("a.b").get("/", "x", ok), ""),
            Router::new().register(Blueprint::new("").get("/", "x", ok), ""),
            Router::new().register(Blueprint::new("a").get("/", "x", ok), "no-slash"),
            Router::new().register(Blueprint::new("a").get("/<id>", "x", ok), "/<id>"),
            Router::new().register(Blueprint::new("a").get("/", "x", ok), "/<bad name>"),
            // one blueprint twice under one name: its endpoints clash
            Router::new()
                .register(Blueprint::new("a").get("/", "x", ok), "/one")
                .register(Blueprint::new("a").get("/", "x", ok), "/two"),
        ] {
            assert!(router.check().is_err());
        }
    }
}
