//! Request metrics per mount, in the Prometheus text format
//! (`GET /_host/metrics`). Counters are atomics: recording a request costs a
//! few uncontended increments.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
    time::Duration,
};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The counters of one mount (or of the host itself).
#[derive(Default)]
pub struct Counters {
    /// Responses by status class, 1xx to 5xx.
    by_class: [AtomicU64; 5],
    /// Requests per latency bucket (not cumulative; the last is +Inf).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    in_flight: AtomicI64,
    panics: AtomicU64,
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Marks a request as started.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records a finished request.
    pub fn record(&self, status: u16, took: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records a panic in a handler.
    pub fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }
}

/// Renders the metrics of every mount, `("name", counters)`, plus the
/// host's own (requests no mount answered) and the load failures.
pub fn render<'a>(
    mounts: impl Iterator<Item = (&'a str, &'a Counters)> + Clone,
    load_failures: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP host_requests_total Requests answered, by app and status class.\n# TYPE host_requests_total counter"
    );
    for (app, counters) in mounts.clone() {
        for (index, count) in counters.by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "host_requests_total{{app=\"{app}\",status=\"{}xx\"}} {}",
                index + 1,
                count.load(Ordering::Relaxed)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP host_request_duration_seconds Time to the response head, by app.\n# TYPE host_request_duration_seconds histogram"
    );
    for (app, counters) in mounts.clone() {
        let mut cumulative = 0;
        for (index, count) in counters.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let bound = BUCKETS
                .get(index)
                .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
            let _ = writeln!(
                out,
                "host_request_duration_seconds_bucket{{app=\"{app}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "host_request_duration_seconds_sum{{app=\"{app}\"}} {}\nhost_request_duration_seconds_count{{app=\"{app}\"}} {cumulative}",
            counters.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
    let _ = writeln!(
        out,
        "# HELP host_requests_in_flight Requests being answered, by app.\n# TYPE host_requests_in_flight gauge"
    );
    for (app, counters) in mounts.clone() {
        let _ = writeln!(
            out,
            "host_requests_in_flight{{app=\"{app}\"}} {}",
            counters.in_flight.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP host_handler_panics_total Handler panics caught, by app.\n# TYPE host_handler_panics_total counter"
    );
    for (app, counters) in mounts {
        let _ = writeln!(
            out,
            "host_handler_panics_total{{app=\"{app}\"}} {}",
            counters.panics.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP host_load_failures Mounts whose app failed to load or start.\n# TYPE host_load_failures gauge\nhost_load_failures {load_failures}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_counts_classes_buckets_and_panics() {
        let counters = Counters::default();
        {
            let _in_flight = counters.start();
            counters.record(200, Duration::from_micros(300));
            counters.record(404, Duration::from_millis(30));
            counters.record(503, Duration::from_secs(9));
            counters.panicked();
        }
        let text = render([("admin", &counters)].into_iter(), 1);
        for line in [
            "host_requests_total{app=\"admin\",status=\"2xx\"} 1",
            "host_requests_total{app=\"admin\",status=\"4xx\"} 1",
            "host_requests_total{app=\"admin\",status=\"5xx\"} 1",
            "host_request_duration_seconds_bucket{app=\"admin\",le=\"0.0005\"} 1",
            "host_request_duration_seconds_bucket{app=\"admin\",le=\"0.05\"} 2",
            "host_request_duration_seconds_bucket{app=\"admin\",le=\"5\"} 2",
            "host_request_duration_seconds_bucket{app=\"admin\",le=\"+Inf\"} 3",
            "host_request_duration_seconds_count{app=\"admin\"} 3",
            "host_requests_in_flight{app=\"admin\"} 0",
            "host_handler_panics_total{app=\"admin\"} 1",
            "host_load_failures 1",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
    }
}
