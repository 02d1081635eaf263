//! Two servers measured in alternating rounds (A B A B ...), so that drift
//! of the machine hits both.

use super::{
    options::Options,
    servers::Server,
    stats::{Ratios, median, round_ratios},
    usage::{Cost, Totals},
    wrk::{self, Run},
};

/// A side's median run and what it cost.
#[derive(Debug, Clone, Copy)]
pub(super) struct Measured {
    pub(super) run: Run,
    pub(super) cost: Cost,
}

/// Two sides measured in alternating rounds.
pub(super) struct Compared {
    pub(super) a: Measured,
    pub(super) b: Measured,
    /// Ratios a / b, each the median of the rounds' own ratios: the two
    /// runs of a round follow each other, so a machine that speeds up or
    /// slows down between rounds moves both.
    pub(super) ratios: Ratios,
    /// Each round's ratio of requests per second, in order.
    pub(super) rounds: Vec<f64>,
}

/// One wrk run against `server`, and what it cost per request.
fn measured_run(
    server: &Server,
    path: &str,
    connections: u32,
    seconds: u32,
) -> Result<(Run, Cost), String> {
    let before = Totals::now(server.pid(), server.tree);
    let run = wrk::run(server.addr, path, connections, seconds)?;
    let after = Totals::now(server.pid(), server.tree);
    Ok((run, before.per_request(after, run.requests)))
}

/// Runs `rounds` alternating A B pairs and keeps the medians and the paired
/// ratios.
pub(super) fn compare(
    options: &Options,
    a: (&Server, &str),
    b: (&Server, &str),
    connections: u32,
) -> Result<Compared, String> {
    let mut runs_a = Vec::new();
    let mut runs_b = Vec::new();
    for _ in 0..options.rounds {
        runs_a.push(measured_run(a.0, a.1, connections, options.seconds)?);
        runs_b.push(measured_run(b.0, b.1, connections, options.seconds)?);
    }
    Ok(Compared {
        a: median_measured(&runs_a),
        b: median_measured(&runs_b),
        ratios: Ratios::paired(&runs_a, &runs_b),
        rounds: round_ratios(&runs_a, &runs_b, |(run, _)| run.requests_per_second),
    })
}

/// The median of each figure over `runs` (requests and errors: the sums).
pub(super) fn median_measured(runs: &[(Run, Cost)]) -> Measured {
    let pick =
        |field: fn(&(Run, Cost)) -> f64| median(&mut runs.iter().map(field).collect::<Vec<_>>());
    Measured {
        run: Run {
            requests: runs.iter().map(|(run, _)| run.requests).sum(),
            requests_per_second: pick(|(run, _)| run.requests_per_second),
            p50_us: pick(|(run, _)| run.p50_us),
            p99_us: pick(|(run, _)| run.p99_us),
            non_success: runs.iter().map(|(run, _)| run.non_success).sum(),
        },
        cost: Cost {
            server_cpu_us: pick(|(_, cost)| cost.server_cpu_us),
            server_user_us: pick(|(_, cost)| cost.server_user_us),
            server_preempted: pick(|(_, cost)| cost.server_preempted),
            load_cpu_us: pick(|(_, cost)| cost.load_cpu_us),
            load_sleeps: pick(|(_, cost)| cost.load_sleeps),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_the_runs_of_each_round() {
        let round = |requests_per_second: f64, p99_us: f64, server_cpu_us: f64| {
            let run = Run {
                requests: 1,
                requests_per_second,
                p50_us: 1.0,
                p99_us,
                non_success: 0,
            };
            let cost = Cost {
                server_cpu_us,
                ..Cost::default()
            };
            (run, cost)
        };
        // a runs at 0.9 of b in two rounds; in the second the machine
        // slowed down while b ran
        let a = [
            round(90.0, 1.0, 10.0),
            round(60.0, 2.0, 20.0),
            round(45.0, 5.0, 30.0),
        ];
        let b = [
            round(100.0, 2.0, 5.0),
            round(40.0, 1.0, 10.0),
            round(50.0, 4.0, 10.0),
        ];
        assert_eq!(
            Ratios::paired(&a, &b),
            Ratios {
                requests_per_second: 0.9,
                p99: 1.25,
                server_cpu: 2.0,
            }
        );
        // the ratio of the medians would take that round's slow b against
        // a's from another round: 60 / 50
        let medians = (median_measured(&a), median_measured(&b));
        assert_eq!(
            medians.0.run.requests_per_second / medians.1.run.requests_per_second,
            1.2
        );
    }
}
