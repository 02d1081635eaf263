//! Upgrading loses nothing: a data folder as the release with app-api 1.0.0
//! left it (`testdata/legacy-1.0`: the site database `app.db` with
//! `user_version` 2, its write-ahead log, the secret and the uploads) is
//! adopted by this host as the blog's database, with every row and upload,
//! and a mount table that would leave it out is refused before anything
//! changes.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use common::{
    Host, Table,
    blog::{Client, site_table_value},
    copy_folder, snapshot, workspace_root,
};

fn fixture() -> PathBuf {
    workspace_root().join("testdata/legacy-1.0/data")
}

/// A site folder holding a copy of the fixture as its `data/`, with
/// `table` as its mount table.
fn site_with_fixture(table: serde_json::Value) -> Table {
    let table = Table::from_value(table);
    copy_folder(&fixture(), &table.dir.path().join("data"));
    table
}

/// Every row of the blog's tables, as text, read with SQLite directly.
fn blog_rows(database: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut tables = BTreeMap::new();
    for table in ["users", "posts", "images", "post_images", "login_failures"] {
        let mut statement = connection
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let columns = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                (0..columns)
                    .map(|index| {
                        row.get::<_, rusqlite::types::Value>(index)
                            .map(|value| format!("{value:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|values| values.join(" | "))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        tables.insert(table, rows);
    }
    tables
}

/// The fixture's rows, read from a copy of it.
fn fixture_rows() -> BTreeMap<&'static str, Vec<String>> {
    let copy = tempfile::tempdir().unwrap();
    copy_folder(&fixture(), copy.path());
    blog_rows(&copy.path().join("app.db"))
}

fn stop(mut host: Host) {
    host.terminate();
    assert!(host.wait_exit().success(), "{}", host.log());
}

#[test]
fn a_table_that_leaves_out_the_old_site_database_is_refused_before_anything_changes() {
    // the mount table of that release: no databases, so each mount would
    // start on an empty database of its own
    let mut old_table = site_table_value();
    old_table.as_object_mut().unwrap().remove("databases");
    for mount in old_table["mounts"].as_array_mut().unwrap() {
        mount.as_object_mut().unwrap().remove("databases");
    }
    let table = site_with_fixture(old_table);
    let data = table.dir.path().join("data");
    let before = snapshot(&data);
    for command in ["check", "serve"] {
        let refused = table.run(command);
        assert_eq!(refused.status.code(), Some(1), "{command}");
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(
            error.contains(&format!(
                "{}: {} holds the site database of an earlier release, and no database of this table uses it: declare it and list it in the mounts that use it, e.g. \"databases\": {{\"blog\": {{\"url\": \"sqlite:app.db\"}}}} and \"databases\": [\"blog\"] in the blog's mounts (nothing was changed)",
                table.file.display(),
                data.join("app.db").display()
            )),
            "{command}: {error}"
        );
    }
    assert_eq!(snapshot(&data), before, "the data folder is as it was");
}

#[test]
fn the_old_data_folder_is_adopted_as_the_blog_database_with_every_row_and_upload() {
    let expected = fixture_rows();
    assert_eq!(expected["users"].len(), 2, "the fixture as its README says");
    assert_eq!(expected["posts"].len(), 3);
    assert_eq!(expected["images"].len(), 3);
    let table = site_with_fixture(site_table_value());
    let data = table.dir.path().join("data");

    // host check only looks, and says what will happen
    let before = snapshot(&data);
    let check = table.run("check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "database blog ({}):\n  migrations \"blog\": 0 of 5 steps applied, 2 to adopt from PRAGMA user_version, 3 pending",
            data.join("app.db").display()
        )),
        "{out}"
    );
    assert_eq!(snapshot(&data), before, "host check changed nothing");

    let host = Host::start_on(&table);
    // posts from before languages are English, at their old addresses too
    let home = host.get("/en/").text();
    assert!(home.contains("Hello, World!"), "{home}");
    assert!(
        home.contains("Ünïcödé &amp; &lt;angle&gt; brackets"),
        "{home}"
    );
    assert!(!home.contains("Not yet"), "drafts stay drafts");
    // the images, in order, served as they were stored
    let moved = host.get("/post/hello-world");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/en/post/hello-world"));
    let post = host.get("/en/post/hello-world").text();
    let png = "88f96975e940178f0a9fd1e984d7ffb2.png";
    let gif = "5de0f1942f87e4df7d67175255cae440.gif";
    let (at_png, at_gif) = (post.find(png), post.find(gif));
    assert!(at_png.is_some() && at_png < at_gif, "{post}");
    let served = host.get(&format!("/uploads/{png}"));
    assert_eq!(served.status, 200);
    assert_eq!(
        served.body,
        std::fs::read(fixture().join("uploads").join(png)).unwrap()
    );
    // the users log in with their passwords, and the admin sees everything
    let mut bob = Client::new(&host);
    assert_eq!(
        bob.log_in("/admin", "bob", "another long password").status,
        303
    );
    let mut client = Client::new(&host);
    assert_eq!(
        client
            .log_in("/admin", "alice", "correct horse battery")
            .status,
        303
    );
    let dashboard = client.get("/admin/").text();
    assert!(dashboard.contains("Not yet"), "{dashboard}");
    // uploads of that time belong to the adopted database: the admin may
    // delete the image no post uses, and its file goes with it
    let unattached = data.join("uploads/05eb0fbd71b589ccc53230fda2ff62ea.gif");
    assert!(unattached.is_file());
    let token = client.csrf_token("/admin/images");
    let deleted = client.post_form("/admin/images/3/delete", &[("csrf_token", &token)]);
    assert_eq!(deleted.status, 303, "{}", deleted.text());
    assert!(!unattached.exists());
    stop(host);

    // every other row is as it was; posts gained a language, English, and
    // failed logins an id
    let after = blog_rows(&data.join("app.db"));
    for table in ["users", "post_images"] {
        assert_eq!(after[table], expected[table], "{table}");
    }
    let with_ids: Vec<String> = expected["login_failures"]
        .iter()
        .enumerate()
        .map(|(at, row)| format!("Integer({}) | {row}", at + 1))
        .collect();
    assert_eq!(after["login_failures"], with_ids, "login_failures");
    let in_english: Vec<String> = expected["posts"]
        .iter()
        .map(|row| format!("{row} | Text(\"en\")"))
        .collect();
    assert_eq!(after["posts"], in_english, "posts");
    assert_eq!(
        after["images"],
        expected["images"][..2],
        "all but the deleted one"
    );
    let connection = rusqlite::Connection::open(data.join("app.db")).unwrap();
    let history: Vec<(String, i64, i64)> = connection
        .prepare("SELECT namespace, step, adopted FROM _host_migrations ORDER BY step")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        history,
        [
            ("blog".to_owned(), 1, 1),
            ("blog".to_owned(), 2, 1),
            // the later releases' steps (logins the server remembers;
            // languages and comments) ran on it
            ("blog".to_owned(), 3, 0),
            ("blog".to_owned(), 4, 0),
            ("blog".to_owned(), 5, 0),
        ]
    );
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 2, "left as the old release wrote it");
    drop(connection);
    // the remaining uploads are those of the fixture
    for name in [png, gif] {
        assert_eq!(
            std::fs::read(data.join("uploads").join(name)).unwrap(),
            std::fs::read(fixture().join("uploads").join(name)).unwrap()
        );
    }

    // and a restart finds it all again
    let host = Host::start_on(&table);
    assert!(host.get("/en/").text().contains("Hello, World!"));
    stop(host);
    assert!(
        !data.join("app.db-wal").exists(),
        "a clean stop folds the log back"
    );
}
