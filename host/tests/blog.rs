//! The blog over real HTTP against the real host and the real `frontend`
//! and `admin` libraries: login and sessions, CSRF, uploads, posts,
//! escaping, 404s, persistence across restarts and concurrent use.

mod common;

use std::{path::Path, thread};

use common::{
    Host, Table,
    blog::{
        Client, PASSWORD, create_user, host_cmd, on_postgres, sample_png, set_cookie, site_sql,
        site_table, site_table_with,
    },
};
use serde_json::json;

/// A started blog with user `alice`.
fn blog() -> Host {
    let table = site_table();
    create_user(&table, "alice");
    Host::start(table)
}

fn admin_client(host: &Host) -> Client<'_> {
    let mut client = Client::new(host);
    let login = client.log_in("/admin", "alice", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text());
    client
}

#[test]
fn login_sets_a_signed_per_app_cookie_with_the_right_attributes() {
    let host = blog();
    let mut client = Client::new(&host);

    // the admin needs a login; the redirect keeps where the user was going
    let denied = client.get("/admin/posts/new?x=1");
    assert_eq!(denied.status, 303);
    assert_eq!(
        denied.header("location"),
        Some("/admin/en/login?next=%2Fadmin%2Fposts%2Fnew%3Fx%3D1")
    );

    let login = client.log_in("/admin", "alice", PASSWORD);
    assert_eq!(login.status, 303, "{}", client.host.log());
    assert_eq!(login.header("location"), Some("/admin/"));
    let cookie = set_cookie(&login, "admin_session");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP: no Secure flag: {cookie}"
    );
    let dashboard = client.get("/admin/");
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.text().contains("alice"));

    // the frontend's cookie covers the whole site
    let mut reader = Client::new(&host);
    let frontend_login = reader.log_in("", "alice", PASSWORD);
    assert_eq!(frontend_login.status, 303);
    assert_eq!(frontend_login.header("location"), Some("/en/"));
    let frontend_cookie = set_cookie(&frontend_login, "frontend_session");
    assert!(
        frontend_cookie.contains("Path=/;") || frontend_cookie.ends_with("Path=/"),
        "{frontend_cookie}"
    );
}

#[test]
fn bad_tampered_and_cross_app_cookies_mean_logged_out() {
    let host = blog();

    let mut wrong = Client::new(&host);
    let refused = wrong.log_in("/admin", "alice", "not the password");
    assert_eq!(refused.status, 200);
    assert!(refused.text().contains("Invalid username or password."));
    assert_eq!(
        wrong.get("/admin/").status,
        303,
        "a failed login logs nobody in"
    );
    let unknown = wrong.log_in("/admin", "mallory", PASSWORD);
    assert!(unknown.text().contains("Invalid username or password."));

    let mut client = admin_client(&host);
    let good = client.cookies["admin_session"].value.clone();

    // tampered: one character of the signed value changed
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let response = host.request(
        "GET",
        "/admin/",
        &[("Cookie", &format!("admin_session={tampered}"))],
        b"",
    );
    assert_eq!(response.status, 303, "a tampered cookie is no login");

    // the admin's cookie under the frontend's name: signed with another key
    let mut frontend = Client::new(&host);
    frontend.cookies.insert(
        "frontend_session".to_owned(),
        common::blog::StoredCookie {
            value: good.clone(),
            path: "/".to_owned(),
        },
    );
    let page = frontend.get("/en/login");
    assert_eq!(
        page.status, 200,
        "the frontend does not see a logged-in user"
    );
    assert!(page.text().contains("id=\"login\""));

    // logging in to the frontend leaves the admin session alone, and back
    let before = client.cookies["admin_session"].value.clone();
    let frontend_login = client.log_in("", "alice", PASSWORD);
    assert_eq!(frontend_login.status, 303);
    assert!(
        !frontend_login
            .headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("set-cookie")
                && value.starts_with("admin_session")),
        "the frontend never sets the admin's cookie"
    );
    assert_eq!(client.cookies["admin_session"].value, before);
    assert_eq!(client.get("/admin/").status, 200);

    // logging out of the admin ends only the admin session
    let token = client.csrf_token("/admin/en/logout");
    let logout = client.post_form("/admin/en/logout", &[("csrf_token", &token)]);
    assert_eq!(logout.status, 303);
    assert_eq!(logout.header("location"), Some("/admin/en/login"));
    assert_eq!(client.get("/admin/").status, 303);
    assert_eq!(
        client.get("/en/login").status,
        303,
        "still logged in to the frontend"
    );
}

#[test]
fn next_only_redirects_inside_the_mount() {
    let host = blog();
    for (next, expected) in [
        ("/admin/posts/new", "/admin/posts/new"),
        ("/admin/images?x=1", "/admin/images?x=1"),
        ("/", "/admin/"),
        ("//evil.example/", "/admin/"),
        ("https://evil.example/admin/", "/admin/"),
        ("/administrator", "/admin/"),
        ("/admin/../login", "/admin/"),
        ("/admin/\\evil", "/admin/"),
    ] {
        let mut client = Client::new(&host);
        let token = client.csrf_token("/admin/en/login");
        let login = client.post_form(
            "/admin/en/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", &token),
                ("next", next),
            ],
        );
        assert_eq!(login.status, 303);
        assert_eq!(login.header("location"), Some(expected), "next={next:?}");
    }
}

