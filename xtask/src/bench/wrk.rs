//! The load generator: running `wrk` and reading its report.

use std::{net::SocketAddr, process::Command};

/// One wrk run of `seconds` against `addr` with `connections`
/// keep-alive connections (on two threads at most: wrk shares the two
/// cores with the server).
pub(super) fn run(
    addr: SocketAddr,
    path: &str,
    connections: u32,
    seconds: u32,
) -> Result<Run, String> {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "5s",
        ])
        .arg(format!("http://{addr}{path}"))
        .output()
        .map_err(|error| format!("cannot run wrk: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse_wrk(&String::from_utf8_lossy(&output.stdout))
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Run {
    /// Requests completed in the whole run.
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Responses that were not 2xx/3xx.
    pub non_success: u64,
}

/// Reads wrk's `--latency` report.
pub(super) fn parse_wrk(output: &str) -> Result<Run, String> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_success = 0;
    let mut requests = None;
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rps = value.parse::<f64>().ok(),
            (Some(count), Some("requests")) => requests = count.parse::<u64>().ok(),
            (Some("50%"), Some(value)) => p50 = duration_us(value),
            (Some("99%"), Some(value)) => p99 = duration_us(value),
            _ => {}
        }
        if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_success = count.trim().parse().unwrap_or(0);
        }
    }
    match (requests, rps, p50, p99) {
        (Some(requests), Some(requests_per_second), Some(p50_us), Some(p99_us)) => Ok(Run {
            requests,
            requests_per_second,
            p50_us,
            p99_us,
            non_success,
        }),
        _ => Err(format!("could not read wrk's report:\n{output}")),
    }
}

/// `498.00us`, `1.20ms`, `2.00s` → microseconds.
fn duration_us(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 5s test @ http://127.0.0.1:5000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  300.00us   9.00ms   90.00%
    Req/Sec    31.00k     2.00k   35.00k    70.00%
  Latency Distribution
     50%  498.00us
     75%    1.10ms
     90%    1.30ms
     99%    2.50ms
  300000 requests in 5.00s, 40.00MB read
  Non-2xx or 3xx responses: 12
Requests/sec:  60000.50
Transfer/sec:      8.00MB
";

    #[test]
    fn wrk_reports_are_read() {
        let run = parse_wrk(WRK).unwrap();
        assert_eq!(run.requests, 300_000);
        assert_eq!(run.requests_per_second, 60000.5);
        assert_eq!(run.p50_us, 498.0);
        assert_eq!(run.p99_us, 2500.0);
        assert_eq!(run.non_success, 12);
        assert!(parse_wrk("garbage").is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration_us("12.50us"), Some(12.5));
        assert_eq!(duration_us("1.5ms"), Some(1500.0));
        assert_eq!(duration_us("2.00s"), Some(2_000_000.0));
        assert_eq!(duration_us("2m"), None);
    }
}
