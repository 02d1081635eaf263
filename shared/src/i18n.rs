//! The blog's languages: which there are, which one a request is in, and
//! the interface's words in each (gettext's way: the English text is the
//! key, `translations/<lang>.json` maps it to the language's).
//!
//! Templates say `{{ _("Log in") }}` and `{{ _("Page {page} of {pages}",
//! page=page, pages=pages) }}`; code says `tr(lang, "Log in")`. A test
//! checks that every text said either way has a Dutch translation.

use std::{collections::HashMap, sync::LazyLock};

use app_api::{minijinja, prelude::*};
use minijinja::{Value, value::Kwargs};

/// The languages, by code, with their names in themselves.
pub const LANGUAGES: &[(&str, &str)] = &[("en", "English"), ("nl", "Nederlands")];

/// The language of a request that says nothing of one.
pub const DEFAULT: &str = "en";

/// The URL parameter of the language: `/<lang_code>/...`.
pub const PARAM: &str = "lang_code";

/// Dutch, by English text.
static NL: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../translations/nl.json"))
        .expect("translations/nl.json is a JSON object of strings (a test reads it)")
});

/// `code` if it is one of [`LANGUAGES`], as the list's own `'static` text.
pub fn supported(code: &str) -> Option<&'static str> {
    LANGUAGES
        .iter()
        .map(|(known, _)| *known)
        .find(|known| *known == code)
}

/// The language an `Accept-Language` header prefers among ours
/// (RFC 9110's quality values; `nl-BE` counts as `nl`), else [`DEFAULT`].
pub fn negotiate(accept_language: Option<&str>) -> &'static str {
    let Some(header) = accept_language else {
        return DEFAULT;
    };
    let mut best: Option<(&'static str, f32)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|part| part.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag
            .split('-')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if quality <= 0.0 {
            continue;
        }
        // the first of equal quality wins, as the client listed them
        if let Some(code) = supported(&primary)
            && best.is_none_or(|(_, known)| quality > known)
        {
            best = Some((code, quality));
        }
    }
    best.map_or(DEFAULT, |(code, _)| code)
}

/// The language of a request: its `<lang_code>`, else what its
/// `Accept-Language` prefers.
pub fn lang(req: &Request) -> &'static str {
    req.params()
        .iter()
        .find(|(name, _)| name == PARAM)
        .and_then(|(_, code)| supported(code))
        .unwrap_or_else(|| negotiate(req.header("accept-language")))
}

/// `text` in `lang`; the English when there is no translation.
pub fn tr<'t>(lang: &str, text: &'t str) -> &'t str {
    match lang {
        "nl" => NL.get(text).map_or(text, String::as_str),
        _ => text,
    }
}