/// A blog behind a proxy at 127.0.0.1, so that clients can come from any
/// address, with users alice and bob.
fn blog_behind_proxy() -> (Table, Host) {
    let table = site_table_with(|value| value["trusted_proxies"] = json!(["127.0.0.1"]));
    create_user(&table, "alice");
    create_user(&table, "bob");
    let host = Host::start_on(&table);
    (table, host)
}

/// A client at `address`, through the proxy.
fn client_at<'h>(host: &'h Host, address: &str) -> Client<'h> {
    let mut client = Client::new(host);
    client.forwarded_for = Some(address.to_owned());
    client
}

#[test]
fn failed_logins_are_limited_per_address_and_per_username() {
    let (_table, host) = blog_behind_proxy();
    // one address trying many usernames
    let mut guesser = client_at(&host, "203.0.113.9");
    for n in 0..10 {
        let failed = guesser.log_in("/admin", &format!("user{n}"), "wrong password");
        assert_eq!(failed.status, 200, "attempt {n}");
    }
    let throttled = guesser.log_in("/admin", "alice", PASSWORD);
    assert_eq!(throttled.status, 429, "even the right password waits");
    let retry_after: u64 = throttled
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // an IPv6 subscriber's whole /64 is one address
    for n in 0..10 {
        let address = format!("2001:db8:1:2::{n:x}");
        let failed = client_at(&host, &address).log_in("/admin", &format!("v{n}"), "wrong");
        assert_eq!(failed.status, 200);
    }
    let same_64 = client_at(&host, "2001:db8:1:2:ffff::1").log_in("/admin", "x", "wrong");
    assert_eq!(same_64.status, 429);
    let next_64 = client_at(&host, "2001:db8:1:3::1").log_in("/admin", "x", "wrong");
    assert_eq!(next_64.status, 200);
    // one username tried from many addresses
    for n in 0..10 {
        let failed = client_at(&host, &format!("198.51.100.{n}")).log_in("/admin", "bob", "wrong");
        assert_eq!(failed.status, 200);
    }
    let bob = client_at(&host, "198.51.100.200").log_in("/admin", "bob", PASSWORD);
    assert_eq!(bob.status, 429);
    // the frontend's login shares the counts: it is the same account
    let bob = client_at(&host, "198.51.100.201").log_in("", "bob", PASSWORD);
    assert_eq!(bob.status, 429);
    // others are not affected
    let alice = client_at(&host, "192.0.2.1").log_in("/admin", "alice", PASSWORD);
    assert_eq!(alice.status, 303);
}

#[test]
fn parallel_guesses_cannot_overrun_the_limit() {
    let (_table, host) = blog_behind_proxy();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..30)
            .map(|n| {
                let host = &host;
                scope.spawn(move || {
                    client_at(host, &format!("198.51.100.{n}"))
                        .log_in("/admin", "alice", "wrong password")
                        .status
                })
            })
            .collect();
        guesses
            .into_iter()
            .map(|guess| guess.join().unwrap())
            .collect()
    });
    let checked = statuses.iter().filter(|&&status| status == 200).count();
    let refused = statuses.iter().filter(|&&status| status == 429).count();
    assert!((1..=10).contains(&checked), "{statuses:?}");
    assert_eq!(checked + refused, 30, "{statuses:?}");
}

#[test]
fn overlong_usernames_and_passwords_are_refused_unhashed_and_unrecorded() {
    let (table, host) = blog_behind_proxy();
    let long_name = "n".repeat(65);
    let long_password = "p".repeat(1025);
    for (username, password) in [(long_name.as_str(), "x"), ("alice", long_password.as_str())] {
        for _ in 0..12 {
            let refused = client_at(&host, "203.0.113.1").log_in("/admin", username, password);
            assert_eq!(refused.status, 400);
            assert!(
                refused.text().contains("at most 64 characters"),
                "{}",
                refused.text()
            );
        }
    }
    // none of them counted as a failure
    let alice = client_at(&host, "203.0.113.1").log_in("/admin", "alice", PASSWORD);
    assert_eq!(alice.status, 303);
    // nor reached the log
    let log = std::fs::read_to_string(table.dir.path().join("logs/app_admin.log")).unwrap();
    assert!(!log.contains(&long_name), "{log}");
}

#[test]
fn what_a_client_typed_cannot_forge_log_lines() {
    let (table, host) = blog_behind_proxy();
    let forged = "eve\n2026-01-01T00:00:00Z  INFO forged";
    let failed = client_at(&host, "203.0.113.1").log_in("/admin", forged, "wrong");
    assert_eq!(failed.status, 200);
    let log = host.wait_for_log("failed login");
    let file = std::fs::read_to_string(table.dir.path().join("logs/app_admin.log")).unwrap();
    for text in [&log, &file] {
        assert!(
            !text
                .lines()
                .any(|line| line.starts_with("2026-01-01T00:00:00Z")),
            "{text}"
        );
        assert!(text.contains("eve\\n2026"), "{text}");
    }
}

