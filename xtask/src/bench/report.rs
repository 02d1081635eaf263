//! The report: the scenarios' tables, the other measures, and the
//! targets judged on them.

use std::{fmt::Write as _, thread};

use super::{
    cluster::{CLUSTER_PATH, ClusterRow, PostgresResults},
    compare::Compared,
    options::Options,
};

/// The scenario the targets' hello figures come from, by its name's start.
pub(super) const HELLO: &str = "`/hello` ";
/// The small static file's scenario.
const SMALL_STATIC: &str = "`/static/style.css` ";
/// The 200 KB static file's scenario.
const BIG_STATIC: &str = "`/static/big.bin` ";

/// One scenario measured against the baseline's hello.
pub(super) struct Scenario {
    pub(super) name: &'static str,
    pub(super) connections: u32,
    /// a: the host, b: the baseline.
    pub(super) compared: Compared,
}

/// User-space instructions per hello request, counted by callgrind.
pub(super) struct Instructions {
    pub(super) host: f64,
    pub(super) baseline: f64,
    /// `/m50/hello` with 100 mounts.
    pub(super) hundred_mounts: f64,
    /// `/admin/hello` with 2 mounts: the same path depth.
    pub(super) two_mounts: f64,
}

/// Everything one run measured.
pub(super) struct Results {
    pub(super) scenarios: Vec<Scenario>,
    /// Scenarios not measured, and why.
    pub(super) skipped: Vec<String>,
    /// 100 mounts (a) against 2 (b).
    pub(super) mounts: Compared,
    pub(super) startup_two_ms: f64,
    pub(super) startup_hundred_ms: f64,
    /// The host's peak and current resident memory after all the load.
    pub(super) peak_kib: u64,
    pub(super) rss_kib: u64,
    pub(super) instructions: Instructions,
    /// The cluster's configurations, on PostgreSQL.
    pub(super) cluster: Vec<ClusterRow>,
    /// The static files against nginx's (b).
    pub(super) against_nginx: Vec<Scenario>,
}

impl Results {
    /// The scenario whose name starts with `name`, at 64 connections.
    pub(super) fn at_64(&self, name: &str) -> Option<&Compared> {
        at_64(&self.scenarios, name)
    }
}

/// The scenario of `scenarios` whose name starts with `name`, at 64
/// connections.
fn at_64<'s>(scenarios: &'s [Scenario], name: &str) -> Option<&'s Compared> {
    scenarios
        .iter()
        .find(|scenario| scenario.connections == 64 && scenario.name.starts_with(name))
        .map(|scenario| &scenario.compared)
}

