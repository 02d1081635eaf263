//! The blog's public site, mounted at `/`, in every language of the blog
//! under `/<lang_code>/`: published posts of that language, newest first,
//! each post's page with its readers' comments, and an Atom feed. `/`
//! sends a visitor to their language's home page; the addresses from
//! before languages (`/post/<slug>`, `/feed.xml`, `/about`) redirect
//! permanently to their language's. Shares the model, templates, login and
//! pages with `admin` through the `shared` crate.

use std::sync::Arc;

use app_api::{
    minijinja::{Value, context},
    prelude::*,
    sdk::session::csrf_protect,
};
use shared::{
    Audience, Site, auth,
    i18n::{self, tr},
    markdown::comment_html,
    model::{CommentInput, CommentLimit, Post, PublishedPost, Refusal},
};

/// Posts on one page of the home page.
pub const PER_PAGE: u32 = 10;

/// Posts in the feed.
const FEED_ENTRIES: u32 = 20;

/// Comments one client (an address; an IPv6 client's /64) may leave in ten
/// minutes: enough for a conversation, too few for a spam run.
pub const COMMENT_LIMIT: CommentLimit = CommentLimit {
    count: 5,
    window: 10 * 60,
};

/// Builds the app's routes for one mount.
pub fn build(mount: &Mount) -> Result<Router, Error> {
    let site = Site::open(mount, app_api::templates!("templates"))?;
    let (home, post, comment, feed, old_post) = (
        Arc::clone(&site),
        Arc::clone(&site),
        Arc::clone(&site),
        Arc::clone(&site),
        Arc::clone(&site),
    );
    let router = Router::new()
        .before_request(csrf_protect)
        .get("/", "root", to_visitors_language)
        .get("/hello", "hello", shared::pages::hello)
        .get("/<lang_code>/", "index", move |req: &Request| {
            index(&home, req)
        })
        .get("/<lang_code>/post/<slug>", "post", move |req: &Request| {
            show_post(&post, req, None)
        })
        .post(
            "/<lang_code>/post/<slug>/comments",
            "comment",
            move |req: &Request| add_comment(&comment, req),
        )
        .get("/<lang_code>/feed.xml", "feed", move |req: &Request| {
            atom_feed(&feed, req)
        })
        // the addresses from before the blog had languages
        .get("/post/<slug>", "old_post", move |req: &Request| {
            moved_post(&old_post, req)
        })
        .get("/feed.xml", "old_feed", |req: &Request| {
            moved(req, "feed", &[(i18n::PARAM, i18n::DEFAULT)])
        })
        .get("/about", "old_about", |req: &Request| {
            moved(req, "pages.about", &[]).map(vary_by_language)
        })
        .register(auth::blueprint(&site), "/<lang_code>")
        .register(shared::pages::blueprint(&site), "/<lang_code>")
        .error_handler(shared::pages::error_handler(&site))
        .register_error_handler(500, shared::pages::error_handler(&site));
    Ok(i18n::localise(router))
}

/// `Vary: Accept-Language`, for a response chosen by it.
fn vary_by_language(response: Response) -> Response {
    response.with_header("vary", "Accept-Language")
}

/// `/`: the home page in the visitor's language (`Accept-Language`, else
/// English).
fn to_visitors_language(req: &Request) -> Result<Response, Error> {
    let home = req.url_for("index", &[(i18n::PARAM, i18n::lang(req))])?;
    Ok(vary_by_language(Response::redirect(&home)))
}

/// `301 Moved Permanently` to `endpoint`.
fn moved(req: &Request, endpoint: &str, params: &[(&str, &str)]) -> Result<Response, Error> {
    Ok(Response::redirect_with(
        StatusCode::MOVED_PERMANENTLY,
        &req.url_for(endpoint, params)?,
    ))
}

/// The published post the request's `<slug>` names, else a 404 saying so
/// in the request's language.
fn requested_post(site: &Site, req: &Request) -> Result<PublishedPost, Error> {
    let lang = i18n::lang(req);
    let slug: &str = req.param("slug")?;
    site.blog
        .published_post(slug)?
        .ok_or_else(|| Error::not_found_with(tr(lang, "There is no post at this address.")))
}