#[test]
fn every_post_needs_its_csrf_token() {
    let host = blog();
    let mut client = admin_client(&host);
    let fields = [("title", "Forged"), ("body", "x"), ("published", "1")];
    let missing = client.post_form("/admin/posts/new", &fields);
    assert_eq!(missing.status, 400);
    assert!(
        missing.text().contains("CSRF token is missing"),
        "{}",
        missing.text()
    );
    client.get("/admin/"); // a page with forms gives the session its token
    let mut wrong = fields.to_vec();
    wrong.push(("csrf_token", "forged-token"));
    let mismatched = client.post_form("/admin/posts/new", &wrong);
    assert_eq!(mismatched.status, 400);
    assert!(mismatched.text().contains("do not match"));
    // a token from another client's session does not work either
    let mut other = Client::new(&host);
    let foreign = other.csrf_token("/admin/en/login");
    let mut with_foreign = fields.to_vec();
    with_foreign.push(("csrf_token", &foreign));
    assert_eq!(
        client.post_form("/admin/posts/new", &with_foreign).status,
        400
    );
    // the login form checks it too
    let login = other.post_form(
        "/admin/en/login",
        &[("username", "alice"), ("password", PASSWORD)],
    );
    assert_eq!(login.status, 400);
    assert!(
        !client.get("/admin/").text().contains("Forged"),
        "nothing was created"
    );
    // and uploads
    let upload = client.post_multipart("/admin/images", &[], ("image", "a.png", &sample_png()));
    assert_eq!(upload.status, 400);
}

#[test]
fn uploads_are_checked_by_their_bytes_and_size_and_served_to_both_apps() {
    let host = blog();
    let mut client = admin_client(&host);
    let token = client.csrf_token("/admin/images");
    let fields = [("csrf_token", token.as_str())];

    let text = client.post_multipart(
        "/admin/images",
        &fields,
        ("image", "evil.png", b"<script>alert(1)</script>"),
    );
    assert_eq!(text.status, 415, "{}", text.text());
    assert!(text.text().contains("not a PNG, JPEG, GIF or WebP image"));

    let mut too_big = sample_png();
    too_big.resize(5 * 1024 * 1024 + 1, 0);
    let big = client.post_multipart("/admin/images", &fields, ("image", "big.png", &too_big));
    assert_eq!(big.status, 413, "{}", big.text());

    // a PNG named .txt is still a PNG
    let uploaded = client.post_multipart(
        "/admin/images",
        &fields,
        ("image", "photo.txt", &sample_png()),
    );
    assert_eq!(uploaded.status, 303, "{}", uploaded.text());
    let page = client.get("/admin/images");
    assert_eq!(page.status, 200, "{}", host.log());
    let page = page.text();
    let start = page
        .find("src=\"/admin/uploads/")
        .expect("the image is listed")
        + "src=\"/admin/uploads/".len();
    let name = page[start..].split('"').next().unwrap().to_owned();
    assert!(
        name.ends_with(".png") && name.len() == 36,
        "a random stored name: {name}"
    );
    assert!(page.contains("480×270"));

    for path in [format!("/admin/uploads/{name}"), format!("/uploads/{name}")] {
        let served = host.get(&path);
        assert_eq!(served.status, 200, "{path}");
        assert_eq!(served.header("content-type"), Some("image/png"));
        assert_eq!(served.body, sample_png());
        assert!(
            served
                .header("cache-control")
                .unwrap()
                .contains("max-age=31536000")
        );
    }
    assert_eq!(host.get("/uploads/../secret.key").status, 404);
    assert_eq!(host.get("/uploads/%2e%2e/secret.key").status, 404);
    assert_eq!(host.get("/uploads/nothing.png").status, 404);
}

