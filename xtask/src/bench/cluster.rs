//! The blog on PostgreSQL: its pages against the baseline as the SQLite
//! ones are, and the same site served by 1, 2 and 3 hosts behind nginx, on
//! this one machine, to see what nginx and each host cost (not how a
//! cluster scales: every process shares the same two cores).
//!
//! The PostgreSQL server and nginx's configuration are the tests' own
//! (`host/tests/common`), so that the bench measures what the tests check.

#[path = "../../../host/tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres_server;

use std::{
    fs,
    net::SocketAddr,
    path::Path,
    process::{Child, Command},
};

use super::{
    compare::compare,
    nginx_conf,
    options::Options,
    report::Scenario,
    servers::{self, Server},
    site,
    stats::median,
    usage, wrk,
};

/// The page every configuration of the cluster serves: a post, read from
/// the database (about 16 KB of HTML).
pub(super) const CLUSTER_PATH: &str = "/en/post/post-12";

/// The blog's pages measured on PostgreSQL, as names for the report.
const SCENARIOS: [(&str, &str); 2] = [
    ("`/en/` on PostgreSQL (blog home page)", "/en/"),
    ("`/en/post/post-12` on PostgreSQL", "/en/post/post-12"),
];

/// One configuration of the cluster, measured.
pub(super) struct ClusterRow {
    pub(super) label: String,
    pub(super) run: wrk::Run,
    /// CPU time per request, µs: the hosts', nginx's, PostgreSQL's.
    pub(super) hosts_cpu_us: f64,
    pub(super) nginx_cpu_us: f64,
    pub(super) postgres_cpu_us: f64,
}

/// What this part of the bench measured.
pub(super) struct PostgresResults {
    pub(super) scenarios: Vec<Scenario>,
    pub(super) cluster: Vec<ClusterRow>,
}

/// nginx in front of some hosts; stopped when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _folder: tempfile::TempDir,
}

