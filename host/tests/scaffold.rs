//! The README's "Write your own app" steps, run exactly, on a copy of the
//! workspace: scaffold, unit test, serve with reload, fetch the page; then
//! an edit to the app's template goes live without a manual restart.

mod common;

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

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

#[test]
fn the_readme_steps_scaffold_test_mount_and_serve_a_new_section() {
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
    let said = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(said.contains("created apps/reports"), "{said}");
    assert!(
        said.contains(r#"added to plugins.json: {"name":"reports","prefix":"/reports","library":"apps/libreports.so","static_folder":"shared/static"}"#),
        "{said}"
    );

    // 2. cargo test -p reports
    let tested = cargo(&workspace, &target, &["test", "-p", "reports"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "{said}");
    assert!(
        said.contains("test tests::the_index_page_names_the_app ... ok"),
        "{said}"
    );

    // 3. cargo xtask serve --reload (on a free port instead of 5000)
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

    // 4. curl http://127.0.0.1:5000/reports/
    let get = |addr| {
        common::send_raw(
            addr,
            format!("GET /reports/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            false,
        )
    };
    let page = get(addr);
    // minijinja escapes `/` in HTML as `&#x2f;`
    let html = page.text().replace("&#x2f;", "/");

    // An edit to the template: xtask rebuilds and reinstalls the library,
    // the host sees it and restarts on it.
    let template = workspace.join("apps/reports/templates/index.html");
    let edited = std::fs::read_to_string(&template)
        .unwrap()
        .replace("<h1>{{ app }}</h1>", "<h1>{{ app }}, edited</h1>");
    std::fs::write(&template, edited).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let mut reloaded = false;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if get(addr).text().contains("<h1>reports, edited</h1>") {
            reloaded = true;
            break;
        }
    }

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
    assert!(reloaded, "the edited template never went live");
}