/// [`tr`] with `{name}` replaced by each argument's value.
pub fn tr_with(lang: &str, text: &str, args: &[(&str, &str)]) -> String {
    let mut out = tr(lang, text).to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// A router made multilingual: a `<lang_code>` matches our languages only
/// (another is a 404), and `url_for` fills a `<lang_code>` the current page
/// lacks (the admin's pages, an unknown URL's 404) with the visitor's
/// language.
pub fn localise(router: Router) -> Router {
    let codes: Vec<&str> = LANGUAGES.iter().map(|(code, _)| *code).collect();
    router
        .param_values(PARAM, &codes)
        .url_default(PARAM, |req: &Request| Some(lang(req).to_owned()))
}

/// `_(text, **args)` for one render in `lang`: a function of the render's
/// own, so that a call finds its language without looking it up.
pub fn translator(lang: &'static str) -> Value {
    Value::from_function(
        move |text: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            if kwargs.args().next().is_none() {
                return Ok(tr(lang, text).to_owned());
            }
            let values = kwargs
                .args()
                .map(|key| Ok((key, kwargs.get::<Value>(key)?.to_string())))
                .collect::<Result<Vec<_>, minijinja::Error>>()?;
            let args: Vec<(&str, &str)> = values
                .iter()
                .map(|(key, value)| (*key, value.as_str()))
                .collect();
            Ok(tr_with(lang, text, &args))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_of_ours() {
        for (header, expected) in [
            (None, "en"),
            (Some(""), "en"),
            (Some("nl"), "nl"),
            (Some("nl-BE,nl;q=0.9,en;q=0.8"), "nl"),
            (Some("en-US,en;q=0.9,nl;q=0.8"), "en"),
            (Some("de,nl;q=0.5,en;q=0.4"), "nl"),
            (Some("fr, de"), "en"),
            (Some("en;q=0.2, NL;q=0.7"), "nl"),
            (Some("nl;q=0, en;q=0.1"), "en"),
            (Some("*"), "en"),
            (Some("nl;q=abc"), "nl"),
        ] {
            assert_eq!(negotiate(header), expected, "{header:?}");
        }
    }

    #[test]
    fn texts_translate_with_their_arguments_or_stay_english() {
        assert_eq!(tr("nl", "Log in"), "Inloggen");
        assert_eq!(tr("en", "Log in"), "Log in");
        assert_eq!(tr("nl", "no such text"), "no such text");
        assert_eq!(
            tr_with(
                "nl",
                "Page {page} of {pages}",
                &[("page", "2"), ("pages", "5")]
            ),
            "Pagina 2 van 5"
        );
    }

    /// The texts `_("...")` (or `'...'`) and `tr(lang, "...")` /
    /// `tr_with(lang, "...", ...)` say in `source`, however rustfmt broke
    /// the call's lines.
    fn said(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        // `again(` is the login form shown again with a message, translated there
        for (opener, needs_lang) in [
            ("_(", false),
            ("again(", false),
            ("tr(", true),
            ("tr_with(", true),
        ] {
            let mut rest = source;
            while let Some(at) = rest.find(opener) {
                let preceded_by_word = source.len() - rest.len() + at > 0
                    && rest[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_');
                rest = &rest[at + opener.len()..];
                if preceded_by_word {
                    continue;
                }
                let mut call = rest.trim_start();
                if needs_lang {
                    let Some(after) = call.strip_prefix("lang") else {
                        continue;
                    };
                    call = after.trim_start().trim_start_matches(',').trim_start();
                }
                let Some(quote) = call.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                    continue;
                };
                let text = &call[1..];
                if let Some(end) = text.find(quote) {
                    found.push(text[..end].replace("\\\"", "\""));
                }
            }
        }
        found
    }

    #[test]
    fn every_interface_text_has_a_dutch_translation() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = Vec::new();
        for folder in [
            "shared/templates",
            "shared/src",
            "apps/frontend/templates",
            "apps/frontend/src",
            "apps/admin/templates",
            "apps/admin/src",
        ] {
            for entry in std::fs::read_dir(format!("{root}/{folder}")).unwrap() {
                files.push(entry.unwrap().path());
            }
        }
        let mut missing = Vec::new();
        let mut count = 0;
        for file in files.iter().filter(|file| file.is_file()) {
            if file.ends_with("i18n.rs") {
                continue;
            }
            let source = std::fs::read_to_string(file).unwrap();
            for text in said(&source) {
                count += 1;
                if !NL.contains_key(&text) {
                    missing.push(format!("{}: {text:?}", file.display()));
                }
            }
        }
        assert!(count > 30, "only {count} texts found: the scan is broken");
        // texts shown through a variable, which the scan cannot see
        use crate::model::{CommentInput, Refusal};
        let refusals = [
            CommentInput::default().check().unwrap_err().to_string(),
            CommentInput {
                author: "Ann".to_owned(),
                body: String::new(),
            }
            .check()
            .unwrap_err()
            .to_string(),
            Refusal::TooMany.to_string(),
        ];
        for text in refusals
            .iter()
            .map(String::as_str)
            .chain([crate::pages::SERVER_ERROR])
        {
            if !NL.contains_key(text) {
                missing.push(format!("(shown through a variable): {text:?}"));
            }
        }
        assert!(missing.is_empty(), "no Dutch for:\n{}", missing.join("\n"));
    }
}
