//! `cargo xtask bench`: measures the host against a bare hyper baseline
//! built in the same run, and reports ratios.
//!
//! The way through it: `site` writes the mount tables and posts, `servers`
//! starts the host and the baseline, `compare` loads them in alternating
//! rounds with `wrk` while `usage` reads what each request cost from
//! `/proc`, `stats` turns rounds into medians and paired ratios,
//! `callgrind` counts instructions per request, `cluster` measures the
//! blog on PostgreSQL and 1 to 3 hosts behind nginx, and `report` writes
//! the tables and judges the targets. Load is keep-alive, on 127.0.0.1
//! only.

pub mod attack;
mod callgrind;
mod cluster;
mod compare;
// nginx's configurations are the tests' own (`host/tests/common`), some
// of which only the tests use
#[path = "../../../host/tests/common/nginx_conf.rs"]
#[allow(dead_code)]
mod nginx_conf;
mod options;
mod report;
mod servers;
mod site;
mod stats;
mod usage;
mod wrk;

use std::{fs, path::Path, process::Command};

pub use options::Options;

use compare::compare;
use report::{Instructions, Results, Scenario};
use servers::Server;

/// The scenarios, each against the baseline's hello: a name for the
/// report and the host's path.
const SCENARIOS: [(&str, &str); 7] = [
    ("`/hello` (hello through the ABI)", "/hello"),
    ("`/admin/hello`", "/admin/hello"),
    (
        "`/en/` (blog home page: ten posts from the database)",
        "/en/",
    ),
    (
        "`/en/post/post-12` (a post: 3 KB of markdown)",
        "/en/post/post-12",
    ),
    (
        "`/static/style.css` (small static file)",
        "/static/style.css",
    ),
    ("`/static/big.bin` (200 KB static file)", "/static/big.bin"),
    ("404 (`/no/such/page`)", "/no/such/page"),
];

/// The static files measured against nginx serving the same folder: a name
/// for the report and the path on both.
const AGAINST_NGINX: [(&str, &str); 2] = [
    (
        "`/static/style.css` (small static file)",
        "/static/style.css",
    ),
    ("`/static/big.bin` (200 KB static file)", "/static/big.bin"),
];

