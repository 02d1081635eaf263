//! One URL rule: parsing, matching a decoded path, building a path.
//!
//! Pure code: no I/O. A rule is a path with `<name>`, `<int:name>` or
//! `<path:name>` parts.

use std::fmt;

use percent_encoding::utf8_percent_encode;

use crate::sdk::url::{PATH, SEGMENT};

/// Parameters as `(name, value)` pairs.
pub(crate) type Params<'a> = Vec<(&'a str, &'a str)>;

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

    /// The names of the rule's parameters, in order.
    pub(crate) fn param_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Param { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the rule has no parameters.
    fn is_static(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
    }

    /// The literal first segment every path it matches starts with, if the
    /// rule starts with one.
    pub(crate) fn first_literal(&self) -> Option<&str> {
        match self.parts.first() {
            Some(Part::Literal(literal)) => Some(literal),
            _ => None,
        }
    }

    /// Matches a decoded path (starting with `/`): the parameters, or `None`.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
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
                    if *converter == Converter::Int && !canonical_int(segment) {
                        return None;
                    }
                    params.push((name.clone(), segment.to_owned()));
                }
            }
            rest = tail;
        }
        rest.is_none().then_some(params)
    }

    /// Appends the path for these parameters to `path`, taking a parameter
    /// missing from `params` from `defaults`; the parameters the rule does
    /// not use are returned for the query string.
    pub(crate) fn build_into<'a>(
        &self,
        path: &mut String,
        params: &[(&'a str, &'a str)],
        defaults: &[(String, String)],
    ) -> Result<Params<'a>, String> {
        for part in &self.parts {
            path.push('/');
            match part {
                Part::Literal(literal) => path.push_str(literal),
                Part::Param { name, converter } => {
                    let value = match params.iter().find(|(key, _)| key == name) {
                        Some((_, value)) => *value,
                        None => match defaults.iter().find(|(key, _)| key == name) {
                            Some((_, value)) => value.as_str(),
                            None => return Err(format!("missing parameter {name:?}")),
                        },
                    };
                    let set = match converter {
                        Converter::Int if !canonical_int(value) => {
                            return Err(format!(
                                "parameter {name:?} must be a whole number from 0 to {}, without leading zeros, not {value:?}",
                                i64::MAX
                            ));
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

/// Whether `text` is what `<int:...>` accepts: a decimal from 0 to
/// `i64::MAX` as written canonically (no sign, no leading zero), so that one
/// number has one URL and a handler's `param::<i64>` never fails.
pub(crate) fn canonical_int(text: &str) -> bool {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    digits
        && !text.is_empty()
        && (text == "0" || !text.starts_with('0'))
        && text.parse::<i64>().is_ok()
}

/// `path` split around its first `/`. A byte search: `split_once('/')`
/// sets up a char searcher, which costs more than a path's short segments
/// take to scan, on every route tried for every request.
pub(crate) fn split_segment(path: &str) -> Option<(&str, &str)> {
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
            // one number, one URL: no leading zeros, signs or overflow
            ("/post/<int:id>", "/post/0", params(&[("id", "0")])),
            ("/post/<int:id>", "/post/02", None),
            ("/post/<int:id>", "/post/+2", None),
            ("/post/<int:id>", "/post/-2", None),
            (
                "/post/<int:id>",
                "/post/9223372036854775807",
                params(&[("id", "9223372036854775807")]),
            ),
            ("/post/<int:id>", "/post/9223372036854775808", None),
            ("/post/<int:id>", "/post/99999999999999999999999", None),
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
}
