//! What a run cost the machine: the server's CPU time, preemptions and
//! memory from `/proc`, and the load generator's from `getrusage`.

use std::fs;

/// What a run cost the machine, per request answered. The load generator
/// shares the cores with the server, so a server that is slower per request
/// also changes how the load generator runs: it waits for responses more
/// often, and each response then wakes it and preempts the server. These
/// figures show that, where requests per second only show the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Cost {
    /// The server's CPU time (user + system), µs.
    pub server_cpu_us: f64,
    /// The part of it spent in user space (the server's own code, where
    /// the rest is the kernel's), µs.
    pub server_user_us: f64,
    /// Times a server thread was preempted (involuntary context switches).
    pub server_preempted: f64,
    /// The load generator's CPU time (user + system), µs.
    pub load_cpu_us: f64,
    /// Times a load generator thread went to sleep for want of a response
    /// (voluntary context switches).
    pub load_sleeps: f64,
}

/// Running totals that [`Cost`] is the difference of.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Totals {
    server_cpu_us: f64,
    server_user_us: f64,
    server_preempted: u64,
    load_cpu_us: f64,
    load_sleeps: u64,
}

impl Totals {
    /// The totals now, for the server `pid` (with its child processes if
    /// `tree`: nginx's workers) and for the waited-for children (wrk).
    pub(super) fn now(pid: u32, tree: bool) -> Totals {
        let (load_cpu_us, load_sleeps) = children_usage();
        let server_cpu = if tree { tree_cpu(pid) } else { cpu_us(pid) };
        Totals {
            server_cpu_us: server_cpu.user + server_cpu.system,
            server_user_us: server_cpu.user,
            server_preempted: preemptions(pid),
            load_cpu_us,
            load_sleeps,
        }
    }

    /// What happened between `self` and `later`, per request of `requests`.
    pub(super) fn per_request(self, later: Totals, requests: u64) -> Cost {
        let n = requests.max(1) as f64;
        Cost {
            server_cpu_us: (later.server_cpu_us - self.server_cpu_us) / n,
            server_user_us: (later.server_user_us - self.server_user_us) / n,
            server_preempted: later.server_preempted.saturating_sub(self.server_preempted) as f64
                / n,
            load_cpu_us: (later.load_cpu_us - self.load_cpu_us) / n,
            load_sleeps: later.load_sleeps.saturating_sub(self.load_sleeps) as f64 / n,
        }
    }
}

/// CPU time and voluntary context switches of the children waited for so
/// far (the wrk runs: servers are waited for only when they are dropped).
fn children_usage() -> (f64, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the pointer it is given,
    // which points to one that is properly sized and aligned.
    #[allow(unsafe_code)]
    let result = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if result != 0 {
        return (0.0, 0);
    }
    // SAFETY: the call succeeded, so the struct is written (and it was
    // zeroed before: every field is an integer, for which zero is valid).
    #[allow(unsafe_code)]
    let usage = unsafe { usage.assume_init() };
    let micros = |time: libc::timeval| time.tv_sec as f64 * 1e6 + time.tv_usec as f64;
    (
        micros(usage.ru_utime) + micros(usage.ru_stime),
        u64::try_from(usage.ru_nvcsw).unwrap_or(0),
    )
}

/// CPU time of a process, in user space and in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct CpuTime<T> {
    user: T,
    system: T,
}

/// User and system clock ticks of a process, from its `/proc/PID/stat`.
fn cpu_ticks(stat: &str) -> Option<CpuTime<u64>> {
    // the command name, in parentheses, may hold spaces: count from after it
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields 14 and 15 of stat(5); the first after ')' is field 3
    Some(CpuTime {
        user: fields.get(11)?.parse().ok()?,
        system: fields.get(12)?.parse().ok()?,
    })
}

/// The number after `name` (e.g. `VmRSS:`) in a `/proc/.../status` file.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The CPU time of process `pid` so far, µs, from /proc.
fn cpu_us(pid: u32) -> CpuTime<f64> {
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap_or_default();
    let ticks = cpu_ticks(&stat).unwrap_or_default();
    let micros = |ticks: u64| ticks as f64 * 1e6 / ticks_per_second();
    CpuTime {
        user: micros(ticks.user),
        system: micros(ticks.system),
    }
}

