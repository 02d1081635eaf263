//! The real host serving real app libraries over real HTTP.

mod common;

use common::{Host, Table, mount};
use serde_json::json;

fn blog() -> Host {
    Host::start(Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
    ]))
}

#[test]
fn the_seed_bodies_are_byte_for_byte_flasks() {
    let host = blog();
    let port = host.addr.port();
    let front = host.get("/hello");
    assert_eq!(front.status, 200);
    assert_eq!(
        front.text(),
        format!("Hello frontend! request.url = http://127.0.0.1:{port}/hello")
    );
    assert_eq!(
        front.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let admin = host.get("/admin/hello");
    assert_eq!(admin.status, 200);
    assert_eq!(
        admin.text(),
        format!("Hello admin! request.url = http://127.0.0.1:{port}/admin/hello")
    );
}

/// Both mounts echo what they received, so each row shows where the host sent
/// the request and how it split the URL.
fn echoing_pair() -> Host {
    let mut front = mount("front", "/", "probe");
    front["config"] = json!({"catch_all": true});
    let mut admin = mount("admin", "/admin", "probe");
    admin["config"] = json!({"catch_all": true});
    Host::start(Table::new(vec![front, admin]))
}

#[test]
fn dispatch_follows_the_design_table() {
    let host = echoing_pair();
    // (request target, app, script_root, path)
    let rows = [
        ("/echo", "front", "", "/echo"),
        ("/admin/echo", "admin", "/admin", "/echo"),
        ("/admin/users/5?x=1", "admin", "/admin", "/users/5"),
        // segment boundary: not admin
        ("/administrator", "front", "", "/administrator"),
        // case-sensitive
        ("/Admin/", "front", "", "/Admin/"),
        ("/ADMIN/x", "front", "", "/ADMIN/x"),
        // matched on the decoded path
        ("/%61dmin/users", "admin", "/admin", "/users"),
        ("/admin/a%20b", "admin", "/admin", "/a b"),
    ];
    for (target, app, script_root, path) in rows {
        let response = host.get(target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        let echo = response.json();
        assert_eq!(echo["app"], app, "{target}");
        assert_eq!(echo["script_root"], script_root, "{target}");
        assert_eq!(echo["path"], path, "{target}");
    }
    let echo = host.get("/admin/users/5?x=1&y=%C3%A9").json();
    assert_eq!(echo["query_string"], "x=1&y=%C3%A9");
    assert_eq!(echo["query"], json!([["x", "1"], ["y", "é"]]));
    assert_eq!(
        echo["url"],
        format!("http://{}/admin/users/5?x=1&y=%C3%A9", host.addr)
    );
}

#[test]
fn a_bare_prefix_redirects_with_a_relative_location_and_keeps_the_query() {
    let host = echoing_pair();
    let response = host.get("/admin");
    assert_eq!(response.status, 308);
    assert_eq!(response.header("location"), Some("/admin/"));
    let response = host.get("/admin?x=1&y=2");
    assert_eq!(response.status, 308);
    assert_eq!(response.header("location"), Some("/admin/?x=1&y=2"));
}

#[test]
fn an_encoded_slash_is_a_bad_request() {
    let host = echoing_pair();
    for target in ["/admin%2Fusers", "/admin%2fusers", "/x/%2F"] {
        let response = host.get(target);
        assert_eq!(response.status, 400, "{target}");
        assert!(response.text().contains("encoded slash"), "{target}");
    }
    // and the host keeps serving
    assert_eq!(host.get("/admin/").status, 200);
}

#[test]
fn the_router_answers_404_405_and_options() {
    let host = Host::start(Table::new(vec![mount("probe", "/", "probe")]));
    let missing = host.get("/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.text().starts_with("404 Not Found"));

    let wrong = host.request("DELETE", "/echo", &[], b"");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, POST, PUT, HEAD, OPTIONS"));
    let wrong = host.get("/only-post");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST, OPTIONS"));

    let options = host.request("OPTIONS", "/only-post", &[], b"");
    assert_eq!(options.status, 200);
    assert_eq!(options.header("allow"), Some("POST, OPTIONS"));

    // strict slashes, as Werkzeug: /dir answers a redirect to /dir/
    let slash = host.get("/dir?a=1");
    assert_eq!(slash.status, 308);
    assert_eq!(slash.header("location"), Some("/dir/?a=1"));

    let param = host.get("/post/hello%20there");
    assert_eq!(param.text(), "post hello there");
}

#[test]
fn head_requests_get_headers_and_no_body() {
    let host = blog();
    let response = host.request("HEAD", "/admin/hello", &[], b"");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    let expected = format!(
        "Hello admin! request.url = http://{}/admin/hello",
        host.addr
    );
    assert_eq!(
        response.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
}

#[test]
fn url_for_and_static_url_include_the_mount_prefix() {
    let host = Host::start(Table::new(vec![
        mount("front", "/", "probe"),
        mount("admin", "/admin", "probe"),
    ]));
    let root = host.get("/links").json();
    assert_eq!(root["index"], "/");
    assert_eq!(root["post"], "/post/hello%20world");
    assert_eq!(root["post_page"], "/post/x?page=2");
    assert_eq!(root["static"], "/static/style.css");
    let admin = host.get("/admin/links").json();
    assert_eq!(admin["index"], "/admin/");
    assert_eq!(admin["post"], "/admin/post/hello%20world");
    assert_eq!(admin["post_page"], "/admin/post/x?page=2");
    assert_eq!(admin["static"], "/admin/static/style.css");
    // the redirect helper builds its location with url_for too
    let redirect = host.get("/admin/redirect");
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("/admin/"));
}

#[test]
fn forms_headers_and_request_details_reach_the_app() {
    let host = Host::start(Table::new(vec![mount("probe", "/", "probe")]));
    let response = host.request(
        "POST",
        "/echo?q=1",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Custom", "yes"),
        ],
        b"title=Hello+world&tag=a&tag=b%26c",
    );
    assert_eq!(response.status, 200);
    let echo = response.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo["form"],
        json!([["title", "Hello world"], ["tag", "a"], ["tag", "b&c"]])
    );
    assert_eq!(echo["query"], json!([["q", "1"]]));
    assert_eq!(echo["scheme"], "http");
    assert_eq!(echo["host"], host.addr.to_string());
    assert!(
        echo["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let headers = echo["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-custom", "yes"])));
    // the id the app saw is the one sent back
    assert_eq!(echo["request_id"].as_str(), response.header("x-request-id"));
}

#[test]
fn a_third_app_at_a_nested_prefix_wins_over_its_parent() {
    let host = Host::start(Table::new(vec![
        mount("frontend", "/", "frontend"),
        mount("admin", "/admin", "admin"),
        mount("archive", "/admin/archive", "archive"),
    ]));
    let index = host.get("/admin/archive/");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // its links carry the nested prefix
    assert!(
        index
            .text()
            .contains("<a href=\"/admin/archive/2026\">2026</a>"),
        "{}",
        index.text()
    );
    assert_eq!(host.get("/admin/archive/2026").text(), "Archive for 2026");
    assert_eq!(host.get("/admin/archive").status, 308);
    assert!(host.get("/admin/hello").text().starts_with("Hello admin!"));
    // a sibling that merely starts with the same letters stays with admin
    assert_eq!(host.get("/admin/archivex").status, 404);
}

#[test]
fn one_library_mounted_twice_gives_two_independent_instances() {
    let mut one = mount("one", "/one", "probe");
    one["config"] = json!({"colour": "red"});
    let mut two = mount("two", "/two", "probe");
    two["config"] = json!({"colour": "blue"});
    let host = Host::start(Table::new(vec![one, two]));
    assert_eq!(host.get("/one/count").text(), "1");
    assert_eq!(host.get("/one/count").text(), "2");
    assert_eq!(host.get("/two/count").text(), "1");
    let one = host.get("/one/echo").json();
    let two = host.get("/two/echo").json();
    assert_eq!(
        (one["app"].clone(), one["config"]["colour"].clone()),
        (json!("one"), json!("red"))
    );
    assert_eq!(
        (two["app"].clone(), two["config"]["colour"].clone()),
        (json!("two"), json!("blue"))
    );
}

#[test]
fn the_apps_and_libc_allocate_with_the_hosts_allocator() {
    // glibc's dynamic linker reports each symbol binding: the host defines
    // and exports `malloc` and its kin (jemalloc, unprefixed), so the app
    // libraries and libc must bind theirs to the host executable, or two
    // allocators would share the process
    let table = Table::new(vec![mount("frontend", "/", "frontend")]);
    let bindings = table.dir.path().join("ld-debug");
    let host = Host::start_with_env(
        &table,
        &[
            ("RUST_LOG", "info"),
            ("LD_DEBUG", "bindings"),
            ("LD_DEBUG_OUTPUT", bindings.to_str().unwrap()),
        ],
    );
    assert_eq!(host.get("/hello").status, 200);
    drop(host);
    let mut text = String::new();
    for entry in std::fs::read_dir(table.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("ld-debug") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    for (library, symbol) in [
        ("libfrontend.so", "malloc"),
        ("libfrontend.so", "free"),
        ("libc.so.6", "malloc"),
        ("libc.so.6", "free"),
    ] {
        // `binding file <library> [0] to <target> [0]: normal symbol `malloc'`
        let line = text
            .lines()
            .find(|line| {
                let file = line.split("binding file ").nth(1);
                file.and_then(|rest| rest.split_whitespace().next())
                    .is_some_and(|file| file.ends_with(library))
                    && line.contains(&format!("symbol `{symbol}'"))
            })
            .unwrap_or_else(|| panic!("no binding of {symbol} in {library}"));
        let target = line
            .split(" to ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next());
        assert!(target.is_some_and(|file| file.ends_with("/host")), "{line}");
    }
}

#[test]
fn a_panicking_route_answers_500_and_the_host_keeps_serving() {
    let host = Host::start(Table::new(vec![mount("probe", "/", "probe")]));
    let response = host.get("/panic");
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), "500 Internal Server Error\n");
    // the panic message is not shown to the client, but logged under the
    // app's logger
    let log = host.wait_for_log("probe panic on purpose");
    let line = log
        .lines()
        .find(|line| line.contains("probe panic on purpose"))
        .expect("the panic is logged");
    assert!(line.contains("app_probe"), "{line}");
    assert!(line.contains("handler panicked"), "{line}");
    for _ in 0..3 {
        assert_eq!(host.get("/count").status, 200);
        assert_eq!(host.get("/panic").status, 500);
    }
    let error = host.get("/error");
    assert_eq!(error.status, 500);
    assert!(!error.text().contains("on purpose"));
    assert!(
        host.wait_for_log("probe failure on purpose")
            .contains("probe failure on purpose")
    );
}

#[test]
fn app_log_events_reach_the_host_under_the_logger_name_with_the_request_id() {
    let mut probe = mount("probe", "/", "probe");
    probe["logger"] = json!("app_custom");
    let host = Host::start(Table::new(vec![probe]));
    let response = host.get("/log?text=needle-42&thread=1");
    assert_eq!(response.status, 200);
    let id = response.header("x-request-id").unwrap().to_owned();
    let log = host.wait_for_log("needle-42 from a spawned thread");
    let line = log
        .lines()
        .find(|line| line.contains("probe says needle-42"))
        .expect("the app's event is logged");
    assert!(line.contains("app_custom"), "{line}");
    assert!(line.contains(&id), "request id {id} missing: {line}");
    let thread_line = log
        .lines()
        .find(|line| line.contains("needle-42 from a spawned thread"))
        .expect("an event from a thread the app spawned is logged");
    assert!(thread_line.contains("app_custom"), "{thread_line}");
}

#[test]
fn oversized_bodies_get_413() {
    let mut probe = mount("probe", "/", "probe");
    probe["max_body_bytes"] = json!(16);
    let host = Host::start(Table::new(vec![probe]));
    let response = host.request("POST", "/echo", &[], &[b'x'; 17]);
    assert_eq!(response.status, 413);
    let response = host.request("POST", "/echo", &[], &[b'x'; 16]);
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["body_len"], 16);
}

/// A process's threads: each one's `/proc` folder and name (threads that
/// end meanwhile left out).
fn threads(pid: u32) -> Vec<(std::path::PathBuf, String)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            Some((task.path(), name.trim().to_owned()))
        })
        .collect()
}