/// The report in markdown; `hello` is [`HELLO`]'s scenario, which the
/// caller made sure was measured.
pub(super) fn write(options: &Options, results: &Results, hello: &Compared) -> String {
    let (mounts, instructions) = (&results.mounts, &results.instructions);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Benchmark: host against a bare hyper baseline\n\n\
         {} rounds of {} s per side, alternating host and baseline; medians, and for \
         ratios the median of each round's own ratio. \
         Load: wrk, keep-alive, on 127.0.0.1; {} cores.\n",
        options.rounds,
        options.seconds,
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        report,
        "| scenario | conns | host req/s | baseline req/s | ratio | host p50 | host p99 | baseline p50 | baseline p99 | p99 ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for Scenario {
        name,
        connections,
        compared,
    } in &results.scenarios
    {
        let Compared {
            a: host,
            b: baseline,
            ratios,
            ..
        } = compared;
        let _ = writeln!(
            report,
            "| {} | {connections} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {:.2} |",
            name,
            host.run.requests_per_second,
            baseline.run.requests_per_second,
            ratios.requests_per_second,
            format_us(host.run.p50_us),
            format_us(host.run.p99_us),
            format_us(baseline.run.p50_us),
            format_us(baseline.run.p99_us),
            ratios.p99,
        );
    }
    let _ = writeln!(
        report,
        "\nWhat each request cost the machine (medians; the servers' CPU time, with its \
         user-space part in parentheses, and preemptions from /proc, wrk's CPU time and \
         sleeps from getrusage). wrk shares the \
         two cores: where a server takes longer per request, wrk more often runs out of \
         responses and sleeps, and each response then wakes it and preempts the server.\n\n\
         | scenario | conns | host CPU/req (user) | baseline CPU/req (user) | CPU ratio | wrk CPU/req, host / baseline | wrk sleeps/req, host / baseline | server preempted/req, host / baseline |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for Scenario {
        name,
        connections,
        compared,
    } in &results.scenarios
    {
        let (host, baseline) = (compared.a.cost, compared.b.cost);
        let _ = writeln!(
            report,
            "| {} | {connections} | {:.2} µs ({:.2}) | {:.2} µs ({:.2}) | {:.2} | {:.2} / {:.2} µs | {:.3} / {:.3} | {:.3} / {:.3} |",
            name,
            host.server_cpu_us,
            host.server_user_us,
            baseline.server_cpu_us,
            baseline.server_user_us,
            compared.ratios.server_cpu,
            host.load_cpu_us,
            baseline.load_cpu_us,
            host.load_sleeps,
            baseline.load_sleeps,
            host.server_preempted,
            baseline.server_preempted,
        );
    }
    for line in &results.skipped {
        let _ = writeln!(report, "\nNot measured: {line}");
    }
    let _ = writeln!(
        report,
        "\n| measure | value |\n|---|---:|\n\
         | 100 mounts `/m50/hello` req/s | {:.0} |\n\
         | 2 mounts `/admin/hello` req/s | {:.0} |\n\
         | ratio 100 mounts / 2 mounts | {:.3} |\n\
         | start-up to first 200, 2 mounts | {:.1} ms |\n\
         | start-up to first 200, 100 mounts | {:.1} ms |\n\
         | host peak RSS (after all load) | {:.1} MiB |\n\
         | host RSS after the load | {:.1} MiB |\n\
         | user-space instructions per `/hello` request, host (callgrind) | {:.0} |\n\
         | user-space instructions per `/hello` request, baseline (callgrind) | {:.0} |\n\
         | instructions ratio host/baseline | {:.2} |\n\
         | user-space instructions per `/m50/hello` request, 100 mounts (callgrind) | {:.0} |\n\
         | user-space instructions per `/admin/hello` request, 2 mounts (callgrind) | {:.0} |\n\
         | instructions ratio 100 mounts / 2 mounts | {:.3} |",
        mounts.a.run.requests_per_second,
        mounts.b.run.requests_per_second,
        mounts.ratios.requests_per_second,
        results.startup_two_ms,
        results.startup_hundred_ms,
        results.peak_kib as f64 / 1024.0,
        results.rss_kib as f64 / 1024.0,
        instructions.host,
        instructions.baseline,
        instructions.host / instructions.baseline,
        instructions.hundred_mounts,
        instructions.two_mounts,
        instructions.hundred_mounts / instructions.two_mounts,
    );
    write_cluster(&mut report, &results.cluster);
    write_nginx(&mut report, &results.against_nginx);
    let figures = Figures {
        hello: Some(hello.ratios.requests_per_second),
        hello_p99: Some(hello.ratios.p99),
        small_static: results
            .at_64(SMALL_STATIC)
            .map(|row| row.ratios.requests_per_second),
        big_static_vs_nginx: at_64(&results.against_nginx, BIG_STATIC)
            .map(|row| row.ratios.requests_per_second),
        mounts: Some(mounts.ratios.requests_per_second),
        startup_two_ms: Some(results.startup_two_ms),
        startup_hundred_ms: Some(results.startup_hundred_ms),
        rss_mib: Some(results.rss_kib as f64 / 1024.0),
    };
    let _ = writeln!(
        report,
        "\n## Targets\n\n\
         The `/hello` ratio of each round, in order: {}. Beside it, the host's CPU time \
         per `/hello` request against the baseline's: {:.2} ({:.2} µs against {:.2} µs).\n\n\
         | target | goal | this run | |\n|---|---|---:|---|",
        hello
            .rounds
            .iter()
            .map(|ratio| format!("{ratio:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        hello.ratios.server_cpu,
        hello.a.cost.server_cpu_us,
        hello.b.cost.server_cpu_us,
    );
    for target in targets(&figures) {
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} |",
            target.what,
            target.goal,
            target.measured,
            if target.met { "met" } else { "missed" }
        );
    }
    let _ = writeln!(
        report,
        "\nhello ratio host/baseline: {:.2} req/s; host CPU per hello request {:.2} µs against \
         the baseline's {:.2} µs ({:.2})",
        hello.ratios.requests_per_second,
        hello.a.cost.server_cpu_us,
        hello.b.cost.server_cpu_us,
        hello.ratios.server_cpu,
    );
    report
}

