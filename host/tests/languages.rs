//! The blog in two languages and its readers' comments, through the real
//! host and the real app libraries: `/` sends visitors to their language,
//! every page and feed is in one, old addresses move permanently; readers
//! comment, the admin approves, and only then does a comment show.

mod common;

use common::{
    Host, Table,
    blog::{Client, PASSWORD, create_user, csrf_in, site_table},
};

/// A blog with user `ed` logged in to the admin.
fn blog_with_editor(host: &Host) -> Client<'_> {
    let mut editor = Client::new(host);
    let login = editor.log_in("/admin", "ed", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text());
    editor
}

/// A blog with user `ed`, serving; the table keeps the host's folder.
fn started() -> (Table, Host) {
    let table = site_table();
    create_user(&table, "ed");
    let host = Host::start_on(&table);
    (table, host)
}

#[test]
fn the_root_sends_visitors_to_their_language_and_old_addresses_move() {
    let (_table, host) = started();
    let mut editor = blog_with_editor(&host);
    editor.create_post_in("nl", "Een wandeling", "een-wandeling", "Mooi.", true);
    for (accept, home) in [
        (None, "/en/"),
        (Some("nl-BE,nl;q=0.9,en;q=0.5"), "/nl/"),
        (Some("de, en;q=0.5"), "/en/"),
        (Some("de"), "/en/"),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Language", a)).into_iter().collect();
        let root = host.request("GET", "/", &headers, b"");
        assert_eq!(root.status, 302, "{accept:?}");
        assert_eq!(root.header("location"), Some(home), "{accept:?}");
        assert_eq!(root.header("vary"), Some("Accept-Language"));
    }
    // the addresses from before languages: permanently to their language's
    let post = host.get("/post/een-wandeling");
    assert_eq!(post.status, 301);
    assert_eq!(post.header("location"), Some("/nl/post/een-wandeling"));
    let feed = host.get("/feed.xml");
    assert_eq!(
        (feed.status, feed.header("location")),
        (301, Some("/en/feed.xml"))
    );
    let about = host.request("GET", "/about", &[("Accept-Language", "nl")], b"");
    assert_eq!(
        (about.status, about.header("location")),
        (301, Some("/nl/about"))
    );
    assert_eq!(host.get("/post/nothing-here").status, 404);
    // a post asked for in the other language moves to its own
    let other = host.get("/en/post/een-wandeling");
    assert_eq!(other.status, 301);
    assert_eq!(other.header("location"), Some("/nl/post/een-wandeling"));
    // a language the blog has not is no address, and nothing else is one
    for path in ["/de/", "/de/about", "/admin/de/login", "/favicon.ico"] {
        assert_eq!(host.get(path).status, 404, "{path}");
    }
    assert_eq!(host.get("/nl").status, 308, "a language without its slash");
}

