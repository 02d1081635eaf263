use std::path::Path;

use host_database::Location;

use super::{UploadsStore, defaults, locator::line_column, normalize_prefix, parse, schema};

const GOOD: &str = r#"{
  "listen": "127.0.0.1:5000",
  "data_dir": "data",
  "log_dir": "logs",
  "mounts": [
{ "name": "frontend", "prefix": "/", "library": "apps/libfrontend.so",
  "static_folder": "shared/static", "static_url_path": "/static",
  "logger": "app_frontend", "session_cookie": "frontend_session", "config": {} },
{ "name": "admin", "prefix": "/admin", "library": "apps/libadmin.so",
  "static_folder": "shared/static", "logger": "app_admin", "session_cookie": "admin_session", "config": {} }
  ]
}"#;

fn sqlite(path: &str) -> Location {
    Location::Sqlite(path.into())
}

fn error_of(text: &str) -> String {
    parse(text, Path::new("/site/plugins.json"))
        .unwrap_err()
        .to_string()
}

#[test]
fn the_documented_table_parses_with_defaults_and_resolved_paths() {
    let table = parse(GOOD, Path::new("/site/plugins.json")).unwrap();
    assert_eq!(table.listen, "127.0.0.1:5000".parse().unwrap());
    assert_eq!(table.data_dir, Path::new("/site/data"));
    assert_eq!(table.mounts.len(), 2);
    let admin = &table.mounts[1];
    assert_eq!(admin.prefix, "/admin");
    assert_eq!(admin.library, Path::new("/site/apps/libadmin.so"));
    assert_eq!(admin.static_url_path, "/static");
    assert_eq!(admin.uploads_url_path.as_deref(), Some("/uploads"));
    assert_eq!(table.mounts[0].prefix, "");
    assert_eq!(table.mounts[0].display_prefix(), "/");
}

#[test]
fn defaults_follow_the_mount_name() {
    let table = parse(
        r#"{"mounts": [{"name": "blog", "prefix": "/blog/", "library": "x.so"}]}"#,
        Path::new("plugins.json"),
    )
    .unwrap();
    let blog = &table.mounts[0];
    assert_eq!(blog.prefix, "/blog");
    assert_eq!(blog.logger, "app_blog");
    assert_eq!(blog.session_cookie, "blog_session");
    assert_eq!(blog.config, serde_json::json!({}));
    assert_eq!(blog.max_concurrency, defaults::MAX_CONCURRENCY);
    assert_eq!(table.listen.to_string(), defaults::LISTEN);
    let off = parse(
        r#"{"mounts": [{"name": "a", "prefix": "/", "library": "x.so", "uploads_url_path": ""}]}"#,
        Path::new("plugins.json"),
    )
    .unwrap();
    assert_eq!(off.mounts[0].uploads_url_path, None);
    assert_eq!(off.limits.body_memory_bytes, defaults::BODY_MEMORY_BYTES);
    // room for the largest body a mount accepts
    let large = parse(
        r#"{"mounts": [{"name": "a", "prefix": "/", "library": "x.so", "max_body_bytes": 100000000}]}"#,
        Path::new("plugins.json"),
    )
    .unwrap();
    assert_eq!(large.limits.body_memory_bytes, 100_000_000);
}

