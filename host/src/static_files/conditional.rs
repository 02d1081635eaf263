//! Conditional requests (RFC 9110, section 13): validators and the checks
//! that turn into 304 or 412; pure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The validators of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity tag, quoted: `"<mtime>-<size>"` in hex, as nginx.
    pub etag: String,
    /// The modification time, truncated to whole seconds (HTTP dates have
    /// no more).
    pub last_modified: SystemTime,
}

impl Validators {
    /// The validators of a file modified at `modified` with `size` bytes.
    pub fn new(modified: SystemTime, size: u64) -> Validators {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Validators {
            etag: format!(
                "\"{:x}{:08x}-{size:x}\"",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos()
            ),
            last_modified: UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs()),
        }
    }

    /// `Last-Modified` as an HTTP date.
    pub fn http_date(&self) -> String {
        httpdate::fmt_http_date(self.last_modified)
    }
}

/// What the preconditions say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the file.
    Proceed,
    /// The client's copy is current (304).
    NotModified,
    /// A precondition failed (412).
    Failed,
}

/// The request's conditional headers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a str>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a str>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a str>,
}

/// Evaluates the preconditions in RFC 9110 section 13.2.2's order, for a
/// `GET` or `HEAD`.
pub fn evaluate(conditions: &Conditions<'_>, validators: &Validators) -> Outcome {
    let failed = match conditions.if_match {
        Some(if_match) => !tag_list_matches(if_match, &validators.etag, Comparison::Strong),
        None => conditions
            .if_unmodified_since
            .and_then(parse_date)
            .is_some_and(|date| validators.last_modified > date),
    };
    if failed {
        return Outcome::Failed;
    }
    let not_modified = match conditions.if_none_match {
        Some(if_none_match) => tag_list_matches(if_none_match, &validators.etag, Comparison::Weak),
        None => conditions
            .if_modified_since
            .and_then(parse_date)
            .is_some_and(|date| validators.last_modified <= date),
    };
    if not_modified {
        Outcome::NotModified
    } else {
        Outcome::Proceed
    }
}

/// Whether a `Range` may be honoured under this `If-Range` (section 13.1.5):
/// the tag must match strongly, or the date exactly.
pub fn if_range_allows(if_range: Option<&str>, validators: &Validators) -> bool {
    let Some(value) = if_range.map(str::trim) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        value == validators.etag
    } else {
        parse_date(value) == Some(validators.last_modified)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

fn tag_list_matches(list: &str, etag: &str, comparison: Comparison) -> bool {
    let list = list.trim();
    if list == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|candidate| {
        let weak = candidate.starts_with("W/");
        let opaque = candidate.strip_prefix("W/").unwrap_or(candidate);
        match comparison {
            Comparison::Strong => !weak && opaque == etag,
            Comparison::Weak => opaque == etag,
        }
    })
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validators() -> Validators {
        Validators::new(UNIX_EPOCH + Duration::new(1_700_000_000, 123), 42)
    }

    #[test]
    fn etags_are_strong_and_change_with_time_and_size() {
        let v = validators();
        assert_eq!(v.etag, "\"6553f1000000007b-2a\"");
        assert_ne!(
            v.etag,
            Validators::new(UNIX_EPOCH + Duration::new(1_700_000_000, 124), 42).etag
        );
        assert_eq!(v.http_date(), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn preconditions_follow_rfc_9110() {
        let v = validators();
        let tag = v.etag.clone();
        let weak = format!("W/{tag}");
        let list = format!("\"other\", {tag}");
        let date = v.http_date();
        let earlier = "Tue, 14 Nov 2023 22:13:19 GMT";
        let later = "Tue, 14 Nov 2023 22:13:21 GMT";
        let rows: Vec<(Conditions<'_>, Outcome)> = vec![
            (Conditions::default(), Outcome::Proceed),
            (
                Conditions {
                    if_none_match: Some(&tag),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            // weak comparison for If-None-Match
            (
                Conditions {
                    if_none_match: Some(&weak),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some(&list),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("*"),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("\"other\""),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_modified_since: Some(&date),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(later),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(earlier),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            // If-None-Match wins over If-Modified-Since
            (
                Conditions {
                    if_none_match: Some("\"other\""),
                    if_modified_since: Some(&date),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_modified_since: Some("not a date"),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_match: Some(&tag),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            // strong comparison for If-Match
            (
                Conditions {
                    if_match: Some(&weak),
                    ..Default::default()
                },
                Outcome::Failed,
            ),
            (
                Conditions {
                    if_match: Some("\"other\""),
                    ..Default::default()
                },
                Outcome::Failed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(earlier),
                    ..Default::default()
                },
                Outcome::Failed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(&date),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
        ];
        for (conditions, expected) in rows {
            assert_eq!(evaluate(&conditions, &v), expected, "{conditions:?}");
        }
    }

    #[test]
    fn if_range_needs_an_exact_validator() {
        let v = validators();
        assert!(if_range_allows(None, &v));
        assert!(if_range_allows(Some(&v.etag), &v));
        assert!(!if_range_allows(Some(&format!("W/{}", v.etag)), &v));
        assert!(!if_range_allows(Some("\"other\""), &v));
        assert!(if_range_allows(Some(&v.http_date()), &v));
        assert!(!if_range_allows(Some("Tue, 14 Nov 2023 22:13:21 GMT"), &v));
    }
}
