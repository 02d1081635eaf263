//! Support for the blog's tests: a site with `frontend` at `/` and `admin`
//! at `/admin` as `plugins.json` mounts them, users made with `host cmd`,
//! and a client that keeps cookies the way a browser does.

use std::{
    collections::BTreeMap,
    io::Write,
    process::{Command, Output, Stdio},
};

use super::{Host, HttpResponse, Table, host_binary, library, workspace_root};

/// The password of the users [`create_user`] makes.
pub const PASSWORD: &str = "correct horse battery";

/// A mount table like the repository's `plugins.json`, in a temporary
/// folder (its `data/` holds the database, the secret and the uploads).
pub fn site_table() -> Table {
    site_table_with(|_| {})
}

/// Whether the blog's database is on PostgreSQL: in the test target
/// `blog_on_postgres`, which runs the blog's suites again.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "blog_on_postgres"
}

/// [`site_table`] with `change` made to the table first; on PostgreSQL
/// when [`on_postgres`].
pub fn site_table_with(change: impl FnOnce(&mut serde_json::Value)) -> Table {
    site_table_on(on_postgres(), change)
}

/// [`site_table_with`], on PostgreSQL when `postgres`: the site gets a
/// server of its own, kept as long as the table, and a key file (several
/// hosts could share the database, so the host asks for a secret it does
/// not make itself).
pub fn site_table_on(postgres: bool, change: impl FnOnce(&mut serde_json::Value)) -> Table {
    let mut value = site_table_value();
    let mut services: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
    if postgres {
        let postgres = super::postgres::Postgres::start();
        value["databases"]["blog"]["url"] = postgres.database("blog").into();
        let key_folder = tempfile::tempdir().unwrap();
        let key = key_folder.path().join("secret.key");
        std::fs::write(&key, [7u8; 64]).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        value["secret_key_file"] = key.display().to_string().into();
        services.push(Box::new(postgres));
        services.push(Box::new(key_folder));
    }
    change(&mut value);
    let mut table = Table::from_value(value);
    table.services = services;
    table
}

/// The mount table of [`site_table`], to change before writing it.
pub fn site_table_value() -> serde_json::Value {
    let static_folder = workspace_root().join("shared/static");
    let mut frontend = super::mount("frontend", "/", "frontend");
    frontend["static_folder"] = static_folder.display().to_string().into();
    frontend["databases"] = serde_json::json!(["blog"]);
    let mut admin = super::mount("admin", "/admin", "admin");
    admin["static_folder"] = static_folder.display().to_string().into();
    admin["max_body_bytes"] = (16 * 1024 * 1024).into();
    admin["databases"] = serde_json::json!(["blog"]);
    serde_json::json!({
        "databases": { "blog": { "url": "sqlite:app.db" } },
        "mounts": [frontend, admin],
    })
}