#[test]
fn errors_name_file_line_column_and_key() {
    let rows: &[(&str, &str)] = &[
        // invalid JSON: serde's position
        (
            "{\n  \"mounts\": [\n    {\"name\": \"a\",, }\n  ]\n}",
            "/site/plugins.json:3:18: ",
        ),
        // an unknown key, named with its path
        (
            "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"},\n  {\"name\": \"b\", \"prefx\": \"/b\"}\n]}",
            "/site/plugins.json:3:23: mounts[1].prefx: unknown field \"prefx\"",
        ),
        // a missing key
        (
            "{\"mounts\": [\n  {\"name\": \"a\", \"library\": \"a.so\"}\n]}",
            "/site/plugins.json:2:34: mounts[0]: missing required key \"prefix\"",
        ),
        // a prefix without its slash: the position of the value
        (
            "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"},\n  {\"name\": \"b\", \"prefix\": \"admin\", \"library\": \"b.so\"}\n]}",
            "/site/plugins.json:3:27: mounts[1].prefix: \"admin\" must start with '/' (e.g. \"/admin\")",
        ),
        // duplicates count after stripping the trailing slash
        (
            "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/admin\", \"library\": \"a.so\"},\n  {\"name\": \"b\", \"prefix\": \"/admin/\", \"library\": \"b.so\"}\n]}",
            "/site/plugins.json:3:27: mounts[1].prefix: duplicate prefix \"/admin/\" (also mounts[0].prefix)",
        ),
        (
            "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/a\", \"library\": \"a.so\"},\n  {\"name\": \"a\", \"prefix\": \"/b\", \"library\": \"b.so\"}\n]}",
            "/site/plugins.json:3:12: mounts[1].name: duplicate name \"a\" (also mounts[0].name)",
        ),
        (
            "{\"listen\": \"localhost\", \"mounts\": []}",
            "/site/plugins.json:1:12: listen: \"localhost\" is not an address",
        ),
        (
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"config\": []}]}",
            "/site/plugins.json:1:70: mounts[0].config: invalid type: sequence, expected a map",
        ),
        (
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"logger\": \"host\"}]}",
            "mounts[0].logger: \"host\" is the host's own logger",
        ),
        (
            "{\"mounts\": []}",
            "/site/plugins.json:1:12: mounts: no mounts",
        ),
        (
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"uploads_url_path\": \"files\"}]}",
            "mounts[0].uploads_url_path: \"files\" is not a URL path below the prefix (e.g. \"/uploads\", or \"\" to turn uploads off)",
        ),
        (
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"uploads_url_path\": \"/static/\"}]}",
            "mounts[0].uploads_url_path: \"/static/\" is also the static_url_path: give uploads their own path",
        ),
        (
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"static_url_path\": \"/\"}]}",
            "mounts[0].static_url_path: \"/\" is not a URL path below the prefix (e.g. \"/static\")",
        ),
        (
            "{\"body_memory_bytes\": 1000, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"max_body_bytes\": 2000}]}",
            "/site/plugins.json:1:23: body_memory_bytes: 1000 is less than mounts[0].max_body_bytes (2000)",
        ),
        (
            "{\"allowed_hosts\": [\"ok.example\", \"http://bad\"], \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "/site/plugins.json:1:34: allowed_hosts[1]: \"http://bad\" is not a host name",
        ),
        (
            "{\"public_url\": \"blog.example\", \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "/site/plugins.json:1:16: public_url: \"blog.example\" is not an http or https URL",
        ),
        (
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\",\n \"headers\": {\"X-Frame-Options\": \"a\\nb\"}}]}",
            "/site/plugins.json:2:33: mounts[0].headers.X-Frame-Options: \"a\\nb\" cannot be a header value",
        ),
        (
            "{\"body_read_timeout_ms\": 0, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "body_read_timeout_ms: must be at least 1",
        ),
        (
            "{\"drain_delay_ms\": 3600000, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "drain_delay_ms: 3600000 is more than 300000 (5 minutes)",
        ),
        (
            "{\"readyz_path\": \"readyz\", \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "readyz_path: \"readyz\" must be a path starting with '/'",
        ),
        (
            "{\"mounts\": [] } x",
            "/site/plugins.json:1:17: trailing characters",
        ),
    ];
    for (text, expected) in rows {
        let error = error_of(text);
        assert!(
            error.contains(expected),
            "for {text:?}\n  got      {error}\n  expected {expected}"
        );
    }
}

#[test]
fn databases_are_declared_once_and_granted_to_mounts() {
    let table = parse(
        r#"{
  "databases": {"blog": {"url": "sqlite:app.db"}, "stats": {"url": "sqlite:/var/lib/site/stats.db"}},
  "mounts": [
{"name": "frontend", "prefix": "/", "library": "f.so", "databases": ["blog"]},
{"name": "admin", "prefix": "/admin", "library": "a.so", "databases": ["blog", "stats"]},
{"name": "guestbook", "prefix": "/guestbook", "library": "g.so"},
{"name": "notes", "prefix": "/notes", "library": "n.so", "databases": ["notes", "blog"]}
  ]
}"#,
        Path::new("/site/plugins.json"),
    )
    .unwrap();
    let databases: Vec<(&str, Location, bool)> = table
        .databases
        .iter()
        .map(|database| {
            (
                database.name.as_str(),
                database.location.clone(),
                database.declared,
            )
        })
        .collect();
    assert_eq!(
        databases,
        [
            ("blog", sqlite("/site/data/app.db"), true),
            ("stats", sqlite("/var/lib/site/stats.db"), true),
            // a mount that lists none has its own, named after it
            ("guestbook", sqlite("/site/data/guestbook.db"), false),
            // and one that lists its own name
            ("notes", sqlite("/site/data/notes.db"), false),
        ]
    );
    let granted: Vec<&[String]> = table
        .mounts
        .iter()
        .map(|mount| mount.databases.as_slice())
        .collect();
    assert_eq!(
        granted,
        [
            &["blog".to_owned()][..],
            &["blog".to_owned(), "stats".to_owned()],
            &["guestbook".to_owned()],
            &["notes".to_owned(), "blog".to_owned()],
        ]
    );
    // a database declared under a mount's name is that mount's own
    let named = parse(
        r#"{"databases": {"guestbook": {"url": "sqlite:gb/guestbook.sqlite"}},
            "mounts": [{"name": "guestbook", "prefix": "/", "library": "g.so"}]}"#,
        Path::new("/site/plugins.json"),
    )
    .unwrap();
    assert_eq!(named.databases.len(), 1);
    let postgres = parse(
        r#"{"databases": {"blog": {"url": "postgres://blog@db.internal:5432/blog"}},
            "mounts": [{"name": "a", "prefix": "/", "library": "a.so", "databases": ["blog"]}]}"#,
        Path::new("/site/plugins.json"),
    )
    .unwrap();
    assert_eq!(
        postgres.databases[0].location,
        Location::Postgres("postgres://blog@db.internal:5432/blog".to_owned())
    );
    assert_eq!(
        named.databases[0].location,
        sqlite("/site/data/gb/guestbook.sqlite")
    );
}