/// The whole benchmark; returns the report, also written to
/// `target/bench/report.md`.
pub fn run(root: &Path, release: &Path, options: &Options) -> Result<String, String> {
    install_tools(root)?;
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir).map_err(|error| error.to_string())?;
    // The previous run's log files: every request writes an access line, some
    // GB of them per run, which filled the disk after a few runs.
    let logs = out_dir.join("logs");
    match fs::remove_dir_all(&logs) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot remove {}: {error}", logs.display()));
        }
        _ => {}
    }
    let (two_mounts, hundred_mounts) = site::write_tables(root, &out_dir)?;
    let host_binary = release.join("host");
    site::seed_posts(&host_binary, &two_mounts, &out_dir)?;
    let host_command = |table: &Path| {
        let mut command = Command::new(&host_binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(table)
            // The default log level: access lines are part of the cost.
            .env_remove("RUST_LOG");
        command
    };
    let baseline_command = || {
        let mut command = Command::new(release.join("baseline"));
        command.arg("127.0.0.1:0");
        command
    };
    // the blog on PostgreSQL and the cluster, against a baseline of its own
    let postgres_part = || -> Result<cluster::PostgresResults, String> {
        let baseline = Server::start(baseline_command())?;
        wrk::run(baseline.addr, "/hello", 64, 2)?;
        cluster::run(
            options,
            &host_binary,
            &host_command,
            &baseline,
            &two_mounts,
            &out_dir,
        )
    };
    if options.postgres_only {
        let postgres = postgres_part()?;
        let report = report::write_postgres(options, &postgres);
        fs::write(out_dir.join("report.md"), &report).map_err(|error| error.to_string())?;
        return Ok(report);
    }
    let static_dir = site::static_folder(&out_dir);
    if options.static_only {
        let host = Server::start(host_command(&two_mounts))?;
        let against_nginx = static_against_nginx(options, &host, &static_dir)?;
        let report = report::write_against_nginx(options, &against_nginx);
        fs::write(out_dir.join("report.md"), &report).map_err(|error| error.to_string())?;
        return Ok(report);
    }
    let host = Server::start(host_command(&two_mounts))?;
    let baseline = Server::start(baseline_command())?;

    // Warm both up first, unmeasured: the first scenario should not pay for
    // log buffers and allocator arenas growing to their working size.
    for server in [&host, &baseline] {
        wrk::run(server.addr, "/hello", 64, 2)?;
    }
    let mut scenarios = Vec::new();
    let mut skipped = Vec::new();
    for connections in [64, 1] {
        for (name, path) in SCENARIOS {
            let expected = if path.starts_with("/no/") { 404 } else { 200 };
            match servers::status_of(host.addr, path) {
                Some(status) if status == expected => {}
                other => {
                    if connections == 64 {
                        skipped.push(format!(
                            "{name}: the host answers {other:?}, not {expected}, so it is not measured"
                        ));
                    }
                    continue;
                }
            }
            eprintln!("bench: {name}, {connections} connection(s)");
            // the same hello body, byte for byte, as `/hello`
            let compared = compare(options, (&host, path), (&baseline, "/hello"), connections)?;
            scenarios.push(Scenario {
                name,
                connections,
                compared,
            });
        }
    }
    let against_nginx = static_against_nginx(options, &host, &static_dir)?;
    let (peak_kib, rss_kib) = usage::memory_kib(host.pid());

    eprintln!("bench: 100 mounts against 2 mounts");
    let hundred = Server::start(host_command(&hundred_mounts))?;
    // warmed up like the others before it is measured
    wrk::run(hundred.addr, "/m50/hello", 64, 2)?;
    let mounts = compare(
        options,
        (&hundred, "/m50/hello"),
        (&host, "/admin/hello"),
        64,
    )?;
    drop(hundred);
    drop(host);
    drop(baseline);

    eprintln!("bench: start-up times");
    let startup_two_ms = servers::startup_ms(&host_binary, &two_mounts)?;
    let startup_hundred_ms = servers::startup_ms(&host_binary, &hundred_mounts)?;

    eprintln!("bench: instructions per request, under callgrind");
    let count =
        |command: &Command, path| callgrind::instructions_per_request(command, path, &out_dir);
    let instructions = Instructions {
        host: count(&host_command(&two_mounts), "/hello")?,
        baseline: count(&baseline_command(), "/hello")?,
        hundred_mounts: count(&host_command(&hundred_mounts), "/m50/hello")?,
        two_mounts: count(&host_command(&two_mounts), "/admin/hello")?,
    };

    eprintln!("bench: the blog on PostgreSQL, and a cluster behind nginx");
    let postgres = postgres_part()?;
    scenarios.extend(postgres.scenarios);

    let results = Results {
        scenarios,
        skipped,
        mounts,
        startup_two_ms,
        startup_hundred_ms,
        peak_kib,
        rss_kib,
        instructions,
        cluster: postgres.cluster,
        against_nginx,
    };
    let hello = results
        .at_64(report::HELLO)
        .ok_or("the hello scenario was not measured")?;
    let report = report::write(options, &results, hello);
    fs::write(out_dir.join("report.md"), &report).map_err(|error| error.to_string())?;
    Ok(report)
}

/// The host's static files against nginx serving the same folder, started
/// here and stopped after.
fn static_against_nginx(
    options: &Options,
    host: &Server,
    static_dir: &Path,
) -> Result<Vec<Scenario>, String> {
    let nginx = Server::nginx_static(static_dir)?;
    wrk::run(nginx.addr, "/static/big.bin", 64, 2)?;
    let mut scenarios = Vec::new();
    for connections in [64, 1] {
        for (name, path) in AGAINST_NGINX {
            for server in [host, &nginx] {
                if servers::status_of(server.addr, path) != Some(200) {
                    return Err(format!("{path} is not served (200) on {}", server.addr));
                }
            }
            eprintln!("bench: {name} against nginx, {connections} connection(s)");
            let compared = compare(options, (host, path), (&nginx, path), connections)?;
            scenarios.push(Scenario {
                name,
                connections,
                compared,
            });
        }
    }
    Ok(scenarios)
}

/// Installs wrk, valgrind, nginx and PostgreSQL when missing, with the script that installs
/// every tool the project's tasks need.
fn install_tools(root: &Path) -> Result<(), String> {
    let script = root.join(".ci/install");
    let status = Command::new(&script)
        .arg("bench")
        .status()
        .map_err(|error| format!("cannot run {}: {error}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} bench could not install the bench's tools",
            script.display()
        ))
    }
}