/// The names of a process's threads.
fn thread_names(pid: u32) -> Vec<String> {
    threads(pid).into_iter().map(|(_, name)| name).collect()
}

/// How many times each of `pid`'s threads (`name (tid)`) has been switched
/// out so far.
fn context_switches(pid: u32) -> std::collections::BTreeMap<String, u64> {
    threads(pid)
        .into_iter()
        .filter_map(|(folder, name)| {
            let status = std::fs::read_to_string(folder.join("status")).ok()?;
            let count = status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            let tid = folder.file_name()?.to_string_lossy().into_owned();
            Some((format!("{name} ({tid})"), count))
        })
        .collect()
}

#[test]
fn an_idle_host_wakes_none_of_its_threads() {
    let host = Host::start(Table::new(vec![mount("probe", "/", "probe")]));
    // a request runs a handler inline (waking the stall guard) and writes an
    // access line (waking the log writer)
    assert_eq!(host.get("/count").text(), "1");
    // within a few seconds of the last request every thread sleeps until
    // the next event: a whole second passes with no thread switched in
    let mut woke = Vec::new();
    for _ in 0..10 {
        let before = context_switches(host.child.id());
        std::thread::sleep(std::time::Duration::from_secs(1));
        let after = context_switches(host.child.id());
        woke = after
            .iter()
            .filter(|(thread, count)| before.get(*thread).is_none_or(|old| *count > old))
            .map(|(thread, count)| (thread.clone(), count - before.get(thread).unwrap_or(&0)))
            .collect();
        if woke.is_empty() {
            break;
        }
    }
    assert!(
        woke.is_empty(),
        "threads still waking after 10 s idle: {woke:?}"
    );
    // and the host still answers, and logs, as before
    let response = host.get("/count");
    assert_eq!(response.text(), "2");
    let id = response.header("x-request-id").unwrap();
    let log = host.wait_for_log_file("app_probe", &format!("request_id={id}"));
    assert!(log.contains(&format!("request_id={id}")), "{log}");
}