#[test]
fn database_errors_name_the_key_and_the_fix() {
    let rows: &[(&str, &str)] = &[
        (
            "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\",\n   \"databases\": [\"blog\"]}\n]}",
            "/site/plugins.json:3:18: mounts[0].databases[0]: \"blog\" is not a database of this table: declare it under \"databases\" (e.g. \"databases\": {\"blog\": {\"url\": \"sqlite:blog.db\"}}), or list the mount's own, \"a\"",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"sqlite:b.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"databases\": [\"blog\", \"blog\"]}]}",
            "mounts[0].databases[1]: \"blog\" is listed twice",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"mysql://db/blog\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "/site/plugins.json:1:32: databases.blog.url: \"mysql://db/blog\" is not a database URL this host supports: use \"sqlite:FILE\"",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"postgres://u:pw@db:notaport/blog\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "databases.blog.url: \"postgres://u:***@db:notaport/blog\" is not a PostgreSQL URL (invalid connection string): write postgres://user@host:5432/database",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"postgres://u@db/blog\"}, \"other\": {\"url\": \"postgres://u@db/blog\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "databases.other.url: \"postgres://u@db/blog\" is also the database of databases.blog: give each database its own URL",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"sqlite::memory:\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "databases.blog.url: \"sqlite::memory:\" does not name a database file",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"sqlite:b.db?mode=ro\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "databases.blog.url: \"sqlite:b.db?mode=ro\" does not name a database file",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"sqlite:x.db\"}, \"other\": {\"url\": \"sqlite:x.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "databases.other.url: \"sqlite:x.db\" is also the file of databases.blog: give each database its own file",
        ),
        (
            "{\"databases\": {\"blog\": {\"url\": \"sqlite:a.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "mounts[0].name: the mount's own database would be /site/data/a.db, the file of databases.blog already",
        ),
        (
            "{\"databases\": {\"my blog\": {\"url\": \"sqlite:b.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            "databases.my blog: \"my blog\" is not a valid name",
        ),
        (
            "{\"databases\": {\"blog\": {\"path\": \"b.db\"}}, \"mounts\": []}",
            "databases.blog.path: unknown field \"path\"",
        ),
    ];
    for (text, expected) in rows {
        let error = error_of(text);
        assert!(
            error.contains(expected),
            "for {text:?}\n  got      {error}\n  expected {expected}"
        );
    }
}

#[test]
fn uploads_go_to_a_folder_or_a_bucket() {
    let table = |uploads: &str| {
        format!(
            "{{\"uploads\": {uploads}, \"mounts\": [{{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}}]}}"
        )
    };
    let stored = |text: &str| {
        parse(text, Path::new("/site/plugins.json"))
            .unwrap()
            .uploads
    };
    assert_eq!(
        parse(
            "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
            Path::new("/site/plugins.json")
        )
        .unwrap()
        .uploads,
        UploadsStore::Folder("/site/data/uploads".into()),
        "by default, below the data folder"
    );
    assert_eq!(
        stored(&table("{\"url\": \"file:/srv/uploads\"}")),
        UploadsStore::Folder("/srv/uploads".into())
    );
    assert_eq!(
        stored(&table("{\"url\": \"s3://site-uploads/blog\"}")),
        UploadsStore::S3("s3://site-uploads/blog".to_owned())
    );
    for (uploads, expected) in [
        (
            "{\"url\": \"s3://Site_Uploads\"}",
            "uploads.url: \"s3://Site_Uploads\" does not name an S3 bucket",
        ),
        (
            "{\"url\": \"ftp://host/x\"}",
            "uploads.url: \"ftp://host/x\" is not an uploads store this host supports: use \"file:FOLDER\"",
        ),
        (
            "{\"url\": \"file:\"}",
            "uploads.url: \"file:\" does not name a folder",
        ),
        ("{\"path\": \"x\"}", "uploads.path: unknown field"),
    ] {
        let error = error_of(&table(uploads));
        assert!(error.contains(expected), "{uploads}: {error}");
    }
}