/// The static files against nginx: requests per second, latency and CPU
/// per request of both.
fn write_nginx(report: &mut String, scenarios: &[Scenario]) {
    let _ = writeln!(
        report,
        "\n## Static files against nginx\n\n\
         The same folder served by nginx (a worker per core, `sendfile`, \
         `open_file_cache`, buffered access log), in alternating rounds with the host.\n\n\
         | file | conns | host req/s | nginx req/s | ratio | host p50 / p99 | nginx p50 / p99 | host CPU/req | nginx CPU/req |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for Scenario {
        name,
        connections,
        compared,
    } in scenarios
    {
        let (host, nginx) = (&compared.a, &compared.b);
        let _ = writeln!(
            report,
            "| {name} | {connections} | {:.0} | {:.0} | {:.2} | {} / {} | {} / {} | {:.1} µs | {:.1} µs |",
            host.run.requests_per_second,
            nginx.run.requests_per_second,
            compared.ratios.requests_per_second,
            format_us(host.run.p50_us),
            format_us(host.run.p99_us),
            format_us(nginx.run.p50_us),
            format_us(nginx.run.p99_us),
            host.cost.server_cpu_us,
            nginx.cost.server_cpu_us,
        );
    }
}

/// The report of `--static`: the static files against nginx, and the
/// target they are held to.
pub(super) fn write_against_nginx(options: &Options, scenarios: &[Scenario]) -> String {
    let mut report = format!(
        "# Benchmark: static files, host against nginx\n\n\
         {} rounds of {} s per side; medians, ratios the median of the rounds' own.\n",
        options.rounds, options.seconds
    );
    write_nginx(&mut report, scenarios);
    if let Some(big) = at_64(scenarios, BIG_STATIC) {
        let ratio = big.ratios.requests_per_second;
        let _ = writeln!(
            report,
            "\n200 KB file against nginx: {ratio:.2} (target ≥ 0.90: {})",
            if ratio >= 0.9 { "met" } else { "missed" }
        );
    }
    report
}

/// The report of `--postgres`: the blog's pages on PostgreSQL against the
/// baseline, and the cluster.
pub(super) fn write_postgres(options: &Options, results: &PostgresResults) -> String {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Benchmark: the blog on PostgreSQL\n\n\
         {} rounds of {} s per side, alternating host and baseline; medians. Load: wrk, \
         keep-alive, on 127.0.0.1.\n\n\
         | scenario | conns | host req/s | baseline req/s | ratio | host p50 | host p99 | host CPU/req (user) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        options.rounds, options.seconds
    );
    for Scenario {
        name,
        connections,
        compared,
    } in &results.scenarios
    {
        let host = &compared.a;
        let _ = writeln!(
            report,
            "| {name} | {connections} | {:.0} | {:.0} | {:.2} | {} | {} | {:.1} µs ({:.1}) |",
            host.run.requests_per_second,
            compared.b.run.requests_per_second,
            compared.ratios.requests_per_second,
            format_us(host.run.p50_us),
            format_us(host.run.p99_us),
            host.cost.server_cpu_us,
            host.cost.server_user_us,
        );
    }
    write_cluster(&mut report, &results.cluster);
    report
}