impl Nginx {
    fn start(upstreams: &[SocketAddr]) -> Result<Nginx, String> {
        let folder = tempfile::tempdir().map_err(|error| error.to_string())?;
        let (child, addr) = nginx_conf::start(folder.path(), upstreams)?;
        Ok(Nginx {
            child,
            addr,
            _folder: folder,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the load goes and which processes serve it.
struct Configuration {
    label: String,
    addr: SocketAddr,
    hosts: Vec<u32>,
    nginx: Option<u32>,
}

/// Runs the PostgreSQL part: the scenarios against `baseline`, then the
/// cluster's configurations. `host_command` makes a host's command for a
/// table; `two` is the two-mount table the SQLite scenarios served.
pub(super) fn run(
    options: &Options,
    host_binary: &Path,
    host_command: &dyn Fn(&Path) -> Command,
    baseline: &Server,
    two: &Path,
    out_dir: &Path,
) -> Result<PostgresResults, String> {
    let postgres = postgres_server::Postgres::start();
    let url = postgres.database("blog");
    let key = out_dir.join("cluster.key");
    fs::write(&key, [7u8; 64]).map_err(|error| error.to_string())?;
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|error| error.to_string())?;
    let tables = (0..3)
        .map(|index| site::postgres_table(two, &url, &key, out_dir, index))
        .collect::<Result<Vec<_>, _>>()?;
    site::import_posts(host_binary, &tables[0], out_dir)?;
    let hosts = tables
        .iter()
        .map(|table| Server::start(host_command(table)))
        .collect::<Result<Vec<_>, _>>()?;
    for host in &hosts {
        wrk::run(host.addr, CLUSTER_PATH, 64, 2)?;
    }

    let mut scenarios = Vec::new();
    for connections in [64, 1] {
        for (name, path) in SCENARIOS {
            if servers::status_of(hosts[0].addr, path) != Some(200) {
                return Err(format!(
                    "{name}: the host on PostgreSQL does not answer 200"
                ));
            }
            eprintln!("bench: {name}, {connections} connection(s)");
            let compared = compare(
                options,
                (&hosts[0], path),
                (baseline, "/hello"),
                connections,
            )?;
            scenarios.push(Scenario {
                name,
                connections,
                compared,
            });
        }
    }

    let nginx = (1..=hosts.len())
        .map(|count| {
            let upstreams: Vec<SocketAddr> = hosts[..count].iter().map(|host| host.addr).collect();
            Nginx::start(&upstreams)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut configurations = vec![Configuration {
        label: "1 host, no proxy".to_owned(),
        addr: hosts[0].addr,
        hosts: vec![hosts[0].pid()],
        nginx: None,
    }];
    for (index, proxy) in nginx.iter().enumerate() {
        let count = index + 1;
        configurations.push(Configuration {
            label: format!(
                "{count} host{} behind nginx",
                if count == 1 { "" } else { "s" }
            ),
            addr: proxy.addr,
            hosts: hosts[..count].iter().map(Server::pid).collect(),
            nginx: Some(proxy.child.id()),
        });
    }
    for configuration in &configurations {
        wrk::run(configuration.addr, CLUSTER_PATH, 64, 2)?;
    }
    // rounds alternate the configurations, as the scenarios alternate
    // host and baseline
    let mut measured: Vec<Vec<ClusterRow>> = configurations.iter().map(|_| Vec::new()).collect();
    for _ in 0..options.rounds {
        for (configuration, rows) in configurations.iter().zip(&mut measured) {
            eprintln!("bench: cluster, {}", configuration.label);
            rows.push(measure(configuration, postgres.pid(), options.seconds)?);
        }
    }
    let cluster = configurations
        .iter()
        .zip(measured)
        .map(|(configuration, rows)| median_row(&configuration.label, &rows))
        .collect();
    Ok(PostgresResults { scenarios, cluster })
}

fn measure(
    configuration: &Configuration,
    postgres: u32,
    seconds: u32,
) -> Result<ClusterRow, String> {
    let cpu = |pids: &[u32]| -> f64 { pids.iter().map(|pid| usage::tree_cpu_us(*pid)).sum() };
    let nginx: Vec<u32> = configuration.nginx.into_iter().collect();
    let before = (
        cpu(&configuration.hosts),
        cpu(&nginx),
        usage::tree_cpu_us(postgres),
    );
    let run = wrk::run(configuration.addr, CLUSTER_PATH, 64, seconds)?;
    let after = (
        cpu(&configuration.hosts),
        cpu(&nginx),
        usage::tree_cpu_us(postgres),
    );
    if run.non_success > 0 {
        return Err(format!(
            "{}: {} of {} requests failed",
            configuration.label, run.non_success, run.requests
        ));
    }
    let per = |from: f64, to: f64| (to - from) / run.requests.max(1) as f64;
    Ok(ClusterRow {
        label: configuration.label.clone(),
        run,
        hosts_cpu_us: per(before.0, after.0),
        nginx_cpu_us: per(before.1, after.1),
        postgres_cpu_us: per(before.2, after.2),
    })
}

/// The median of each figure over the rounds of one configuration.
fn median_row(label: &str, rows: &[ClusterRow]) -> ClusterRow {
    let pick =
        |field: fn(&ClusterRow) -> f64| median(&mut rows.iter().map(field).collect::<Vec<_>>());
    ClusterRow {
        label: label.to_owned(),
        run: wrk::Run {
            requests: rows.iter().map(|row| row.run.requests).sum(),
            requests_per_second: pick(|row| row.run.requests_per_second),
            p50_us: pick(|row| row.run.p50_us),
            p99_us: pick(|row| row.run.p99_us),
            non_success: rows.iter().map(|row| row.run.non_success).sum(),
        },
        hosts_cpu_us: pick(|row| row.hosts_cpu_us),
        nginx_cpu_us: pick(|row| row.nginx_cpu_us),
        postgres_cpu_us: pick(|row| row.postgres_cpu_us),
    }
}
