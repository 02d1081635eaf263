//! A site on several machines, on one: three hosts, each with its own data
//! and log folders and its own port, behind nginx (an upstream of the
//! three, the next one tried when one refuses), on one PostgreSQL (Debian's,
//! as an unprivileged user in a temporary folder) and one S3-compatible
//! store (moto's), sharing one key file. What a user logs into through one
//! host works on the others; what one host writes, every host reads at
//! once; a rolling restart under load fails no request; a host killed under
//! write load loses no write it acknowledged.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use common::{
    Host, Table,
    blog::{Client, PASSWORD, create_user, sample_png, site_table_value},
    host_binary,
    nginx::Nginx,
    postgres::Postgres,
    s3::{BUCKET, S3},
};
use serde_json::json;

/// The hosts of the cluster.
const HOSTS: usize = 3;

struct Cluster {
    nginx: Nginx,
    /// `None` while a host is stopped.
    hosts: Vec<Option<Host>>,
    tables: Vec<Table>,
    listen: Vec<SocketAddr>,
    env: Vec<(&'static str, String)>,
    postgres: Postgres,
    _s3: S3,
    _key: tempfile::TempDir,
}

/// A port nothing listens on now, for a host to take (again, when it
/// restarts).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The blog's table for one host of the cluster.
fn cluster_table(database: &str, key: &std::path::Path) -> Table {
    let mut value = site_table_value();
    value["databases"]["blog"]["url"] = database.into();
    value["secret_key_file"] = key.display().to_string().into();
    value["uploads"] = json!({"url": format!("s3://{BUCKET}/site")});
    value["trusted_proxies"] = json!(["127.0.0.1"]);
    Table::from_value(value)
}

impl Cluster {
    fn start() -> Cluster {
        let postgres = Postgres::start();
        let database = postgres.database("blog");
        let s3 = S3::start();
        let key_folder = tempfile::tempdir().unwrap();
        let key = key_folder.path().join("cluster.key");
        std::fs::write(&key, "one key for every host of the cluster, 32+ bytes").unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let tables: Vec<Table> = (0..HOSTS).map(|_| cluster_table(&database, &key)).collect();
        create_user(&tables[0], "alice");
        let listen: Vec<SocketAddr> = (0..HOSTS).map(|_| free_port()).collect();
        let mut env = s3.env();
        env.push(("RUST_LOG", "info".to_owned()));
        let mut cluster = Cluster {
            nginx: Nginx::start(&listen),
            hosts: (0..HOSTS).map(|_| None).collect(),
            tables,
            listen,
            env,
            postgres,
            _s3: s3,
            _key: key_folder,
        };
        for index in 0..HOSTS {
            cluster.start_host(index);
        }
        cluster
    }

    fn start_host(&mut self, index: usize) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let host = Host::start_listening(&self.tables[index], self.listen[index], &env);
        let deadline = Instant::now() + Duration::from_secs(30);
        while host.get("/_host/readyz").status != 200 {
            assert!(Instant::now() < deadline, "host {index} never became ready");
            thread::sleep(Duration::from_millis(20));
        }
        self.hosts[index] = Some(host);
    }

    fn host(&self, index: usize) -> &Host {
        self.hosts[index].as_ref().expect("the host runs")
    }

    /// nginx, as clients reach the site.
    fn front(&self) -> &Host {
        &self.nginx.server
    }

    /// Stops host `index` as systemd or an orchestrator does (SIGTERM: it
    /// drains, then exits), then starts it again on its port.
    fn restart(&mut self, index: usize) {
        let mut host = self.hosts[index].take().expect("the host runs");
        host.terminate();
        let status = host.wait_exit();
        assert!(status.success(), "host {index} stopped with {status}");
        self.start_host(index);
    }