#[test]
fn on_one_cpu_fast_handlers_run_inline_and_a_slow_one_does_not_stall_the_host() {
    let table = Table::new(vec![
        mount("fast", "/", "probe"),
        mount("slow", "/slow", "probe"),
    ]);
    let host = Host::start_on_one_cpu(&table);
    for count in 1..=20 {
        assert_eq!(host.get("/count").text(), count.to_string());
    }
    let names = thread_names(host.child.id());
    // two async workers even on one CPU, so that handlers can run inline on
    // one while the other accepts: no handler thread was needed
    let workers = names.iter().filter(|name| *name == "tokio-rt-worker");
    assert_eq!(workers.count(), 2, "{names:?}");
    assert!(
        !names.iter().any(|name| name.starts_with("fast-")),
        "{names:?}"
    );
    // a slow handler takes the one inline slot; the host keeps answering
    // while it runs, also after a quiet spell in which the stall guard went
    // to sleep (the slow call wakes it)
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sleeper = host.get_in_background("/slow/sleep/3000");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(host.get("/count").text(), "21");
    assert!(!sleeper.is_finished());
    assert_eq!(sleeper.join().unwrap().text(), "slept 3000");
}

#[test]
fn a_slow_handler_moves_its_mount_to_its_own_threads_which_keep_answering() {
    let host = Host::start(Table::new(vec![
        mount("fast", "/", "probe"),
        mount("slow", "/slow", "probe"),
    ]));
    assert_eq!(host.get("/slow/sleep/250").text(), "slept 250");
    let log = host.wait_for_log("handlers run on the mount's own threads");
    let line = log
        .lines()
        .find(|line| line.contains("handlers run on the mount's own threads"))
        .unwrap();
    assert!(line.contains("mount=slow"), "{line}");
    // from now on the slow mount's requests go through its pool: concurrent
    // ones, panics and logging all still work there
    let sleepers: Vec<_> = (0..4)
        .map(|_| host.get_in_background("/slow/sleep/100"))
        .collect();
    assert_eq!(host.get("/count").text(), "1");
    for sleeper in sleepers {
        assert_eq!(sleeper.join().unwrap().text(), "slept 100");
    }
    assert_eq!(host.get("/slow/panic").status, 500);
    assert_eq!(host.get("/slow/count").text(), "1");
    let response = host.get("/slow/log?text=pooled-event");
    let id = response.header("x-request-id").unwrap().to_owned();
    let log = host.wait_for_log("probe says pooled-event");
    let line = log
        .lines()
        .find(|line| line.contains("probe says pooled-event"))
        .unwrap();
    assert!(line.contains(&id), "{line}");
    // only the slow mount was moved
    assert!(
        !log.lines()
            .any(|line| line.contains("own threads") && line.contains("mount=fast")),
        "{log}"
    );
}
