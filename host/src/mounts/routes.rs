//! Which requests an app has a route for, from the routes it lists: the
//! host reads a request body only when some route takes the request's
//! method and path, so a body sent to a missing page or with the wrong
//! method is never read (the app still answers its own 404 or 405, without
//! it). Pure: no I/O.
//!
//! The match errs towards "yes": a parameter matches any segment whatever
//! its converter, and trailing slashes are ignored. A wrong "yes" only
//! reads a body the app then refuses; a wrong "no" would hand an app an
//! empty body it expected.

use app_api_abi::RouteInfo;

/// The routes of one app, as the host matches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoutes {
    routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    methods: Vec<String>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Exactly this text.
    Literal(String),
    /// Any one segment (`<slug>`, `<int:id>`).
    One,
    /// Everything from here on (`<path:name>`).
    Rest,
}

/// The segments of a path or rule, without empty ones at either end.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
}

impl AppRoutes {
    /// The routes an app listed.
    pub fn new(listed: &[RouteInfo]) -> AppRoutes {
        let routes = listed
            .iter()
            .map(|route| Route {
                methods: route
                    .methods
                    .split(',')
                    .map(|method| method.trim().to_ascii_uppercase())
                    .collect(),
                segments: segments(&route.rule)
                    .map(|segment| {
                        if segment.contains("<path:") {
                            Segment::Rest
                        } else if segment.contains('<') {
                            Segment::One
                        } else {
                            Segment::Literal(segment.to_owned())
                        }
                    })
                    .collect(),
            })
            .collect();
        AppRoutes { routes }
    }

    /// Whether a `method` request for `path` (below the mount) may reach a
    /// handler, so that its body is worth reading. An app that lists no
    /// routes is taken to route everything.
    pub fn takes(&self, method: &str, path: &str) -> bool {
        self.routes.is_empty()
            || self.routes.iter().any(|route| {
                route.methods.iter().any(|allowed| allowed == method) && route.matches(path)
            })
    }
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        let mut parts = segments(path);
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(text) => {
                    if parts.next() != Some(text.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(methods: &str, rule: &str) -> RouteInfo {
        RouteInfo {
            methods: methods.into(),
            rule: rule.into(),
            endpoint: "e".into(),
        }
    }

    #[test]
    fn a_body_is_read_only_for_a_route_that_takes_the_method() {
        let routes = AppRoutes::new(&[
            route("GET,HEAD", "/"),
            route("POST", "/login"),
            route("GET,POST", "/posts/<int:id>/edit"),
            route("POST", "/files/<path:name>"),
            route("POST", "/tags/"),
        ]);
        for (method, path, expected) in [
            ("POST", "/login", true),
            ("POST", "/login/", true),
            ("PUT", "/login", false),
            ("POST", "/logout", false),
            ("POST", "/", false),
            ("GET", "", true),
            ("POST", "/posts/12/edit", true),
            ("POST", "/posts/x/edit", true),
            ("POST", "/posts/12", false),
            ("POST", "/posts/12/edit/more", false),
            ("POST", "/files/a/b/c.txt", true),
            ("POST", "/files", true),
            ("POST", "/tags", true),
        ] {
            assert_eq!(routes.takes(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn an_app_without_listed_routes_takes_everything() {
        assert!(AppRoutes::new(&[]).takes("POST", "/anything"));
    }
}