    /// Titles of the posts in the database, read with psql.
    fn titles(&self) -> Vec<String> {
        let output = self
            .postgres
            .psql_in("blog", "SELECT title FROM posts ORDER BY title");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A client logged in as alice through `host`.
fn admin(host: &Host) -> Client<'_> {
    let mut client = Client::new(host);
    let login = client.log_in("/admin", "alice", PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text());
    client
}

#[test]
fn what_one_host_writes_every_host_serves_at_once() {
    let cluster = Cluster::start();
    // logged in through the first host: the cookie works on the others
    let mut writer = admin(cluster.host(0));
    let cookie = format!("admin_session={}", writer.cookies["admin_session"].value);
    for index in 1..HOSTS {
        let dashboard = cluster
            .host(index)
            .request("GET", "/admin/", &[("Cookie", &cookie)], b"");
        assert_eq!(
            dashboard.status, 200,
            "logged in through host 0, on host {index}"
        );
    }

    // a post with an image, written through the first host
    let edit = writer.create_post("Shared", "", "Seen from every host.", true);
    let post_id = edit
        .trim_start_matches("/admin/posts/")
        .trim_end_matches("/edit")
        .to_owned();
    let token = writer.csrf_token(&edit);
    let upload = writer.post_multipart(
        "/admin/images",
        &[("csrf_token", &token), ("attach_to", &post_id)],
        ("image", "sunrise.png", &sample_png()),
    );
    assert_eq!(upload.status, 303, "{}", upload.text());
    let page = cluster.host(0).get("/en/post/shared").text();
    let image = page
        .split("src=\"/uploads/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the post shows its image")
        .to_owned();
    let mut etags = Vec::new();
    for index in 0..HOSTS {
        let host = cluster.host(index);
        let page = host.get("/en/post/shared");
        assert_eq!(page.status, 200, "host {index}");
        let text = page.text();
        assert!(text.contains("Seen from every host."), "host {index}");
        assert!(
            text.contains(&format!("src=\"/uploads/{image}\"")),
            "host {index}"
        );
        let served = host.get(&format!("/uploads/{image}"));
        assert_eq!(served.status, 200, "host {index}");
        assert!(served.body == sample_png(), "host {index}: the same bytes");
        etags.push(served.header("etag").unwrap().to_owned());
    }
    assert!(etags.iter().all(|etag| *etag == etags[0]), "{etags:?}");

    // changed through the first host, never served stale by the others
    for round in 1..=3 {
        let title = format!("Shared, edition {round}");
        let token = writer.csrf_token(&edit);
        let saved = writer.post_form(
            &edit,
            &[
                ("title", title.as_str()),
                ("slug", "shared"),
                ("body", "Seen from every host."),
                ("lang", "en"),
                ("published", "1"),
                ("csrf_token", &token),
            ],
        );
        assert_eq!(saved.status, 303, "{}", saved.text());
        for index in 0..HOSTS {
            let host = cluster.host(index);
            assert!(
                host.get("/en/post/shared").text().contains(&title),
                "host {index} after edition {round}"
            );
            assert!(host.get("/en/").text().contains(&title), "host {index}");
        }
    }

    // failed logins count on every host: ten spread over the three
    // exhaust the username's allowance everywhere
    for attempt in 0..10 {
        let host = cluster.host(attempt % HOSTS);
        let mut guesser = Client::new(host);
        guesser.forwarded_for = Some(format!("198.51.100.{attempt}"));
        assert_eq!(guesser.log_in("/admin", "alice", "wrong").status, 200);
    }
    for index in 0..HOSTS {
        let mut client = Client::new(cluster.host(index));
        client.forwarded_for = Some("192.0.2.77".to_owned());
        assert_eq!(
            client.log_in("/admin", "alice", PASSWORD).status,
            429,
            "host {index} knows of the failures on the others"
        );
    }
}

/// One GET through nginx on a connection of its own: the status, or why
/// there was none.
fn fetch(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|error| error.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|error| error.to_string())?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))
}

