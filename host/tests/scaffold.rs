//! The README's "Write your own app" steps, run exactly, on a copy of the
//! workspace: a section scaffolded in the workspace and one in its own
//! repository beside it, their unit tests, serving both with reload beside
//! the blog on a data folder that already holds blog data; an edit to a
//! template goes live without a manual restart, and the other section's
//! rows survive that restart. Then the outside section shares the blog's
//! database, listed first and last, and a changed migration is refused.

mod common;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::{Host, Table, blog::csrf_in, copy_folder};
use serde_json::json;

/// Copies the files git tracks (plus uncommitted ones) into `to`.
fn copy_workspace(from: &Path, to: &Path) {
    let listed = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(from)
        .output()
        .expect("git runs");
    assert!(listed.status.success(), "git ls-files failed");
    for file in String::from_utf8(listed.stdout).unwrap().lines() {
        let source = from.join(file);
        if !source.is_file() {
            continue;
        }
        let target = to.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
}

fn cargo(workspace: &Path, target: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(args)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUST_LOG");
    command
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `cargo ARGS` in the app's own folder, building into its own target
/// folder as an author's would.
fn cargo_outside(app: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(args)
        .current_dir(app)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn get(addr: SocketAddr, path: &str, cookie: &str) -> common::HttpResponse {
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    common::send_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n")
            .as_bytes(),
        false,
    )
}

/// Adds an entry through the guestbook's form at `prefix`, as a browser
/// would: the page gives the session cookie and the form's CSRF token.
fn add_entry(addr: SocketAddr, prefix: &str, message: &str) {
    let page = get(addr, &format!("{prefix}/"), "");
    assert_eq!(page.status, 200, "{}", page.text());
    let cookie = page
        .header("set-cookie")
        .and_then(|value| value.split(';').next())
        .unwrap()
        .to_owned();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("author", "Ann")
        .append_pair("message", message)
        .append_pair("csrf_token", &csrf_in(&page.text()))
        .finish();
    let posted = common::send_raw(
        addr,
        format!(
            "POST {prefix}/ HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
        false,
    );
    assert_eq!(posted.status, 303, "{}", posted.text());
    assert_eq!(
        posted.header("location"),
        Some(format!("{prefix}/").as_str())
    );
}

fn blog_data() -> std::path::PathBuf {
    common::workspace_root().join("testdata/legacy-1.0/data")
}

#[test]
fn the_readme_steps_make_sections_in_the_workspace_and_in_their_own_repository() {
    let temp = tempfile::tempdir().unwrap();
    let workspace = temp.path().join("site");
    copy_workspace(&common::workspace_root(), &workspace);
    // share compiled dependencies with the main build
    let target = common::host_binary()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();

    // 1. cargo xtask new-app reports --prefix /reports
    let created = cargo(
        &workspace,
        &target,
        &["xtask", "new-app", "reports", "--prefix", "/reports"],
    )
    .output()
    .unwrap();
    let out = said(&created);
    assert!(created.status.success(), "{out}");
    assert!(out.contains("created apps/reports"), "{out}");
    assert!(
        out.contains(r#"added to plugins.json: {"name":"reports","prefix":"/reports","library":"apps/libreports.so","static_folder":"shared/static"}"#),
        "{out}"
    );

    // 2. cargo test -p reports
    let tested = cargo(&workspace, &target, &["test", "-p", "reports"])
        .output()
        .unwrap();
    let out = said(&tested);
    assert!(tested.status.success(), "{out}");
    for test in [
        "test tests::an_entry_added_with_the_form_is_listed_and_served_as_json ... ok",
        "test tests::a_form_without_its_csrf_token_is_refused ... ok",
    ] {
        assert!(out.contains(test), "{out}");
    }

    // 3. cargo xtask new-app guestbook --prefix /guestbook --path ../guestbook
    let created = cargo(
        &workspace,
        &target,
        &[
            "xtask",
            "new-app",
            "guestbook",
            "--prefix",
            "/guestbook",
            "--path",
            "../guestbook",
        ],
    )
    .output()
    .unwrap();
    let out = said(&created);
    assert!(created.status.success(), "{out}");
    assert!(
        out.contains("created ../guestbook: Cargo.toml, Cargo.lock, src/lib.rs"),
        "{out}"
    );
    assert!(
        out.contains("then run: cd ../guestbook && cargo test && cargo build --release && cp target/release/libguestbook.so ../site/apps/"),
        "{out}"
    );
    let guestbook = temp.path().join("guestbook");
    let manifest = std::fs::read_to_string(guestbook.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"app-api = { version = "3.0.0", path = "../site/app-api" }"#),
        "{manifest}"
    );
    assert!(
        !manifest.contains("abi_stable"),
        "the app names app-api only"
    );

    // 4. cd ../guestbook && cargo test && cargo build --release
    let tested = cargo_outside(&guestbook, &["test"]);
    let out = said(&tested);
    assert!(tested.status.success(), "{out}");
    assert!(
        out.contains(
            "test tests::an_entry_added_with_the_form_is_listed_and_served_as_json ... ok"
        ),
        "{out}"
    );
    let built = cargo_outside(&guestbook, &["build", "--release"]);
    assert!(built.status.success(), "{}", said(&built));
    // 5. cp target/release/libguestbook.so ../site/apps/
    let library = workspace.join("apps/libguestbook.so");
    std::fs::copy(guestbook.join("target/release/libguestbook.so"), &library).unwrap();

    // a site that already holds the blog's data
    copy_folder(&blog_data(), &workspace.join("data"));

    // 6. cargo xtask serve --reload (on a free port instead of 5000)
    let mut serving = cargo(
        &workspace,
        &target,
        &["xtask", "serve", "--reload", "--listen", "127.0.0.1:0"],
    );
    serving
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = serving.spawn().unwrap();
    let group = child.id();
    let stderr = child.stderr.take().unwrap();
    let (found, address) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(addr) = line.split("listening on http://").nth(1) {
                let _ = found.send(Ok(addr.trim().to_owned()));
            }
        }
        let _ = found.send(Err(seen));
    });
    let addr = match address.recv_timeout(Duration::from_secs(900)) {
        Ok(Ok(addr)) => addr.parse().unwrap(),
        Ok(Err(log)) => panic!("cargo xtask serve ended without serving:\n{log}"),
        Err(_) => panic!("cargo xtask serve did not start serving in time"),
    };

    // 7. curl http://127.0.0.1:5000/reports/ and the guestbook's form
    let page = get(addr, "/reports/", "");
    let html = page.text();
    add_entry(addr, "/guestbook", "Written before the reload");
    let home = get(addr, "/en/", "").text();

    // An edit to the template goes live: the SDK reads templates from disk
    // under --reload (and xtask rebuilds and reinstalls the library too).
    let template = workspace.join("apps/reports/templates/index.html");
    let edited = std::fs::read_to_string(&template)
        .unwrap()
        .replace("<h1>{{ app_name }}</h1>", "<h1>{{ app_name }}, edited</h1>");
    std::fs::write(&template, edited).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let mut reloaded = false;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if get(addr, "/reports/", "")
            .text()
            .contains("<h1>reports, edited</h1>")
        {
            reloaded = true;
            break;
        }
    }
    let after_reload = get(addr, "/guestbook/", "").text();

    let _ = Command::new("kill")
        .args(["-s", "TERM", "--", &format!("-{group}")])
        .status();
    let _ = child.wait();
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(html.contains("<h1>reports</h1>"), "{html}");
    assert!(
        html.contains(&format!("served at <code>http://{addr}/reports/</code>")),
        "{html}"
    );
    assert!(
        html.contains("href=\"/reports/static/style.css\""),
        "{html}"
    );
    assert!(home.contains("Hello, World!"), "the blog's posts: {home}");
    assert!(reloaded, "the edited template never went live");
    assert!(
        after_reload.contains("Written before the reload"),
        "the guestbook's rows survive the restart: {after_reload}"
    );
    assert!(
        workspace.join("data/guestbook.db").is_file(),
        "its own database"
    );

    // 8. The guestbook sharing the blog's database, listed first and last,
    // on the blog's data: the namespaces never interfere.
    let static_folder = common::workspace_root().join("shared/static");
    let blog_mount = |name: &str, prefix: &str| {
        json!({"name": name, "prefix": prefix, "library": common::library(name),
               "static_folder": static_folder, "databases": ["blog"]})
    };
    let guestbook_mount = json!({"name": "guestbook", "prefix": "/guestbook",
                                 "library": library, "databases": ["blog"]});
    for guestbook_first in [true, false] {
        let mut mounts = vec![blog_mount("frontend", "/"), blog_mount("admin", "/admin")];
        if guestbook_first {
            mounts.insert(0, guestbook_mount.clone());
        } else {
            mounts.push(guestbook_mount.clone());
        }
        let table = Table::from_value(json!({
            "databases": {"blog": {"url": "sqlite:app.db"}},
            "mounts": mounts,
        }));
        copy_folder(&blog_data(), &table.dir.path().join("data"));
        let mut host = Host::start_on(&table);
        add_entry(host.addr, "/guestbook", "Kept across restarts");
        assert!(host.get("/en/").text().contains("Hello, World!"));
        host.terminate();
        assert!(host.wait_exit().success());
        let host = Host::start_on(&table);
        assert!(
            host.get("/guestbook/")
                .text()
                .contains("Kept across restarts"),
            "guestbook first: {guestbook_first}"
        );
        assert!(
            host.get("/en/post/hello-world")
                .text()
                .contains("Hello, World!")
        );
        let json = host.get("/guestbook/entries.json").text();
        assert!(
            json.contains("\"message\":\"Kept across restarts\""),
            "{json}"
        );
        drop(host);
        let connection = rusqlite::Connection::open(table.dir.path().join("data/app.db")).unwrap();
        let namespaces: Vec<(String, i64)> = connection
            .prepare("SELECT namespace, COUNT(*) FROM _host_migrations GROUP BY namespace ORDER BY namespace")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            namespaces,
            [("blog".to_owned(), 5), ("guestbook".to_owned(), 1)],
            "guestbook first: {guestbook_first}"
        );
    }

    // 9. A released migration step edited in the app's source: the host
    // refuses it, naming the namespace and the step.
    let source = guestbook.join("src/lib.rs");
    let changed = std::fs::read_to_string(&source).unwrap().replace(
        "message TEXT NOT NULL,",
        "message TEXT NOT NULL DEFAULT '',",
    );
    std::fs::write(&source, changed).unwrap();
    let rebuilt = cargo_outside(&guestbook, &["build", "--release"]);
    assert!(rebuilt.status.success(), "{}", said(&rebuilt));
    std::fs::copy(guestbook.join("target/release/libguestbook.so"), &library).unwrap();
    let check = Command::new(common::host_binary())
        .args(["check", "--config", "plugins.json"])
        .current_dir(&workspace)
        .output()
        .unwrap();
    let out = said(&check);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains("database \"guestbook\": migration \"guestbook\" step 1 was changed after it was applied on "),
        "{out}"
    );
}
