//! Medians and paired ratios: the arithmetic that turns rounds into the
//! report's figures.

use super::{usage::Cost, wrk::Run};

/// The median of `values` (the mean of the middle two for an even count).
pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Each round's own ratio a / b of `figure`.
pub(super) fn round_ratios(
    a: &[(Run, Cost)],
    b: &[(Run, Cost)],
    figure: fn(&(Run, Cost)) -> f64,
) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(a, b)| figure(a) / figure(b))
        .collect()
}

/// Paired ratios a / b.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Ratios {
    pub(super) requests_per_second: f64,
    pub(super) p99: f64,
    pub(super) server_cpu: f64,
}

impl Ratios {
    /// The median over rounds of each figure's ratio `a / b` within the
    /// round.
    pub(super) fn paired(a: &[(Run, Cost)], b: &[(Run, Cost)]) -> Ratios {
        let ratio = |figure: fn(&(Run, Cost)) -> f64| median(&mut round_ratios(a, b, figure));
        Ratios {
            requests_per_second: ratio(|(run, _)| run.requests_per_second),
            p99: ratio(|(run, _)| run.p99_us),
            server_cpu: ratio(|(_, cost)| cost.server_cpu_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
