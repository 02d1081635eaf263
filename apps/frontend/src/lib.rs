//! The blog's public site, mounted at `/`: published posts, newest first,
//! each post's page, and an Atom feed. Shares the model, templates, login
//! and pages with `admin` through the `shared` crate.

use std::sync::Arc;

use app_api::prelude::*;
use minijinja::{Value, context};
use shared::Site;

/// Posts on one page of the home page.
pub const PER_PAGE: u32 = 10;

/// Posts in the feed.
const FEED_ENTRIES: u32 = 20;

const TEMPLATES: &[(&str, &str)] = &[
    ("home.html", include_str!("../templates/home.html")),
    ("post.html", include_str!("../templates/post.html")),
    ("feed.xml", include_str!("../templates/feed.xml")),
];

/// Builds the app's routes for one mount.
pub fn build(mount: &Mount) -> Result<Router, Error> {
    let site = Site::open(mount, TEMPLATES)?;
    let (home, post, feed) = (Arc::clone(&site), Arc::clone(&site), Arc::clone(&site));
    let router = Router::new()
        .get("/", "index", move |req: &Request| index(&home, req))
        .get("/post/<slug>", "post", move |req: &Request| {
            show_post(&post, req)
        })
        .get("/feed.xml", "feed", move |req: &Request| {
            atom_feed(&feed, req)
        });
    let router = shared::auth::register(router, &site);
    Ok(shared::pages::register(router, &site))
}

/// The `?page=` number: 1 when absent; `404` when not a page number.
fn page_number(req: &Request) -> Result<u32, Error> {
    match req.query("page") {
        None => Ok(1),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(Error::not_found),
    }
}

fn index(site: &Site, req: &Request) -> Result<Response, Error> {
    let page = page_number(req)?;
    let (posts, total) = site.blog.published_page(page, PER_PAGE)?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    if page > pages {
        return Err(Error::not_found());
    }
    let posts: Vec<Value> = posts.into_iter().map(Value::from_object).collect();
    site.templates.page(
        req,
        "home.html",
        context! { posts => posts, page => page, pages => pages },
    )
}

fn show_post(site: &Site, req: &Request) -> Result<Response, Error> {
    let slug = req.param("slug").unwrap_or_default();
    let (post, images) = site
        .blog
        .published_post(slug)?
        .ok_or_else(|| Error::new(404, "There is no post at this address."))?;
    let body = site.bodies.to_html(&post.body);
    site.templates.page(
        req,
        "post.html",
        context! {
            body => Value::from_safe_string(body.to_string()),
            post => Value::from_object(post),
            images => images,
        },
    )
}

/// `text` as the inside of an XML CDATA section: each `]]>`, which would
/// end the section, is split across two sections. Looked for with
/// `memchr`'s vectorised search: `str::replace` scanned a feed's 100 KB of
/// HTML byte by byte, most often to find none (sanitised HTML escapes `>`
/// in text).
fn cdata_text(text: &str) -> String {
    const END: &[u8] = b"]]>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = memchr::memmem::find(rest.as_bytes(), END) {
        // `]]>` is ASCII: `at` and `at + 2` are char boundaries
        out.push_str(&rest[..at + 2]);
        out.push_str("]]><![CDATA[");
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

/// `xml` without the characters XML 1.0 cannot hold (controls other than
/// tab, newline and carriage return; U+FFFE and U+FFFF): one in a post's
/// title or body would make the whole feed unreadable to every reader.
fn xml_chars(xml: String) -> String {
    let invalid = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    // nearly always there are none: one scan of the bytes, no copy
    let suspect = xml
        .bytes()
        .any(|b| (b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF);
    if suspect && xml.contains(invalid) {
        xml.replace(invalid, "")
    } else {
        xml
    }
}

fn atom_feed(site: &Site, req: &Request) -> Result<Response, Error> {
    let posts = site.blog.latest_posts(FEED_ENTRIES)?;
    let updated = posts.iter().map(|post| post.updated_at).max().unwrap_or(0);
    let entries: Vec<_> = posts
        .into_iter()
        .map(|post| {
            // in a CDATA section, not escaped: escaping a feed's HTML took
            // half of its CPU
            let content = cdata_text(&site.bodies.to_html(&post.body));
            context! {
                content => Value::from_safe_string(content),
                post => Value::from_object(post),
            }
        })
        .collect();
    let xml = site.templates.render(
        req,
        None,
        "feed.xml",
        context! { entries => entries, updated => updated, base => req.host_url() },
    )?;
    Ok(Response::new(
        200,
        "application/atom+xml; charset=utf-8",
        xml_chars(xml),
    ))
}

app_api::export_app!(name: "frontend", init: build);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_chars_drops_what_xml_cannot_hold() {
        for (text, expected) in [
            ("<t>plain</t>", "<t>plain</t>"),
            ("<t>a\u{0}b\u{1b}[31mc\u{7f}</t>", "<t>ab[31mc\u{7f}</t>"),
            ("tab\tnew\nline\r", "tab\tnew\nline\r"),
            ("\u{fffe}x\u{ffff}\u{fffd}", "x\u{fffd}"),
            ("caf\u{e9} \u{20ac}", "caf\u{e9} \u{20ac}"),
        ] {
            assert_eq!(xml_chars(text.to_owned()), expected, "{text:?}");
        }
    }

    #[test]
    fn cdata_text_never_ends_its_section_early() {
        for (text, expected) in [
            ("<p>a & b</p>", "<p>a & b</p>"),
            ("x]]>y", "x]]]]><![CDATA[>y"),
            ("]]>]]>", "]]]]><![CDATA[>]]]]><![CDATA[>"),
            ("]] >", "]] >"),
            ("é]]>ü]]", "é]]]]><![CDATA[>ü]]"),
            ("", ""),
        ] {
            assert_eq!(cdata_text(text), expected, "{text:?}");
            // what an XML parser reads back: the sections' contents joined
            let read = format!("<![CDATA[{}]]>", cdata_text(text))
                .split("<![CDATA[")
                .flat_map(|part| part.split("]]>").next())
                .collect::<String>();
            assert_eq!(read, text);
        }
    }
}
