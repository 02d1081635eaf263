//! Post bodies: markdown to HTML with pulldown-cmark, then sanitised by
//! ammonia, so raw HTML in a post can never run script in a reader's
//! browser.

use pulldown_cmark::{Options, Parser, html};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