/// The cluster's table: requests per second through nginx with 1, 2 and
/// 3 hosts on one PostgreSQL, and what each request cost each process.
fn write_cluster(report: &mut String, rows: &[ClusterRow]) {
    let _ = writeln!(
        report,
        "\n## The blog on PostgreSQL, 1 to 3 hosts behind nginx\n\n\
         `{CLUSTER_PATH}`, 64 connections, every process on this machine's cores: what the \
         figures show is what nginx and each more host cost, not how a cluster on separate \
         machines scales. CPU per request from /proc (PostgreSQL: the server and its \
         backends).\n\n\
         | configuration | req/s | p50 | p99 | hosts CPU/req | nginx CPU/req | PostgreSQL CPU/req |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let _ = writeln!(
            report,
            "| {} | {:.0} | {} | {} | {:.1} µs | {:.1} µs | {:.1} µs |",
            row.label,
            row.run.requests_per_second,
            format_us(row.run.p50_us),
            format_us(row.run.p99_us),
            row.hosts_cpu_us,
            row.nginx_cpu_us,
            row.postgres_cpu_us,
        );
    }
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The figures the targets are about; `None` where the scenario was not
/// measured.
struct Figures {
    /// `/hello` at 64 connections, host / baseline requests per second.
    hello: Option<f64>,
    /// Its p99 latency, host / baseline.
    hello_p99: Option<f64>,
    /// The small static file against the baseline's hello, requests per
    /// second.
    small_static: Option<f64>,
    /// The 200 KB static file against nginx's, requests per second.
    big_static_vs_nginx: Option<f64>,
    /// 100 mounts / 2 mounts, requests per second.
    mounts: Option<f64>,
    startup_two_ms: Option<f64>,
    startup_hundred_ms: Option<f64>,
    /// The host's resident memory after all the load.
    rss_mib: Option<f64>,
}

/// One target, and whether this run met it.
#[derive(Debug, PartialEq)]
struct Target {
    what: &'static str,
    goal: &'static str,
    measured: String,
    met: bool,
}

/// The targets, judged on `figures`.
fn targets(figures: &Figures) -> Vec<Target> {
    // ratios with three decimals, so that one just under its goal does
    // not read as the goal
    let judge = |what, goal, figure: Option<f64>, unit: &str, met: fn(f64) -> bool| Target {
        what,
        goal,
        measured: figure.map_or_else(
            || "not measured".to_owned(),
            |value| match unit {
                "" => format!("{value:.3}"),
                unit => format!("{value:.1}{unit}"),
            },
        ),
        met: figure.is_some_and(met),
    };
    vec![
        judge(
            "hello through the ABI, req/s against the baseline",
            "≥ 0.90",
            figures.hello,
            "",
            |ratio| ratio >= 0.90,
        ),
        judge(
            "hello p99 latency against the baseline's",
            "≤ 1.5",
            figures.hello_p99,
            "",
            |ratio| ratio <= 1.5,
        ),
        judge(
            "small static file, req/s against the baseline's hello",
            "≥ 0.55",
            figures.small_static,
            "",
            |ratio| ratio >= 0.55,
        ),
        judge(
            "200 KB static file against nginx, req/s",
            "≥ 0.90",
            figures.big_static_vs_nginx,
            "",
            |ratio| ratio >= 0.90,
        ),
        judge(
            "100 mounts against 2, req/s",
            "≥ 0.97",
            figures.mounts,
            "",
            |ratio| ratio >= 0.97,
        ),
        judge(
            "start-up to the first 200, 2 mounts",
            "< 100 ms",
            figures.startup_two_ms,
            " ms",
            |ms| ms < 100.0,
        ),
        judge(
            "start-up to the first 200, 100 mounts",
            "< 1000 ms",
            figures.startup_hundred_ms,
            " ms",
            |ms| ms < 1000.0,
        ),
        judge(
            "host RSS after the load",
            "< 40 MiB",
            figures.rss_mib,
            " MiB",
            |mib| mib < 40.0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_at_their_bounds() {
        let figures = |hello| Figures {
            hello: Some(hello),
            hello_p99: Some(1.5),
            small_static: None,
            big_static_vs_nginx: Some(0.9),
            mounts: Some(0.969),
            startup_two_ms: Some(99.9),
            startup_hundred_ms: Some(1000.0),
            rss_mib: Some(39.9),
        };
        let verdicts = |hello| {
            targets(&figures(hello))
                .into_iter()
                .map(|target| (target.measured, target.met))
                .collect::<Vec<_>>()
        };
        let expected = |hello: &str, hello_met| {
            vec![
                (hello.to_owned(), hello_met),
                ("1.500".to_owned(), true),
                ("not measured".to_owned(), false),
                ("0.900".to_owned(), true),
                ("0.969".to_owned(), false),
                ("99.9 ms".to_owned(), true),
                ("1000.0 ms".to_owned(), false),
                ("39.9 MiB".to_owned(), true),
            ]
        };
        assert_eq!(verdicts(0.90), expected("0.900", true));
        // judged on the figure, not on its text
        assert_eq!(verdicts(0.89996), expected("0.900", false));
        assert_eq!(verdicts(0.899), expected("0.899", false));
    }
}
