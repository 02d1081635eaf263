//! The blog in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`; `.ci/run`
//! installs them). Logs in to the admin, writes a post, uploads and attaches
//! an image, publishes, writes a post in Dutch, reads the first on the
//! frontend with the image really decoded, comments on it, approves the
//! comment in the admin and sees it, switches the site to Dutch and back,
//! logs out. Screenshots of each step land in `target/screenshots/`.

mod common;

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    Host,
    blog::{PASSWORD, create_user, site_table},
    target_dir, workspace_root,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    fn start() -> Driver {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run chromedriver ({error}): install Debian's chromium and chromium-driver \
                     (`apt-get install chromium chromium-driver`; .ci/run does)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, addr }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1200,900",
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://{}", driver.addr))
        .await
        .expect("a Chromium session through chromedriver")
}

fn screenshots() -> PathBuf {
    let folder = target_dir().join("screenshots");
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// The path of the current page, with its query.
async fn current_path(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `naturalWidth` of every image on the page, once each has loaded or
/// failed.
async fn image_widths(client: &Client) -> Vec<u64> {
    let widths = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             Promise.all(Array.from(document.images).map(img => img.complete
                 ? Promise.resolve()
                 : new Promise(ok => { img.onload = ok; img.onerror = ok; })))
               .then(() => done(Array.from(document.images).map(img => img.naturalWidth)));",
            vec![],
        )
        .await
        .unwrap();
    widths
        .as_array()
        .unwrap()
        .iter()
        .map(|width| width.as_u64().unwrap())
        .collect()
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css}: {error}"))
        .click()
        .await
        .unwrap();
}

/// Clicks what loads a new page (a link, a form's button) and waits until
/// the old page is gone and the new one has loaded, so that nothing is read
/// from the old page (whose elements would look like the new page's).
async fn click_and_load(client: &Client, css: &str) {
    let old_page = client.find(Locator::Css("html")).await.unwrap();
    click(client, css).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while old_page.tag_name().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "clicking {css} loaded no new page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .wait()
        .for_element(Locator::Css("footer.site-footer"))
        .await
        .unwrap();
}

/// Saves a screenshot of the page as `name` in `shots`.
async fn shot(client: &Client, shots: &std::path::Path, name: &str) {
    std::fs::write(shots.join(name), client.screenshot().await.unwrap()).unwrap();
}