#[test]
fn a_rolling_restart_under_load_fails_no_request() {
    let mut cluster = Cluster::start();
    admin(cluster.host(0)).create_post("Under load", "", "Read all the time.", true);
    let front = cluster.front().addr;
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let counted = Arc::new(Mutex::new(0u64));
    let clients: Vec<_> = (0..64)
        .map(|client| {
            let (stop, failures, counted) = (
                Arc::clone(&stop),
                Arc::clone(&failures),
                Arc::clone(&counted),
            );
            thread::spawn(move || {
                let paths = [
                    "/en/",
                    "/en/post/under-load",
                    "/static/style.css",
                    "/en/feed.xml",
                ];
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let path = paths[(client + done as usize) % paths.len()];
                    match fetch(front, path) {
                        Ok(200) => {}
                        other => failures.lock().unwrap().push(format!("{path}: {other:?}")),
                    }
                    done += 1;
                }
                *counted.lock().unwrap() += done;
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    for index in 0..HOSTS {
        cluster.restart(index);
        thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let counted = *counted.lock().unwrap();
    assert!(counted > 500, "only {counted} requests were made");
    assert!(
        failures.is_empty(),
        "{} of {counted} requests failed, e.g. {:?}\nnginx: {}\nhost 0: {}",
        failures.len(),
        &failures[..failures.len().min(5)],
        cluster
            .nginx
            .errors()
            .lines()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n"),
        cluster.host(0).log()
    );
}

#[test]
fn a_host_killed_under_write_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start();
    let front = &cluster.nginx.server;
    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::new());
    let after_kill = Mutex::new(0usize);
    let killed = AtomicBool::new(false);
    // logged in before the load starts: a login is a write too
    let writers: Vec<(Client<'_>, String)> = (0..8)
        .map(|_| {
            let mut client = admin(front);
            let token = client.csrf_token("/admin/posts/new");
            (client, token)
        })
        .collect();
    thread::scope(|scope| {
        for (writer, (mut client, token)) in writers.into_iter().enumerate() {
            let (stop, acknowledged, after_kill, killed) =
                (&stop, &acknowledged, &after_kill, &killed);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let title = format!("w{writer}-{n:04}");
                    let created = client.post_form(
                        "/admin/posts/new",
                        &[
                            ("title", title.as_str()),
                            ("slug", ""),
                            ("body", "written under load"),
                            ("lang", "en"),
                            ("csrf_token", &token),
                        ],
                    );
                    // 303: the post was created and the client told so
                    if created.status == 303 {
                        acknowledged.lock().unwrap().push(title);
                        if killed.load(Ordering::Relaxed) {
                            *after_kill.lock().unwrap() += 1;
                        }
                    }
                }
            });
        }
        thread::sleep(Duration::from_millis(1500));
        let host = cluster.hosts[1].as_mut().unwrap();
        host.child.kill().unwrap();
        host.child.wait().unwrap();
        killed.store(true, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() > 20,
        "only {} writes",
        acknowledged.len()
    );
    assert!(
        *after_kill.lock().unwrap() > 0,
        "the other hosts kept taking writes\nnginx: {}",
        cluster
            .nginx
            .errors()
            .lines()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stored = cluster.titles();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|title| stored.binary_search(title).is_err())
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    cluster.hosts[1] = None;
}

#[test]
fn a_host_on_a_shared_database_refuses_to_make_its_own_secret() {
    let postgres = Postgres::start();
    let database = postgres.database("blog");
    let mut value = site_table_value();
    value["databases"]["blog"]["url"] = database.clone().into();
    let table = Table::from_value(value);
    for command in [&["serve", "--listen", "127.0.0.1:0"][..], &["check"]] {
        let output = Command::new(host_binary())
            .args(command)
            .arg("--config")
            .arg(&table.file)
            .current_dir(table.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?}: {error}");
        assert!(
            error.contains("the database \"blog\" is on PostgreSQL")
                && error.contains("HOST_SECRET_KEY")
                && error.contains("secret_key_file"),
            "{command:?}: {error}"
        );
    }
    assert!(!table.dir.path().join("data/secret.key").exists());
    // with a key from the environment it serves
    let host = Host::start_with_env(
        &table,
        &[
            (
                "HOST_SECRET_KEY",
                "a key every host of the site is given, 32+",
            ),
            ("RUST_LOG", "info"),
        ],
    );
    assert_eq!(host.get("/_host/readyz").status, 200);
}
