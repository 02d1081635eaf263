//! Post bodies and comments: markdown to HTML with pulldown-cmark, then
//! sanitised by ammonia, so raw HTML in a post can never run script in a
//! reader's browser; [`HtmlCache`] keeps what was rendered.

use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{Arc, LazyLock},
};

use pulldown_cmark::{Event, Options, Parser, html};

use crate::render_cache::RenderCache;

/// The safe HTML of a markdown text.
pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    ammonia::clean(&unsafe_html)
}

/// The HTML of a reader's comment: markdown's paragraphs, emphasis, code,
/// lists, quotes and links, nothing else. Raw HTML shows as the text it
/// is (a comment's `<b>` reads as `<b>`), and links get
/// `rel="nofollow ugc"`, so that comments cannot lend the blog's standing
/// to spam.
pub fn comment_html(markdown: &str) -> String {
    static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut cleaner = ammonia::Builder::empty();
        cleaner
            .tags(HashSet::from([
                "p",
                "br",
                "em",
                "strong",
                "code",
                "pre",
                "ul",
                "ol",
                "li",
                "blockquote",
                "a",
            ]))
            .tag_attributes([("a", HashSet::from(["href"]))].into())
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("nofollow ugc"));
        cleaner
    });
    let events = Parser::new(markdown).map(|event| match event {
        // raw HTML, as a block or inline, becomes its text
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, events);
    CLEANER.clean(&unsafe_html).to_string()
}

/// A markdown document's title and body: the first line that is not
/// blank must be a level-one heading (`# Title`); the body is what follows
/// it, without the blank lines that open it. `None` without such a title.
pub fn split_title(document: &str) -> Option<(&str, &str)> {
    let document = document.trim_start_matches(['\n', '\r', ' ', '\t']);
    let (first, body) = document.split_once('\n').unwrap_or((document, ""));
    let title = first.strip_prefix("# ")?.trim();
    if title.is_empty() {
        return None;
    }
    Some((title, body.trim_start_matches(['\n', '\r'])))
}

/// Rendered bodies by their markdown text, least recently used dropped
/// first, so reading a post again does not render it again: sanitising
/// parses the HTML into a tree and writes it out again, and for a 3.4 KB
/// post that was 72% of the CPU its page took (4,900 pages a second under
/// `cargo xtask bench`'s load). Keyed by the text itself, so an edited post
/// is rendered anew and a hit is never stale.
#[derive(Debug)]
pub struct HtmlCache {
    rendered: RenderCache,
}

impl HtmlCache {
    /// A cache holding at most `budget` bytes of markdown and HTML; a text
    /// whose markdown and HTML together exceed it is rendered every time.
    pub fn new(budget: usize) -> HtmlCache {
        HtmlCache {
            rendered: RenderCache::new(budget),
        }
    }

    /// The safe HTML of `markdown`, as [`to_html`] makes it.
    pub fn to_html(&self, markdown: &str) -> Arc<str> {
        let Ok(html) = self
            .rendered
            .get_or_render(markdown, || Ok::<_, Infallible>(to_html(markdown)));
        html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_show_raw_html_as_text_and_their_links_do_not_vouch() {
        for (markdown, expected) in [
            ("Nice *post*.", "<p>Nice <em>post</em>.</p>\n"),
            // an HTML block is text outside any paragraph
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            (
                "a <b>bold</b> try",
                "<p>a &lt;b&gt;bold&lt;/b&gt; try</p>\n",
            ),
            (
                "[spam](https://spam.example/)",
                "<p><a href=\"https://spam.example/\" rel=\"nofollow ugc\">spam</a></p>\n",
            ),
            (
                "<https://spam.example/>",
                "<p><a href=\"https://spam.example/\" rel=\"nofollow ugc\">https://spam.example/</a></p>\n",
            ),
            (
                "[x](javascript:alert(1))",
                "<p><a rel=\"nofollow ugc\">x</a></p>\n",
            ),
            // no images, no headings: their text at most
            ("![img](https://t.example/x.png)", "<p></p>\n"),
            ("# Big", "Big\n"),
        ] {
            assert_eq!(comment_html(markdown), expected, "{markdown:?}");
        }
    }

    #[test]
    fn markdown_becomes_html_and_scripts_do_not_survive() {
        for (markdown, expected) in [
            (
                "# Title\n\n*em* and **strong**",
                "<h1>Title</h1>\n<p><em>em</em> and <strong>strong</strong></p>\n",
            ),
            ("<script>alert(1)</script>", ""),
            (
                "[x](javascript:alert(1))",
                "<p><a rel=\"noopener noreferrer\">x</a></p>\n",
            ),
            ("<img src=x onerror=alert(1)>", "<img src=\"x\">"),
            ("a <b onclick=\"x()\">b</b>", "<p>a <b>b</b></p>\n"),
        ] {
            assert_eq!(to_html(markdown), expected, "{markdown:?}");
        }
    }

    #[test]
    fn a_document_splits_into_its_title_and_body() {
        for (document, expected) in [
            (
                "# Hello\n\nSome *text*.\n",
                Some(("Hello", "Some *text*.\n")),
            ),
            (
                "\n\n#  Spaced title  \r\n\r\nBody",
                Some(("Spaced title", "Body")),
            ),
            ("# Only a title", Some(("Only a title", ""))),
            (
                "# Title\n## Section\ntext",
                Some(("Title", "## Section\ntext")),
            ),
            ("## Not level one\ntext", None),
            ("#NoSpace\ntext", None),
            ("# \ntext", None),
            ("Plain text first\n# Title", None),
            ("", None),
        ] {
            assert_eq!(split_title(document), expected, "{document:?}");
        }
    }

    #[test]
    fn the_cache_renders_once_and_answers_what_to_html_makes() {
        let cache = HtmlCache::new(1 << 20);
        let first = cache.to_html("# Title\n\n<script>x()</script>text");
        assert_eq!(&*first, to_html("# Title\n\n<script>x()</script>text"));
        let again = cache.to_html("# Title\n\n<script>x()</script>text");
        assert!(Arc::ptr_eq(&first, &again), "the second call is a hit");
        let edited = cache.to_html("# Title\n\ntext, edited");
        assert_eq!(&*edited, to_html("# Title\n\ntext, edited"));
    }
}