/// Scrolls the element into view, for a screenshot that shows it.
async fn scroll_to(client: &Client, css: &str) {
    client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView();",
            vec![json!(css)],
        )
        .await
        .unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_writes_a_post_with_an_image_and_readers_see_it() {
    let table = site_table();
    create_user(&table, "alice");
    let host = Host::start_on(&table);
    let base = format!("http://{}", host.addr);
    let driver = Driver::start();
    let client = browser(&driver).await;
    let shots = screenshots();

    // the admin sends a stranger to its login page, remembering the way back
    client.goto(&format!("{base}/admin/")).await.unwrap();
    assert_eq!(
        current_path(&client).await,
        "/admin/en/login?next=%2Fadmin%2F"
    );
    fill(&client, "#username", "alice").await;
    fill(&client, "#password", PASSWORD).await;
    click_and_load(&client, "#login").await;
    client
        .wait()
        .for_element(Locator::Css("#new-post"))
        .await
        .unwrap();
    assert_eq!(current_path(&client).await, "/admin/");

    // write a draft
    click_and_load(&client, "#new-post").await;
    fill(&client, "#title", "A walk at sunrise").await;
    fill(
        &client,
        "#body",
        "The light came **slowly** over the hills.\n\n- coffee\n- a coat",
    )
    .await;
    click_and_load(&client, "#save").await;
    client
        .wait()
        .for_element(Locator::Css(".images-of-post"))
        .await
        .unwrap();
    let edit_page = current_path(&client).await;
    assert!(
        edit_page.starts_with("/admin/posts/") && edit_page.ends_with("/edit"),
        "{edit_page}"
    );
    assert_eq!(
        text_of(&client, ".flash").await,
        "Created \u{201c}A walk at sunrise\u{201d}."
    );

    // upload an image on the images page
    click_and_load(&client, "nav a[href='/admin/images']").await;
    let picture = workspace_root().join("testdata/images/sunrise.png");
    client
        .find(Locator::Css("#image-file"))
        .await
        .unwrap()
        .send_keys(&picture.display().to_string())
        .await
        .unwrap();
    click_and_load(&client, "#upload").await;
    client
        .wait()
        .for_element(Locator::Css(".image-grid img"))
        .await
        .unwrap();
    assert_eq!(text_of(&client, ".flash").await, "Uploaded the image.");
    assert_eq!(image_widths(&client).await, vec![480]);

    // attach it to the post and publish
    client.goto(&format!("{base}{edit_page}")).await.unwrap();
    click_and_load(&client, "#attach").await;
    client
        .wait()
        .for_element(Locator::Css(".attached-image"))
        .await
        .unwrap();
    click(&client, "#published").await;
    click_and_load(&client, "#save").await;
    client
        .wait()
        .for_element(Locator::Css(".flash"))
        .await
        .unwrap();
    assert_eq!(
        text_of(&client, ".flash").await,
        "Saved \u{201c}A walk at sunrise\u{201d}."
    );

    // a post in Dutch, for the Dutch home page
    client.goto(&format!("{base}/admin/")).await.unwrap();
    click_and_load(&client, "#new-post").await;
    fill(&client, "#title", "Een wandeling bij zonsopgang").await;
    click(&client, "#lang option[value='nl']").await;
    fill(
        &client,
        "#body",
        "Het licht kwam *langzaam* over de heuvels.",
    )
    .await;
    click(&client, "#published").await;
    click_and_load(&client, "#save").await;
    client
        .wait()
        .for_element(Locator::Css(".flash"))
        .await
        .unwrap();

    client.goto(&format!("{base}/admin/")).await.unwrap();
    assert!(text_of(&client, "table.posts").await.contains("published"));
    assert!(text_of(&client, "table.posts").await.contains("nl"));
    shot(&client, &shots, "admin-dashboard.png").await;

    // readers see it on the home page, with its image decoded; `/` leads
    // to the browser's language, English here
    client.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(current_path(&client).await, "/en/");
    assert_eq!(text_of(&client, ".post-card h2").await, "A walk at sunrise");
    assert_eq!(
        image_widths(&client).await,
        vec![480],
        "the thumbnail loaded"
    );
    shot(&client, &shots, "home.png").await;

    // and on its own page
    click_and_load(&client, ".post-card h2 a").await;
    client
        .wait()
        .for_element(Locator::Css("article.post"))
        .await
        .unwrap();
    assert_eq!(current_path(&client).await, "/en/post/a-walk-at-sunrise");
    assert_eq!(
        text_of(&client, "article.post h1").await,
        "A walk at sunrise"
    );
    assert!(
        text_of(&client, "article.post")
            .await
            .contains("The light came slowly over the hills.")
    );
    let widths = image_widths(&client).await;
    assert!(
        !widths.is_empty() && widths.iter().all(|width| *width > 0),
        "{widths:?}"
    );
    shot(&client, &shots, "post.png").await;

    // a reader comments; the comment waits for approval
    fill(&client, "#comment-author", "Ann").await;
    fill(
        &client,
        "#comment-body",
        "What a *lovely* walk. <b>Really</b>.",
    )
    .await;
    click_and_load(&client, "#comment-submit").await;
    assert_eq!(
        text_of(&client, ".flash").await,
        "Thank you! Your comment will show here once it is approved."
    );
    assert!(client.find(Locator::Css("article.comment")).await.is_err());
    scroll_to(&client, "#comments").await;
    shot(&client, &shots, "comment-waiting.png").await;

    // the admin approves it from the dashboard's notice
    client.goto(&format!("{base}/admin/")).await.unwrap();
    assert_eq!(
        text_of(&client, "#waiting-comments").await,
        "1 comment waiting for approval"
    );
    click_and_load(&client, "#waiting-comments").await;
    assert!(text_of(&client, ".moderation").await.contains("Ann"));
    shot(&client, &shots, "admin-comments.png").await;
    click_and_load(&client, "button.approve").await;
    assert_eq!(
        text_of(&client, ".flash").await,
        "Approved the comment: it shows under its post."
    );

    // and readers see it, its markup as text
    client
        .goto(&format!("{base}/en/post/a-walk-at-sunrise"))
        .await
        .unwrap();
    assert_eq!(text_of(&client, "article.comment .author").await, "Ann");
    assert_eq!(
        text_of(&client, "article.comment .comment-body em").await,
        "lovely"
    );
    assert!(
        text_of(&client, "article.comment .comment-body")
            .await
            .contains("<b>Really</b>")
    );
    scroll_to(&client, "#comments").await;
    shot(&client, &shots, "post-with-comment.png").await;

    // the switcher: the Dutch home page has the Dutch post, in Dutch
    click_and_load(&client, "#lang-nl").await;
    assert_eq!(current_path(&client).await, "/nl/");
    assert_eq!(
        client
            .find(Locator::Css("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap()
            .as_deref(),
        Some("nl")
    );
    assert_eq!(
        text_of(&client, ".post-card h2").await,
        "Een wandeling bij zonsopgang"
    );
    assert_eq!(text_of(&client, "nav a[href='/nl/about']").await, "Over");
    shot(&client, &shots, "home-nl.png").await;
    click_and_load(&client, "#lang-en").await;
    assert_eq!(current_path(&client).await, "/en/");
    assert_eq!(text_of(&client, ".post-card h2").await, "A walk at sunrise");

    // log out; the admin sends the browser back to its login page
    client.goto(&format!("{base}/admin/")).await.unwrap();
    click_and_load(&client, "#logout").await;
    client
        .wait()
        .for_element(Locator::Css("#login"))
        .await
        .unwrap();
    client.goto(&format!("{base}/admin/")).await.unwrap();
    assert_eq!(
        current_path(&client).await,
        "/admin/en/login?next=%2Fadmin%2F"
    );
    assert!(client.find(Locator::Css("#password")).await.is_ok());

    client.close().await.unwrap();
}