#[test]
fn each_language_has_its_own_posts_feed_and_interface() {
    let (_table, host) = started();
    let mut editor = blog_with_editor(&host);
    editor.create_post_in("en", "A walk at sunrise", "a-walk", "Lovely.", true);
    editor.create_post_in("nl", "Een wandeling", "een-wandeling", "Mooi.", true);

    let english = host.get("/en/").text();
    assert!(english.contains("<html lang=\"en\">"), "{english}");
    assert!(english.contains("A walk at sunrise") && !english.contains("Een wandeling"));
    assert!(english.contains(">About</a>"));
    let dutch = host.get("/nl/").text();
    assert!(dutch.contains("<html lang=\"nl\">"), "{dutch}");
    assert!(dutch.contains("Een wandeling") && !dutch.contains("A walk at sunrise"));
    for text in ["Over", "Geserveerd door frontend.", "Nieuwste berichten"] {
        assert!(dutch.contains(text), "{text} in {dutch}");
    }
    // the switcher leads to the same page in the other language, and
    // search engines are told the alternates
    assert!(
        dutch.contains("href=\"/en/\" hreflang=\"en\" lang=\"en\" id=\"lang-en\""),
        "{dutch}"
    );
    let port = host.addr.port();
    for (code, path) in [("en", "/en/"), ("nl", "/nl/")] {
        let alternate = format!(
            "<link rel=\"alternate\" hreflang=\"{code}\" href=\"http://127.0.0.1:{port}{path}\">"
        );
        assert!(english.contains(&alternate), "{alternate} in {english}");
    }
    let about = host.get("/nl/about").text();
    assert!(
        about.contains("href=\"/en/about\" hreflang=\"en\""),
        "{about}"
    );
    // a post is in one language: the switcher leads to the other's home
    let post = host.get("/nl/post/een-wandeling").text();
    assert!(post.contains("<article class=\"post prose\" lang=\"nl\">"));
    assert!(post.contains("href=\"/en/\" hreflang=\"en\""), "{post}");
    assert!(!post.contains("rel=\"alternate\" hreflang"), "{post}");
    assert!(post.contains("Laat een reactie achter"), "{post}");

    // each language's feed holds its own posts
    let feed = host.get("/nl/feed.xml").text();
    assert!(feed.contains("xml:lang=\"nl\"") && feed.contains("<title>Een wandeling</title>"));
    assert!(!feed.contains("A walk at sunrise"), "{feed}");
    assert!(feed.contains(&format!("http://127.0.0.1:{port}/nl/post/een-wandeling")));

    // the shared blueprints under /<lang_code> in both apps, as in the
    // Flask setup: /en/login, /admin/nl/login
    let login = host.get("/admin/nl/login").text();
    assert!(
        login.contains("<h1>Inloggen</h1>") && login.contains("Wachtwoord"),
        "{login}"
    );
    assert!(host.get("/en/login").text().contains("<h1>Log in</h1>"));
    // a failed login says why in the page's language
    let mut dutch_reader = Client::new(&host);
    let token = dutch_reader.csrf_token("/admin/nl/login");
    let failed = dutch_reader.post_form(
        "/admin/nl/login",
        &[
            ("username", "ed"),
            ("password", "wrong password"),
            ("csrf_token", &token),
        ],
    );
    assert!(
        failed.text().contains("Onjuiste gebruikersnaam"),
        "{}",
        failed.text()
    );
    // an unknown address's page speaks the visitor's language
    let missing = host.request("GET", "/nl/post/nothing", &[], b"");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("Op dit adres staat geen bericht."),
        "{}",
        missing.text()
    );
    // the admin's pages outside /<lang_code> link the shared pages in the
    // visitor's language
    let dashboard = editor
        .send("GET", "/admin/", &[("Accept-Language", "nl")], b"")
        .text();
    assert!(
        dashboard.contains("href=\"/admin/nl/about\""),
        "{dashboard}"
    );
}

/// The comment form's token on a post's page, for `client`.
fn comment_token(client: &mut Client, post: &str) -> String {
    let page = client.get(post);
    assert_eq!(page.status, 200, "{}", page.text());
    csrf_in(&page.text())
}