/// `301` to the post's address in its own language.
fn to_its_language(req: &Request, post: &Post) -> Result<Response, Error> {
    moved(
        req,
        "post",
        &[(i18n::PARAM, &post.lang), ("slug", &post.slug)],
    )
}

/// `/post/<slug>`: moved to the post's language.
fn moved_post(site: &Site, req: &Request) -> Result<Response, Error> {
    to_its_language(req, &requested_post(site, req)?.post)
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
    let lang = i18n::lang(req);
    let page = page_number(req)?;
    let (posts, total) = site.blog.published_page(lang, page, PER_PAGE)?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    if page > pages {
        return Err(Error::not_found());
    }
    let posts: Vec<Value> = posts.into_iter().map(Value::from_object).collect();
    site.page(
        req,
        "home.html",
        context! { posts => posts, page => page, pages => pages },
    )
}

/// A refused comment, shown again in the post's form with why.
struct Refused<'a> {
    input: &'a CommentInput,
    reason: &'a str,
}

fn show_post(site: &Site, req: &Request, refused: Option<Refused<'_>>) -> Result<Response, Error> {
    let lang = i18n::lang(req);
    let PublishedPost {
        post,
        images,
        comments,
    } = requested_post(site, req)?;
    if post.lang != lang {
        return to_its_language(req, &post);
    }
    let body = site.bodies.to_html(&post.body);
    let comments: Vec<Value> = comments
        .iter()
        .map(|comment| {
            context! {
                author => comment.author,
                created_at => comment.created_at,
                html => Value::from_safe_string(comment_html(&comment.body)),
            }
        })
        .collect();
    let commenter = auth::current_user(site, &req.session())?;
    let (author, text, error) = match &refused {
        Some(refused) => (
            refused.input.author.as_str(),
            refused.input.body.as_str(),
            Some(refused.reason),
        ),
        None => ("", "", None),
    };
    site.page(
        req,
        "post.html",
        context! {
            body => Value::from_safe_string(body.to_string()),
            post => Value::from_object(post),
            images => images,
            comments => comments,
            commenter => commenter,
            author => author,
            text => text,
            error => error,
            one_language => true,
        },
    )
}

fn add_comment(site: &Site, req: &Request) -> Result<Response, Error> {
    let lang = i18n::lang(req);
    let post = requested_post(site, req)?.post;
    if post.lang != lang {
        // a comment is sent from its post's page: none is at this address
        return Err(Error::not_found_with(tr(
            lang,
            "There is no post at this address.",
        )));
    }
    let form = req.form();
    let user = auth::current_user(site, &req.session())?;
    let input = CommentInput {
        author: match &user {
            Some(user) => user.username.clone(),
            None => form.get("author").unwrap_or_default().to_owned(),
        },
        body: form.get("body").unwrap_or_default().to_owned(),
    };
    let address = auth::client_address(req);
    let user_id = user.as_ref().map(|user| user.id);
    match site
        .blog
        .add_comment(post.id, user_id, &input, &address, COMMENT_LIMIT)?
    {
        Ok(comment) => {
            app_api::tracing::info!(post = %post.slug, comment = comment.id, author = ?comment.author, "comment waits for approval");
            req.session().flash(tr(
                lang,
                "Thank you! Your comment will show here once it is approved.",
            ));
            let here = req.url_for("post", &[("slug", &post.slug)])?;
            Ok(Response::redirect_with(
                StatusCode::SEE_OTHER,
                &format!("{here}#comments"),
            ))
        }
        Err(refusal) => {
            let status = match refusal {
                Refusal::TooMany => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let reason = refusal.to_string();
            let refused = Refused {
                input: &input,
                reason: tr(lang, &reason),
            };
            Ok(show_post(site, req, Some(refused))?.with_status(status))
        }
    }
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
    let posts = site.blog.latest_posts(i18n::lang(req), FEED_ENTRIES)?;
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
    let xml = site.render(
        req,
        Audience::Anyone,
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