/// The CPU time (user + system) of process `pid`, of its living children
/// and of those it waited for, so far, µs: a server of many processes, as
/// PostgreSQL's backends are children of its postmaster.
pub(super) fn tree_cpu_us(pid: u32) -> f64 {
    let tree = tree_cpu(pid);
    tree.user + tree.system
}

/// [`tree_cpu_us`], user and system apart.
fn tree_cpu(pid: u32) -> CpuTime<f64> {
    let own = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields 16 and 17 of stat(5): the waited-for children's times
    let field = |fields: &[&str], index: usize| -> u64 {
        fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0)
    };
    let waited = own
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        .map(|fields| CpuTime {
            user: field(&fields, 13),
            system: field(&fields, 14),
        })
        .unwrap_or_default();
    let parent_of = |stat: &str| -> Option<u32> {
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let children = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| fs::read_to_string(format!("/proc/{child}/stat")).ok())
        .filter(|stat| parent_of(stat) == Some(pid))
        .filter_map(|stat| cpu_ticks(&stat))
        .fold(waited, |sum, ticks| CpuTime {
            user: sum.user + ticks.user,
            system: sum.system + ticks.system,
        });
    let own_time = cpu_us(pid);
    let micros = |ticks: u64| ticks as f64 * 1e6 / ticks_per_second();
    CpuTime {
        user: own_time.user + micros(children.user),
        system: own_time.system + micros(children.system),
    }
}

/// Involuntary context switches of the threads of process `pid` so far, from
/// /proc (threads that ended are not counted; the servers' threads live
/// as long as they do).
fn preemptions(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", pid)) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("status")).ok())
        .filter_map(|status| status_field(&status, "nonvoluntary_ctxt_switches:"))
        .sum()
}

/// Peak and current resident memory of process `pid` in KiB, from /proc.
pub(super) fn memory_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{}/status", pid)).unwrap_or_default();
    let field = |name| status_field(&status, name).unwrap_or(0);
    (field("VmHWM:"), field("VmRSS:"))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn cpu_ticks_are_read_past_a_command_name_with_spaces() {
        let stat = "4242 (tokio rt) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1234 567 0 0 20 0 4 0 100 1000000 300 18446744073709551615";
        assert_eq!(
            cpu_ticks(stat),
            Some(CpuTime {
                user: 1234,
                system: 567
            })
        );
        assert_eq!(cpu_ticks("4242 (host) S 1 2"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn status_fields_are_read() {
        let status = "Name:\ttokio-rt-worker\nVmRSS:\t   31904 kB\n\
                      voluntary_ctxt_switches:\t1417\nnonvoluntary_ctxt_switches:\t11392\n";
        assert_eq!(
            status_field(status, "nonvoluntary_ctxt_switches:"),
            Some(11392)
        );
        assert_eq!(status_field(status, "voluntary_ctxt_switches:"), Some(1417));
        assert_eq!(status_field(status, "VmRSS:"), Some(31904));
        assert_eq!(status_field("Name:\thost\n", "VmRSS:"), None);
    }

    #[test]
    fn a_waited_for_child_is_counted_and_our_own_stat_is_read() {
        let (cpu_before, _) = children_usage();
        let status = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let (cpu_after, _) = children_usage();
        assert!(cpu_after > cpu_before, "{cpu_before} -> {cpu_after}");
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&own).is_some());
        assert!(ticks_per_second() > 0.0);
    }

    #[test]
    fn costs_are_per_request() {
        let before = Totals {
            server_cpu_us: 1_000.0,
            server_user_us: 400.0,
            server_preempted: 10,
            load_cpu_us: 500.0,
            load_sleeps: 7,
        };
        let after = Totals {
            server_cpu_us: 3_000.0,
            server_user_us: 1_000.0,
            server_preempted: 30,
            load_cpu_us: 1_500.0,
            load_sleeps: 107,
        };
        let cost = before.per_request(after, 200);
        assert_eq!(
            cost,
            Cost {
                server_cpu_us: 10.0,
                server_user_us: 3.0,
                server_preempted: 0.1,
                load_cpu_us: 5.0,
                load_sleeps: 0.5,
            }
        );
    }
}