/// Runs `sql` on the site's database, as its owner would from a shell:
/// its rows, one per line, values separated by `|` (psql's unaligned form).
pub fn site_sql(table: &Table, sql: &str) -> String {
    if let Some(postgres) = table
        .services
        .iter()
        .find_map(|service| service.downcast_ref::<super::postgres::Postgres>())
    {
        let output = postgres.psql_in("blog", sql);
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    let connection = rusqlite::Connection::open(table.dir.path().join("data/app.db")).unwrap();
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let columns = statement.column_count();
    let rows = statement
        .query_map([], |row| {
            (0..columns)
                .map(|index| {
                    Ok(match row.get_ref(index)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(number) => number.to_string(),
                        rusqlite::types::ValueRef::Real(number) => number.to_string(),
                        rusqlite::types::ValueRef::Text(text)
                        | rusqlite::types::ValueRef::Blob(text) => {
                            String::from_utf8_lossy(text).into_owned()
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|values| values.join("|"))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.join("\n")
}

/// Runs `host cmd --config <table> <args...>` with `stdin` as its input.
pub fn host_cmd(table: &Table, args: &[&str], stdin: &str) -> Output {
    library("admin");
    let mut child = Command::new(host_binary())
        .args(["cmd", "--config"])
        .arg(&table.file)
        .args(args)
        .current_dir(table.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Creates a user with [`PASSWORD`] through the admin's command.
pub fn create_user(table: &Table, name: &str) {
    let output = host_cmd(
        table,
        &["admin", "create-user", name],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        output.status.success(),
        "create-user failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stored cookie.
#[derive(Debug, Clone)]
pub struct StoredCookie {
    pub value: String,
    pub path: String,
}

/// An HTTP client keeping cookies by name, sending each only below its
/// `Path`, as browsers do.
pub struct Client<'h> {
    pub host: &'h Host,
    pub cookies: BTreeMap<String, StoredCookie>,
    /// The admin's prefix, for [`Client::create_post`].
    pub admin: String,
    /// Sent as `X-Forwarded-For`: the client's address, for a host that
    /// trusts 127.0.0.1 as its proxy.
    pub forwarded_for: Option<String>,
}

impl<'h> Client<'h> {
    pub fn new(host: &'h Host) -> Client<'h> {
        Client {
            host,
            cookies: BTreeMap::new(),
            admin: "/admin".to_owned(),
            forwarded_for: None,
        }
    }

    fn cookie_header(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .filter(|(_, cookie)| {
                cookie.path == "/"
                    || path == cookie.path
                    || path.starts_with(&format!("{}/", cookie.path))
            })
            .map(|(name, cookie)| format!("{name}={}", cookie.value))
            .collect();
        (!cookies.is_empty()).then(|| cookies.join("; "))
    }

    fn keep_cookies(&mut self, response: &HttpResponse) {
        for (name, value) in &response.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let mut parts = value.split(';').map(str::trim);
            let (cookie_name, cookie_value) = parts.next().unwrap().split_once('=').unwrap();
            let mut path = "/".to_owned();
            let mut expired = false;
            for attribute in parts {
                let (key, attribute_value) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.to_ascii_lowercase().as_str() {
                    "path" => path = attribute_value.to_owned(),
                    "max-age" => expired |= attribute_value == "0",
                    _ => {}
                }
            }
            if expired {
                self.cookies.remove(cookie_name);
            } else {
                self.cookies.insert(
                    cookie_name.to_owned(),
                    StoredCookie {
                        value: cookie_value.to_owned(),
                        path,
                    },
                );
            }
        }
    }

    /// Any request, with the cookies that apply; keeps the ones set.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let cookie = self.cookie_header(path);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(cookie) = &cookie {
            all.push(("Cookie", cookie));
        }
        if let Some(address) = &self.forwarded_for {
            all.push(("X-Forwarded-For", address));
        }
        let response = self.host.request(method, path, &all, body);
        self.keep_cookies(&response);
        response
    }

    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.send("GET", path, &[], b"")
    }

    /// POSTs a urlencoded form.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> HttpResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    /// POSTs a multipart form with text `fields` and one file.
    pub fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> HttpResponse {
        let boundary = "----blogtestboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        let (field, file_name, data) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        self.send("POST", path, &[("Content-Type", &content_type)], &body)
    }

    /// The CSRF token of the form on the page at `path`.
    pub fn csrf_token(&mut self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page.status, 200, "GET {path}: {}", page.text());
        csrf_in(&page.text())
    }

    /// Logs in to the app at `prefix` (`""` or `/admin`) through its form.
    pub fn log_in(&mut self, prefix: &str, user: &str, password: &str) -> HttpResponse {
        let token = self.csrf_token(&format!("{prefix}/en/login"));
        self.post_form(
            &format!("{prefix}/en/login"),
            &[
                ("username", user),
                ("password", password),
                ("csrf_token", &token),
            ],
        )
    }

    /// Creates a post in English in the admin (logged in); its edit
    /// page's path.
    pub fn create_post(&mut self, title: &str, slug: &str, body: &str, published: bool) -> String {
        self.create_post_in("en", title, slug, body, published)
    }

    /// Creates a post in `lang` in the admin (logged in); its edit page's
    /// path.
    pub fn create_post_in(
        &mut self,
        lang: &str,
        title: &str,
        slug: &str,
        body: &str,
        published: bool,
    ) -> String {
        let new = format!("{}/posts/new", self.admin);
        let token = self.csrf_token(&new);
        let mut fields = vec![
            ("title", title),
            ("slug", slug),
            ("body", body),
            ("lang", lang),
            ("csrf_token", &token),
        ];
        if published {
            fields.push(("published", "1"));
        }
        let created = self.post_form(&new, &fields);
        assert_eq!(
            created.status,
            303,
            "creating {title:?}: {}",
            created.text()
        );
        created.header("location").unwrap().to_owned()
    }
}

/// The whole `Set-Cookie` header of a response that sets cookie `name`.
pub fn set_cookie(response: &HttpResponse, name: &str) -> String {
    response
        .headers
        .iter()
        .find(|(header, value)| {
            header.eq_ignore_ascii_case("set-cookie") && value.starts_with(&format!("{name}="))
        })
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", response.headers))
}

/// The value of the first `csrf_token` field in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF field in:\n{html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The test image: a 480×270 PNG.
pub fn sample_png() -> Vec<u8> {
    std::fs::read(workspace_root().join("testdata/images/sunrise.png")).unwrap()
}