#[test]
fn readers_comment_and_comments_show_once_approved() {
    let (_table, host) = started();
    let mut editor = blog_with_editor(&host);
    editor.create_post("A walk at sunrise", "a-walk", "Lovely.", true);
    let post = "/en/post/a-walk";

    let mut reader = Client::new(&host);
    let token = comment_token(&mut reader, post);
    let text = "Great <script>alert(1)</script> walk, see [my site](https://spam.example/).";
    let sent = reader.post_form(
        "/en/post/a-walk/comments",
        &[
            ("author", "Ann <b>"),
            ("body", text),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(sent.status, 303, "{}", sent.text());
    assert_eq!(sent.header("location"), Some("/en/post/a-walk#comments"));
    let after = reader.get(post).text();
    assert!(after.contains("once it is approved"), "the flash: {after}");
    assert!(!after.contains("Great"), "waits for approval: {after}");
    assert!(host.get(post).text().contains("No comments yet."));

    // the admin sees it waiting, on the dashboard and in the queue
    let dashboard = editor.get("/admin/").text();
    assert!(
        dashboard.contains("1 comment waiting for approval"),
        "{dashboard}"
    );
    let queue = editor.get("/admin/comments").text();
    assert!(queue.contains("Ann &lt;b&gt;"), "{queue}");
    let id = queue
        .split("id=\"comment-")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the comment is listed")
        .to_owned();
    let token = csrf_in(&queue);
    // approving needs the form's token
    let forged = editor.post_form(&format!("/admin/comments/{id}/approve"), &[]);
    assert_eq!(forged.status, 400);
    let approved = editor.post_form(
        &format!("/admin/comments/{id}/approve"),
        &[("csrf_token", &token)],
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    assert!(
        !editor
            .get("/admin/")
            .text()
            .contains("waiting for approval")
    );

    // shown, escaped, its link vouching for nothing
    let page = host.get(post).text();
    assert!(
        page.contains("<strong class=\"author\">Ann &lt;b&gt;</strong>"),
        "{page}"
    );
    assert!(
        page.contains("Great &lt;script&gt;alert(1)&lt;/script&gt; walk"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("<a href=\"https://spam.example/\" rel=\"nofollow ugc\">my site</a>"),
        "{page}"
    );

    // a logged-in reader comments under their own name
    let mut ed_reader = Client::new(&host);
    assert_eq!(ed_reader.log_in("", "ed", PASSWORD).status, 303);
    let form = ed_reader.get(post).text();
    assert!(form.contains("Commenting as ed."), "{form}");
    assert!(!form.contains("name=\"author\""), "{form}");
    let token = csrf_in(&form);
    let signed = ed_reader.post_form(
        "/en/post/a-walk/comments",
        &[
            ("author", "Someone Else"),
            ("body", "From the author."),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(signed.status, 303, "{}", signed.text());
    let queue = editor.get("/admin/comments").text();
    assert!(
        queue.contains("<strong class=\"author\">ed</strong>"),
        "{queue}"
    );
    assert!(!queue.contains("Someone Else"), "{queue}");
    // deleting one takes it out of the queue for good
    let id = queue
        .split("id=\"comment-")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let deleted = editor.post_form(
        &format!("/admin/comments/{id}/delete"),
        &[("csrf_token", &csrf_in(&queue))],
    );
    assert_eq!(deleted.status, 303);
    assert!(
        editor
            .get("/admin/comments")
            .text()
            .contains("No comments are waiting.")
    );
    assert!(!host.get(post).text().contains("From the author."));
    // the queue is the admin's only
    let anonymous = host.get("/admin/comments");
    assert_eq!(anonymous.status, 303);
}

#[test]
fn comments_need_a_token_a_name_and_a_text_and_are_limited_per_address() {
    let (_table, host) = started();
    let mut editor = blog_with_editor(&host);
    editor.create_post("A walk at sunrise", "a-walk", "Lovely.", true);
    editor.create_post("A draft", "a-draft", "Hidden.", false);
    let mut reader = Client::new(&host);
    let token = comment_token(&mut reader, "/en/post/a-walk");
    let send = |reader: &mut Client, fields: &[(&str, &str)]| {
        reader.post_form("/en/post/a-walk/comments", fields)
    };

    let forged = send(&mut reader, &[("author", "Eve"), ("body", "spam")]);
    assert_eq!(forged.status, 400, "no token");
    let nameless = send(
        &mut reader,
        &[("author", " "), ("body", "Hi"), ("csrf_token", &token)],
    );
    assert_eq!(nameless.status, 422);
    assert!(
        nameless.text().contains("Sign your comment with a name"),
        "{}",
        nameless.text()
    );
    let long = "x".repeat(4001);
    let too_long = send(
        &mut reader,
        &[("author", "Ann"), ("body", &long), ("csrf_token", &token)],
    );
    assert_eq!(too_long.status, 422);
    // what was typed stays in the form
    let empty = send(
        &mut reader,
        &[("author", "Ann"), ("body", ""), ("csrf_token", &token)],
    );
    assert!(empty.text().contains("value=\"Ann\""), "{}", empty.text());
    // no comments on drafts or on posts that are not there
    for path in [
        "/en/post/a-draft/comments",
        "/en/post/nothing/comments",
        "/nl/post/a-walk/comments",
    ] {
        let refused = reader.post_form(
            path,
            &[("author", "Ann"), ("body", "Hi"), ("csrf_token", &token)],
        );
        assert_eq!(refused.status, 404, "{path}");
    }

    // five from one address in ten minutes, then 429, in the page's language
    for n in 1..=5 {
        let body = format!("Comment {n}");
        let sent = send(
            &mut reader,
            &[("author", "Ann"), ("body", &body), ("csrf_token", &token)],
        );
        assert_eq!(sent.status, 303, "comment {n}: {}", sent.text());
    }
    let sixth = send(
        &mut reader,
        &[("author", "Ann"), ("body", "Six"), ("csrf_token", &token)],
    );
    assert_eq!(sixth.status, 429, "{}", sixth.text());
    assert!(sixth.text().contains("wait a while"), "{}", sixth.text());
    let queue = editor.get("/admin/comments").text();
    assert_eq!(
        queue.matches("class=\"card comment\"").count(),
        5,
        "{queue}"
    );
}