#[test]
fn images_attach_in_order_and_cannot_be_deleted_while_attached() {
    let table = site_table();
    create_user(&table, "alice");
    let host = Host::start_on(&table);
    let uploads = table.dir.path().join("data/uploads");
    let mut client = admin_client(&host);
    let edit = client.create_post("With pictures", "", "Two pictures.", true);
    let post_id: String = edit
        .trim_start_matches("/admin/posts/")
        .trim_end_matches("/edit")
        .to_owned();
    let token = client.csrf_token(&edit);
    let session = client.cookies.clone();
    for name in ["first.png", "second.png"] {
        let upload = client.post_multipart(
            "/admin/images",
            &[("csrf_token", &token), ("attach_to", &post_id)],
            ("image", name, &sample_png()),
        );
        assert_eq!(upload.status, 303);
        assert_eq!(upload.header("location"), Some(edit.as_str()));
    }
    let order = || {
        let post = host.get("/en/post/with-pictures").text();
        let first = post.find("alt=\"first.png\"").expect("first image shown");
        let second = post.find("alt=\"second.png\"").expect("second image shown");
        first < second
    };
    assert!(order(), "in the order they were attached");

    // the second one moves up, then back down
    let edit_page = client.get(&edit).text();
    let move_marker = format!("/admin/posts/{post_id}/images/");
    let second_id = edit_page
        .match_indices(&move_marker)
        .map(|(at, _)| {
            edit_page[at + move_marker.len()..]
                .split('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .last()
        .unwrap();
    let moved = |direction: &str| {
        let mut client = Client::new(&host);
        client.cookies = session.clone();
        client.post_form(
            &format!("/admin/posts/{post_id}/images/{second_id}/move"),
            &[("csrf_token", &token), ("direction", direction)],
        )
    };
    // the home page shows a post's first image
    let home_thumb = || {
        let home = host.get("/en/").text();
        let card = &home[home.find("class=\"thumb\"").expect("a thumbnail")..];
        card.split("src=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let image_src = |alt: &str| {
        let post = host.get("/en/post/with-pictures").text();
        let at = post.find(&format!("alt=\"{alt}\"")).unwrap();
        let before = &post[..at];
        before[before.rfind("src=\"").unwrap() + 5..]
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(home_thumb(), image_src("first.png"));
    assert_eq!(moved("up").status, 303);
    assert!(!order(), "the second image is now first");
    assert_eq!(home_thumb(), image_src("second.png"));
    assert_eq!(moved("up").status, 303, "already first: nothing happens");
    assert!(!order());
    assert_eq!(moved("down").status, 303);
    assert!(order());
    assert_eq!(moved("sideways").status, 400);

    let edit_page = client.get(&edit).text();
    let detach_marker = format!("/admin/posts/{post_id}/images/");
    let image_id = edit_page[edit_page.find(&detach_marker).unwrap() + detach_marker.len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let refused = client.post_form(
        &format!("/admin/images/{image_id}/delete"),
        &[("csrf_token", &token)],
    );
    assert_eq!(refused.status, 409);
    assert!(refused.text().contains("detach it"));

    let detached = client.post_form(
        &format!("/admin/posts/{post_id}/images/{image_id}/detach"),
        &[("csrf_token", &token)],
    );
    assert_eq!(detached.status, 303);
    assert!(
        !host
            .get("/en/post/with-pictures")
            .text()
            .contains("alt=\"first.png\"")
    );
    assert_eq!(stored_files(&uploads).len(), 2);
    let deleted = client.post_form(
        &format!("/admin/images/{image_id}/delete"),
        &[("csrf_token", &token)],
    );
    assert_eq!(deleted.status, 303);
    assert_eq!(
        stored_files(&uploads).len(),
        1,
        "the stored file went with it"
    );
}

/// The files in the uploads folder.
fn stored_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn slugs_are_generated_unique_and_editable() {
    let host = blog();
    let mut client = admin_client(&host);
    client.create_post("Hello, World!", "", "one", true);
    client.create_post("Hello, World!", "", "two", true);
    assert!(
        host.get("/en/post/hello-world")
            .text()
            .contains("<p>one</p>")
    );
    assert!(
        host.get("/en/post/hello-world-2")
            .text()
            .contains("<p>two</p>")
    );

    let token = client.csrf_token("/admin/posts/new");
    let taken = client.post_form(
        "/admin/posts/new",
        &[
            ("title", "Another"),
            ("slug", "hello-world"),
            ("body", "kept text"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(taken.status, 409);
    let page = taken.text();
    assert!(page.contains("already used by another post"));
    assert!(page.contains("kept text"), "the form keeps what was typed");
    let bad = client.post_form(
        "/admin/posts/new",
        &[
            ("title", "Another"),
            ("slug", "Not A Slug"),
            ("body", ""),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(bad.status, 422);

    // editing a post to another's slug is refused; to a free one works
    let edit = client.create_post("Third", "", "three", true);
    let taken = client.post_form(
        &edit,
        &[
            ("title", "Third"),
            ("slug", "hello-world"),
            ("body", "three"),
            ("published", "1"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(taken.status, 409);
    let renamed = client.post_form(
        &edit,
        &[
            ("title", "Third"),
            ("slug", "the-third"),
            ("body", "three"),
            ("published", "1"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(renamed.status, 303);
    assert_eq!(host.get("/en/post/the-third").status, 200);
    assert_eq!(host.get("/en/post/third").status, 404);
}

#[test]
fn titles_are_escaped_and_markdown_is_sanitised() {
    let host = blog();
    let mut client = admin_client(&host);
    let body = "Some **bold** text.\n\n<script>alert('body')</script>\n\n<a href=\"javascript:alert(2)\">link</a>";
    client.create_post("<script>alert(1)</script>", "xss", body, true);
    for path in ["/en/", "/en/post/xss", "/admin/"] {
        let page = client.get(path).text();
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {page}"
        );
        assert!(!page.contains("<script>alert(1)"), "{path}");
    }
    let post = host.get("/en/post/xss").text();
    assert!(post.contains("<strong>bold</strong>"));
    let dashboard = client.get("/admin/").text();
    let edit_at = dashboard.find("/edit\"").expect("an edit link");
    let start = dashboard[..edit_at].rfind('"').unwrap() + 1;
    let editor = client
        .get(&dashboard[start..edit_at + "/edit".len()])
        .text();
    assert!(
        editor.contains("<h2>Preview</h2>"),
        "the editor previews the body"
    );
    assert!(editor.contains("<strong>bold</strong>") && !editor.contains("<script>alert('body')"));
    assert!(
        editor.contains("&lt;script&gt;alert(&#39;body&#39;)"),
        "the raw body is in the textarea, escaped"
    );
    assert!(!post.contains("<script>alert('body')"));
    assert!(!post.contains("javascript:"));
    let feed = host.get("/en/feed.xml");
    assert_eq!(
        feed.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    assert!(!feed.text().contains("<script>"), "{}", feed.text());
}

#[test]
fn unknown_and_unpublished_posts_are_proper_404_pages() {
    let host = blog();
    let mut client = admin_client(&host);
    client.create_post("Draft", "draft", "not yet", false);
    for path in [
        "/en/post/draft",
        "/en/post/nothing-here",
        "/no/such/page",
        "/en/?page=2",
        "/en/?page=x",
    ] {
        let response = host.get(path);
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let page = response.text();
        assert!(
            page.contains("<title>404 Not Found · The Blog</title>"),
            "{path}: {page}"
        );
        assert!(
            page.contains("href=\"/static/style.css\""),
            "in the site's layout"
        );
    }
    let admin_missing = client.get("/admin/posts/999/edit");
    assert_eq!(admin_missing.status, 404);
    assert!(admin_missing.text().contains("/admin/static/style.css"));
    // the draft is on the dashboard, not on the home page
    assert!(client.get("/admin/").text().contains("Draft"));
    assert!(!host.get("/en/").text().contains("Draft"));
}

#[test]
fn the_home_page_paginates_newest_first_and_the_feed_lists_posts() {
    let host = blog();
    let mut client = admin_client(&host);
    for number in 1..=12 {
        client.create_post(&format!("Post number {number}"), "", "text", true);
    }
    let first = host.get("/en/").text();
    assert_eq!(first.matches("class=\"post-card\"").count(), 10);
    assert!(first.find("Post number 12<").unwrap() < first.find("Post number 11<").unwrap());
    assert!(!first.contains("Post number 2<"));
    assert!(first.contains("href=\"/en/?page=2\""));
    let second = host.get("/en/?page=2").text();
    assert_eq!(second.matches("class=\"post-card\"").count(), 2);
    assert!(second.contains("Post number 1<") && second.contains("Post number 2<"));
    assert_eq!(host.get("/en/?page=3").status, 404);

    let feed = host.get("/en/feed.xml").text();
    assert!(feed.starts_with("<?xml"));
    assert_eq!(feed.matches("<entry>").count(), 12);
    assert_eq!(
        feed.matches("<content type=\"html\"><![CDATA[<p>text</p>\n]]></content>")
            .count(),
        12,
        "each entry carries its post's body as HTML"
    );
    assert!(feed.contains(&format!(
        "<id>http://{}/en/post/post-number-12</id>",
        host.addr
    )));

    // about comes from the shared blueprint in both apps
    assert!(
        host.get("/en/about")
            .text()
            .contains("through the frontend app")
    );
    assert!(
        client
            .get("/admin/en/about")
            .text()
            .contains("through the admin app")
    );
}

#[test]
fn posts_and_logins_survive_a_restart() {
    let table = site_table();
    create_user(&table, "alice");
    let cookie;
    {
        let host = Host::start_on(&table);
        let mut client = admin_client(&host);
        client.create_post("Still here", "", "after a restart", true);
        cookie = client.cookies["admin_session"].value.clone();
    }
    let host = Host::start_on(&table);
    assert!(host.get("/en/").text().contains("Still here"));
    assert!(
        host.get("/en/post/still-here")
            .text()
            .contains("after a restart")
    );
    let dashboard = host.request(
        "GET",
        "/admin/",
        &[("Cookie", &format!("admin_session={cookie}"))],
        b"",
    );
    assert_eq!(
        dashboard.status, 200,
        "the secret key persisted, so the session did"
    );
    let secret = table.dir.path().join("data/secret.key");
    if on_postgres() {
        // several hosts may share the database: the key is the table's
        // key file, and no host makes one of its own
        assert!(!secret.exists());
    } else {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&secret).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn concurrent_admin_writes_and_frontend_reads_all_succeed() {
    let host = blog();
    let mut client = admin_client(&host);
    let token = client.csrf_token("/admin/posts/new");
    let cookie = format!("admin_session={}", client.cookies["admin_session"].value);
    thread::scope(|scope| {
        let mut handles = Vec::new();
        for number in 0..20 {
            let (host, cookie, token) = (&host, &cookie, &token);
            handles.push(scope.spawn(move || {
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("title", format!("Concurrent {number}")),
                        ("body", format!("written by writer {number}")),
                        ("published", "1".to_owned()),
                        ("csrf_token", token.clone()),
                    ])
                    .finish();
                let response = host.request(
                    "POST",
                    "/admin/posts/new",
                    &[
                        ("Cookie", cookie),
                        ("Content-Type", "application/x-www-form-urlencoded"),
                    ],
                    body.as_bytes(),
                );
                (format!("write {number}"), response.status, response.text())
            }));
        }
        for number in 0..200 {
            let host = &host;
            handles.push(scope.spawn(move || {
                let path = match number % 3 {
                    0 => "/en/",
                    1 => "/en/feed.xml",
                    _ => "/en/?page=1",
                };
                let response = host.get(path);
                (format!("read {path}"), response.status, response.text())
            }));
        }
        for handle in handles {
            let (what, status, body) = handle.join().unwrap();
            assert!(status == 200 || status == 303, "{what}: {status} {body}");
        }
    });
    let dashboard = client.get("/admin/").text();
    for number in 0..20 {
        assert!(
            dashboard.contains(&format!("Concurrent {number}<")),
            "post {number} missing"
        );
    }
    assert!(!host.log().contains("ERROR"), "{}", host.log());
}

#[test]
fn import_post_adds_posts_from_markdown_files_or_none_on_a_bad_file() {
    let table = site_table();
    let write = |name: &str, text: &str| std::fs::write(table.dir.path().join(name), text).unwrap();
    write("first.md", "# First import\n\nSome **bold** text.\n");
    write("second.md", "\n# Second import\nMore.\n");
    write("untitled.md", "No heading here.\n");
    let stdout =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();

    // one bad file: nothing is imported
    let refused = host_cmd(
        &table,
        &["admin", "import-post", "first.md", "untitled.md"],
        "",
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("untitled.md: no title"),
        "{}",
        stderr(&refused)
    );
    let missing = host_cmd(&table, &["admin", "import-post", "nowhere.md"], "");
    assert!(
        stderr(&missing).contains("nowhere.md: "),
        "{}",
        stderr(&missing)
    );
    let usage = host_cmd(&table, &["admin", "import-post"], "");
    assert!(stderr(&usage).contains("usage: import-post"));

    let imported = host_cmd(
        &table,
        &["admin", "import-post", "first.md", "second.md"],
        "",
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(
        stdout(&imported).contains("first.md: published \"First import\" at /en/post/first-import")
    );
    assert!(
        stdout(&imported)
            .contains("second.md: published \"Second import\" at /en/post/second-import")
    );
    let drafted = host_cmd(&table, &["admin", "import-post", "--draft", "first.md"], "");
    assert!(
        stdout(&drafted).contains("drafted \"First import\" at /en/post/first-import-2"),
        "{}",
        stdout(&drafted)
    );

    let host = Host::start_on(&table);
    let home = host.get("/en/").text();
    assert_eq!(
        home.matches("class=\"post-card\"").count(),
        2,
        "the draft is not listed"
    );
    let post = host.get("/en/post/first-import");
    assert_eq!(post.status, 200);
    assert!(
        post.text()
            .contains("<p>Some <strong>bold</strong> text.</p>")
    );
    assert!(
        !post.text().contains("# First import"),
        "the title line is not in the body"
    );
    assert_eq!(host.get("/en/post/first-import-2").status, 404);
    assert_eq!(host.get("/en/post/untitled").status, 404);
}

#[test]
fn create_user_reads_the_password_from_stdin_and_refuses_duplicates() {
    let table = site_table();
    let list = host_cmd(&table, &["admin"], "");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains("create-user NAME"));
    let created = host_cmd(
        &table,
        &["admin", "create-user", "carol"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created user \"carol\""));
    let again = host_cmd(
        &table,
        &["admin", "create-user", "carol"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let short = host_cmd(&table, &["admin", "create-user", "dave"], "short\n");
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8 characters"));
    let no_input = host_cmd(&table, &["admin", "create-user", "erin"], "");
    assert!(String::from_utf8_lossy(&no_input.stderr).contains("standard input is closed"));
    let unknown = host_cmd(&table, &["admin", "drop-tables"], "");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no command named \"drop-tables\""));
    let no_mount = host_cmd(&table, &["nope", "create-user", "x"], "");
    assert!(String::from_utf8_lossy(&no_mount.stderr).contains("no mount named \"nope\""));

    let host = Host::start_on(&table);
    let mut client = Client::new(&host);
    assert_eq!(client.log_in("/admin", "carol", PASSWORD).status, 303);
}

#[test]
fn mounted_elsewhere_behind_a_tls_proxy_links_and_cookies_follow() {
    let table = site_table_with(|value| {
        value["trusted_proxies"] = serde_json::json!(["127.0.0.1"]);
        value["mounts"][0]["prefix"] = "/blog".into();
        value["mounts"][1]["prefix"] = "/manage".into();
    });
    create_user(&table, "alice");
    let host = Host::start_on(&table);
    let mut client = Client::new(&host);
    client.admin = "/manage".to_owned();
    let https = [("X-Forwarded-Proto", "https")];

    let denied = client.send("GET", "/manage/", &https, b"");
    assert_eq!(
        denied.header("location"),
        Some("/manage/en/login?next=%2Fmanage%2F")
    );
    let form = client.send("GET", "/manage/en/login", &https, b"");
    let token = common::blog::csrf_in(&form.text());
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .finish();
    let login = client.send(
        "POST",
        "/manage/en/login",
        &[
            https[0],
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    );
    assert_eq!(login.status, 303, "{}", login.text());
    assert_eq!(login.header("location"), Some("/manage/"));
    let cookie = set_cookie(&login, "admin_session");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("Path=/manage"), "{cookie}");

    let edit = client.create_post("Elsewhere", "", "body", true);
    assert!(edit.starts_with("/manage/posts/"), "{edit}");
    let token = client.csrf_token(&edit);
    let post_id = edit
        .trim_start_matches("/manage/posts/")
        .trim_end_matches("/edit")
        .to_owned();
    let uploaded = client.post_multipart(
        "/manage/images",
        &[("csrf_token", &token), ("attach_to", &post_id)],
        ("image", "a.png", &sample_png()),
    );
    assert_eq!(uploaded.status, 303, "{}", uploaded.text());

    let home = host.get("/blog/en/").text();
    for link in [
        "href=\"/blog/static/style.css\"",
        "href=\"/blog/en/feed.xml\"",
        "href=\"/blog/en/about\"",
        "href=\"/blog/en/post/elsewhere\"",
        "src=\"/blog/uploads/",
    ] {
        assert!(home.contains(link), "{link} in {home}");
    }
    let image = home
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(host.get(&image).status, 200, "{image}");
    assert!(
        host.get("/blog/en/post/elsewhere")
            .text()
            .contains("<h1>Elsewhere</h1>")
    );
    assert!(host.get("/blog/en/feed.xml").text().contains(&format!(
        "<id>http://{}/blog/en/post/elsewhere</id>",
        host.addr
    )));
}

#[test]
fn the_secret_from_the_environment_is_used_instead_of_the_file() {
    if on_postgres() {
        // Where the secret comes from does not depend on the engine; this
        // test moves the login by copying SQLite's files. On PostgreSQL
        // a host never makes a secret of its own: the refusal is tested
        // with the cluster (`cluster.rs`).
        return;
    }
    let key = "an-environment-secret-key-of-enough-length";
    let (first, second) = (site_table(), site_table());
    create_user(&first, "alice");
    create_user(&second, "alice");
    let env = [("RUST_LOG", "info"), ("HOST_SECRET_KEY", key)];
    let cookie = {
        let host = Host::start_with_env(&first, &env);
        admin_client(&host).cookies["admin_session"].value.clone()
    };
    let cookie = format!("admin_session={cookie}");
    // another site with its own secret.key file, same environment key, and
    // the same database (where the login is)
    let (from, to) = (
        first.dir.path().join("data"),
        second.dir.path().join("data"),
    );
    // (the first host was killed: the login may still be in the WAL)
    for file in ["app.db", "app.db-wal", "app.db-shm"] {
        let _ = std::fs::remove_file(to.join(file));
        if file != "app.db-shm" && from.join(file).exists() {
            std::fs::copy(from.join(file), to.join(file)).unwrap();
        }
    }
    let host = Host::start_with_env(&second, &env);
    assert_eq!(
        host.request("GET", "/admin/", &[("Cookie", &cookie)], b"")
            .status,
        200
    );
    drop(host);
    // without the environment key, each site's own file decides
    let host = Host::start_on(&second);
    assert_eq!(
        host.request("GET", "/admin/", &[("Cookie", &cookie)], b"")
            .status,
        303
    );
    drop(host);
    // a key too short to be safe is refused, naming the variable
    let host = Host::start_with_env(
        &second,
        &[("RUST_LOG", "info"), ("HOST_SECRET_KEY", "short")],
    );
    assert_eq!(host.get("/").status, 503);
    assert!(
        host.wait_for_log("HOST_SECRET_KEY is 5 bytes long")
            .contains("at least 32")
    );
}

#[test]
fn hosts_sharing_a_key_file_accept_each_others_cookies() {
    let shared = tempfile::tempdir().unwrap();
    let key_file = shared.path().join("cluster.key");
    std::fs::write(&key_file, "one key for every host of the cluster").unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // two hosts, each with its own data folder, on one database
    let site = |key: Option<&std::path::Path>| {
        let mut value = common::blog::site_table_value();
        value["databases"]["blog"]["url"] =
            format!("sqlite:{}", shared.path().join("blog.db").display()).into();
        if let Some(key) = key {
            value["secret_key_file"] = key.display().to_string().into();
        }
        common::Table::from_value(value)
    };
    let (a, b, alone) = (site(Some(&key_file)), site(Some(&key_file)), site(None));
    create_user(&a, "alice");
    let host_a = Host::start_on(&a);
    let cookie = format!(
        "admin_session={}",
        admin_client(&host_a).cookies["admin_session"].value
    );
    let host_b = Host::start_on(&b);
    let on_b = host_b.request("GET", "/admin/", &[("Cookie", &cookie)], b"");
    assert_eq!(on_b.status, 200, "logged in through A, served by B");
    // neither made a secret.key of its own
    for table in [&a, &b] {
        assert!(!table.dir.path().join("data/secret.key").exists());
    }
    // a host with its own data folder's key does not know the cookie
    let host_alone = Host::start_on(&alone);
    let elsewhere = host_alone.request("GET", "/admin/", &[("Cookie", &cookie)], b"");
    assert_eq!(elsewhere.status, 303);
}

#[test]
fn an_earlier_secret_as_a_fallback_keeps_logins_through_a_rotation() {
    let (old, new) = (
        "the-secret-key-before-the-rotation-0001",
        "the-secret-key-after-the-rotation-00002",
    );
    let table = site_table();
    create_user(&table, "alice");
    let dashboard =
        |host: &Host, cookie: &str| host.request("GET", "/admin/", &[("Cookie", cookie)], b"");
    let cookie = {
        let host = Host::start_with_env(&table, &[("HOST_SECRET_KEY", old)]);
        let value = admin_client(&host).cookies["admin_session"].value.clone();
        format!("admin_session={value}")
    };
    // a new key alone: everyone is logged out
    let host = Host::start_with_env(&table, &[("HOST_SECRET_KEY", new)]);
    assert_eq!(dashboard(&host, &cookie).status, 303);
    drop(host);
    // with the old key as a fallback: still logged in, and the cookie is
    // signed again with the new key
    let env = [
        ("HOST_SECRET_KEY", new),
        ("HOST_SECRET_KEY_FALLBACKS", &*format!(" {old} ,")),
    ];
    let host = Host::start_with_env(&table, &env);
    let page = dashboard(&host, &cookie);
    assert_eq!(page.status, 200);
    let resigned = set_cookie(&page, "admin_session");
    let resigned = resigned.split(';').next().unwrap().to_owned();
    assert_ne!(resigned, cookie);
    drop(host);
    // once the fallback goes, the re-signed cookie still works, the old not
    let host = Host::start_with_env(&table, &[("HOST_SECRET_KEY", new)]);
    assert_eq!(dashboard(&host, &resigned).status, 200);
    assert_eq!(dashboard(&host, &cookie).status, 303);
    drop(host);
    // a fallback too short to be a key is refused, naming the variable
    let host = Host::start_with_env(
        &table,
        &[
            ("RUST_LOG", "info"),
            ("HOST_SECRET_KEY", new),
            ("HOST_SECRET_KEY_FALLBACKS", &*format!("{old},short")),
        ],
    );
    assert_eq!(host.get("/").status, 503);
    assert!(
        host.wait_for_log("HOST_SECRET_KEY_FALLBACKS: key 2 is 5 bytes long")
            .contains("at least 32")
    );
}

#[test]
fn logging_out_ends_the_session_for_every_copy_of_its_cookie() {
    let host = blog();
    let mut browser = admin_client(&host);
    // someone copied the cookie
    let mut thief = Client::new(&host);
    thief.cookies = browser.cookies.clone();
    assert_eq!(thief.get("/admin/").status, 200);
    let token = browser.csrf_token("/admin/en/logout");
    let out = browser.post_form("/admin/en/logout", &[("csrf_token", &token)]);
    assert_eq!(out.status, 303);
    let denied = thief.get("/admin/");
    assert_eq!(denied.status, 303, "the copied cookie still works");
    assert!(
        denied
            .header("location")
            .unwrap()
            .starts_with("/admin/en/login")
    );
    // the login page does not greet the ended login's user
    let page = thief.get("/admin/en/login").text();
    assert!(!page.contains("alice"), "{page}");
}

#[test]
fn a_deleted_users_cookie_never_logs_in_the_next_user_given_its_id() {
    let table = site_table();
    create_user(&table, "mallory");
    let host = Host::start_on(&table);
    let mut old = Client::new(&host);
    assert_eq!(old.log_in("/admin", "mallory", PASSWORD).status, 303);
    assert_eq!(old.get("/admin/").status, 200);
    // mallory is deleted; the next user gets the same id (SQLite gives
    // the largest id again; PostgreSQL's identity is set back to it)
    let id = site_sql(&table, "SELECT id FROM users WHERE username = 'mallory'");
    site_sql(&table, &format!("DELETE FROM users WHERE id = {id}"));
    if on_postgres() {
        site_sql(
            &table,
            &format!("ALTER TABLE users ALTER COLUMN id RESTART WITH {id}"),
        );
    }
    create_user(&table, "newcomer");
    let reused = site_sql(&table, "SELECT id FROM users WHERE username = 'newcomer'");
    assert_eq!(reused, id, "the same id again (the premise of this test)");
    let denied = old.get("/admin/");
    assert_eq!(denied.status, 303, "the old cookie logged in the newcomer");
}
