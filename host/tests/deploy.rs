//! What operators are given: the files `deploy/` ships (systemd reads the
//! units without a complaint, `systemd-analyze verify`, pointed at this
//! build's binary), the `Dockerfile` (its steps are the documented ones),
//! and `docs/deploy.md`'s nginx TLS server block, which serves the site.

mod common;

use std::process::Command;

use common::{host_binary, workspace_root};

#[test]
fn the_systemd_units_verify() {
    let folder = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(workspace_root().join("deploy/host.service"))
        .unwrap()
        .replace("/usr/local/bin/host", &host_binary().display().to_string());
    assert!(
        service.contains("Type=notify") && service.contains("ExecReload=/bin/kill -HUP $MAINPID")
    );
    std::fs::write(folder.path().join("host.service"), service).unwrap();
    std::fs::copy(
        workspace_root().join("deploy/host.socket"),
        folder.path().join("host.socket"),
    )
    .unwrap();
    for unit in ["host.service", "host.socket"] {
        let output = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(folder.path().join(unit))
            .output()
            .expect("systemd-analyze (.ci/install tests installs systemd)");
        let said = String::from_utf8_lossy(&output.stderr);
        // the user "host" need not exist on this machine
        let complaints: Vec<&str> = said
            .lines()
            .filter(|line| {
                !line.trim().is_empty() && !line.contains("User=") && !line.contains("user host")
            })
            .collect();
        assert!(
            output.status.success() && complaints.is_empty(),
            "{unit}: {said}"
        );
    }
}

/// The lines of the first code block after `marker` in `text`.
fn block_after(text: &str, marker: &str) -> Vec<String> {
    let rest = &text[text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} is gone"))..];
    let start = rest.find("```").unwrap();
    let rest = &rest[start..];
    let body = &rest[rest.find('\n').unwrap() + 1..];
    let end = body.find("```").unwrap();
    body[..end]
        .lines()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn the_dockerfile_builds_and_installs_as_the_docs_say() {
    let root = workspace_root();
    let docs = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let (build, run) = dockerfile.split_once("\nFROM debian").expect("two stages");
    // the build stage runs the documented build command
    let build_command = block_after(&docs, "<!-- build:");
    let built = build_command.last().unwrap();
    assert_eq!(built, "cargo xtask install");
    assert!(build.contains(&format!("RUN {built}")), "{build}");
    // and the runtime stage has the files the documented install copies,
    // from where the build leaves them, made as the install makes them
    let install = block_after(&docs, "<!-- install:");
    let copies = [
        ("target/release/host", "/usr/local/bin/host"),
        ("apps/*.so", "/srv/site/apps/"),
        ("shared/static", "/srv/site/shared/static"),
        ("plugins.json", "/srv/site/plugins.json"),
    ];
    for (from, to) in copies {
        assert!(
            run.contains(&format!("COPY --from=build /src/{from} {to}")),
            "the Dockerfile does not copy {from}"
        );
        assert!(
            install
                .iter()
                .any(|line| line.contains(from) && line.ends_with(to)),
            "the docs do not install {from} to {to}"
        );
    }
    for made in [
        "useradd --system --home-dir /srv/site --shell /usr/sbin/nologin host",
        "install -d -o root -g host -m 0750 /srv/site /srv/site/apps /srv/site/shared",
    ] {
        assert!(install.iter().any(|line| line == made), "docs: {made}");
        assert!(run.contains(made), "Dockerfile: {made}");
    }
    // never root, data and logs on volumes, the host as PID 1
    assert!(run.contains("\nUSER host\n"));
    assert!(run.contains(r#"VOLUME ["/srv/site/data", "/srv/site/logs"]"#));
    assert!(run.contains(r#"CMD ["host", "serve"]"#));
    assert!(run.contains("HOST_CONFIG=/srv/site/plugins.json"));
    // what the build copies in exists, and the table names the apps built
    for path in [
        "plugins.json",
        "shared/static",
        "apps/frontend",
        "apps/admin",
    ] {
        assert!(root.join(path).exists(), "{path}");
    }
    let table = std::fs::read_to_string(root.join("plugins.json")).unwrap();
    for library in ["apps/libfrontend.so", "apps/libadmin.so"] {
        assert!(table.contains(library), "{library}");
    }
}

#[test]
fn the_tls_server_block_serves_the_site_over_https() {
    use common::{Host, blog::site_table_with};

    let docs = std::fs::read_to_string(workspace_root().join("docs/deploy.md")).unwrap();
    let block = block_after(&docs, "<!-- tls:").join("\n");
    let table = site_table_with(|table| {
        table["allowed_hosts"] = serde_json::json!(["blog.example.com"]);
        table["trusted_proxies"] = serde_json::json!(["127.0.0.1"]);
    });
    let host = Host::start_on(&table);
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=blog.example.com", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // the block as written, but for addresses and files of this test
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "the block no longer has {from:?}");
        text.replace(from, to)
    };
    let (child, addr) = common::nginx_conf::launch(dir, |port| {
        let block = replace(
            block.clone(),
            "server 127.0.0.1:5000;",
            &format!("server {};", host.addr),
        );
        let block = replace(
            block,
            "listen 80;",
            &format!("listen 127.0.0.1:{http_port};"),
        );
        let block = replace(
            block,
            "listen 443 ssl http2;",
            &format!("listen 127.0.0.1:{port} ssl http2;"),
        );
        let block = replace(
            block,
            "/etc/letsencrypt/live/blog.example.com/fullchain.pem",
            &dir.join("cert.pem").display().to_string(),
        );
        let block = replace(
            block,
            "/etc/letsencrypt/live/blog.example.com/privkey.pem",
            &dir.join("key.pem").display().to_string(),
        );
        let http = format!("    access_log off;\n{block}\n");
        common::nginx_conf::whole(dir, common::nginx_conf::Processes::One, &http)
    })
    .unwrap_or_else(|error| panic!("{error}"));
    let _nginx = Host::adopt(child, addr);
    let port = addr.port();
    let curl = |args: &[&str]| -> (String, String) {
        let output = Command::new("curl")
            .args(["-sk", "--max-time", "30", "--resolve"])
            .arg(format!("blog.example.com:{port}:127.0.0.1"))
            .args(["-o", "/dev/stdout", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_owned(), body.to_owned())
    };
    let site = format!("https://blog.example.com:{port}");
    let (status, body) = curl(&[&format!("{site}/hello")]);
    assert_eq!(status, "200", "{body}");
    // the scheme and host came through the proxy_set_header lines
    assert!(
        body.contains("request.url = https://blog.example.com/hello"),
        "{body}"
    );
    let (status, _) = curl(&["--http2", &format!("{site}/en/")]);
    assert_eq!(status, "200");
    // an upload as large as the admin takes passes nginx (the host answers
    // it: no CSRF token); a larger one gets nginx's 413
    let large = dir.join("large");
    for (bytes, expected) in [(15 * 1024 * 1024, "400"), (17 * 1024 * 1024, "413")] {
        std::fs::write(&large, vec![b'a'; bytes]).unwrap();
        let (status, body) = curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data-binary",
            &format!("@{}", large.display()),
            &format!("{site}/admin/en/login"),
        ]);
        assert_eq!(status, expected, "{bytes} bytes: {body}");
    }
    // plain HTTP is sent to HTTPS
    let redirect = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://127.0.0.1:{http_port}/en/"))
        .args(["-H", "Host: blog.example.com"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&redirect.stdout),
        "301 https://blog.example.com/en/"
    );
}