#[test]
fn prefixes_normalise_or_explain() {
    let rows: &[(&str, Result<&str, ()>)] = &[
        ("/", Ok("")),
        ("/admin", Ok("/admin")),
        ("/admin/", Ok("/admin")),
        ("/admin/reports", Ok("/admin/reports")),
        ("admin", Err(())),
        ("", Err(())),
        ("/a//b", Err(())),
        ("/a/../b", Err(())),
        ("/a b", Err(())),
        ("/a?x", Err(())),
        ("/a%2Fb", Err(())),
    ];
    for (input, expected) in rows {
        let got = normalize_prefix(input);
        match expected {
            Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "{input}"),
            Err(()) => assert!(got.is_err(), "{input} should be refused"),
        }
    }
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é\nx", 3), (2, 1));
}

#[test]
fn the_schema_states_the_defaults_the_host_fills_in() {
    let schema: serde_json::Value = serde_json::from_str(&schema()).unwrap();
    let describes = |properties: &serde_json::Value, key: &str, default: String| {
        let description = properties[key]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{key} has no description"));
        assert!(
            description.contains(&format!("Default {default}")),
            "{key}: {description:?} should say \"Default {default}\""
        );
    };
    let table = &schema["properties"];
    describes(table, "listen", format!("{:?}", defaults::LISTEN));
    describes(table, "data_dir", format!("{:?}", defaults::DATA_DIR));
    describes(table, "log_dir", format!("{:?}", defaults::LOG_DIR));
    describes(table, "health_path", format!("{:?}", defaults::HEALTH_PATH));
    describes(
        table,
        "metrics_path",
        format!("{:?}", defaults::METRICS_PATH),
    );
    describes(table, "livez_path", format!("{:?}", defaults::LIVEZ_PATH));
    describes(table, "readyz_path", format!("{:?}", defaults::READYZ_PATH));
    describes(
        table,
        "drain_delay_ms",
        defaults::DRAIN_DELAY_MS.to_string(),
    );
    describes(
        table,
        "max_connections",
        defaults::MAX_CONNECTIONS.to_string(),
    );
    describes(
        table,
        "header_read_timeout_ms",
        defaults::HEADER_READ_TIMEOUT_MS.to_string(),
    );
    describes(table, "max_headers", defaults::MAX_HEADERS.to_string());
    describes(
        table,
        "max_header_bytes",
        defaults::MAX_HEADER_BYTES.to_string(),
    );
    for (key, default) in [
        ("body_read_timeout_ms", defaults::BODY_READ_TIMEOUT_MS),
        (
            "max_connections_per_address",
            defaults::MAX_CONNECTIONS_PER_ADDRESS as u64,
        ),
        ("body_buffer_bytes", defaults::BODY_BUFFER_BYTES),
        ("body_memory_bytes", defaults::BODY_MEMORY_BYTES),
    ] {
        describes(table, key, default.to_string());
    }
    let mount = &schema["$defs"]["RawMount"]["properties"];
    describes(
        mount,
        "static_url_path",
        format!("{:?}", defaults::STATIC_URL_PATH),
    );
    describes(
        mount,
        "static_max_age",
        defaults::STATIC_MAX_AGE.to_string(),
    );
    describes(
        mount,
        "uploads_url_path",
        format!("{:?}", defaults::UPLOADS_URL_PATH),
    );
    describes(mount, "logger", format!("{:?}", defaults::logger("<name>")));
    describes(
        mount,
        "session_cookie",
        format!("{:?}", defaults::session_cookie("<name>")),
    );
    describes(
        mount,
        "max_concurrency",
        defaults::MAX_CONCURRENCY.to_string(),
    );
    describes(
        mount,
        "max_body_bytes",
        defaults::MAX_BODY_BYTES.to_string(),
    );
    describes(
        mount,
        "queue_timeout_ms",
        defaults::QUEUE_TIMEOUT_MS.to_string(),
    );
    describes(mount, "timeout_ms", defaults::TIMEOUT_MS.to_string());
}
