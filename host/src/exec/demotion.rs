//! Whether a mount's handlers run inline or on its own threads. A mount is
//! fast until an inline call of it takes longer than [`SLOW_CALL`], or is
//! found still running past it: then its handlers run on its threads for
//! [`DEMOTION`], and one slow handler cannot hold an async worker again.
//! Times are the inline gate's milliseconds (never 0).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// An inline call running longer than this marks its mount as slow. Wall
/// time, so it must stay well above a scheduler time slice: at 5 ms,
/// threads preempted under load demoted fast mounts.
pub const SLOW_CALL: Duration = Duration::from_millis(100);

/// How long a slow mount's handlers stay on its threads before an inline
/// call is tried again.
pub const DEMOTION: Duration = Duration::from_secs(30);

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Where a call is to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Inline, if the gate has a free slot.
    Inline,
    /// On the mount's threads: it is demoted.
    Pool,
    /// On the mount's threads, demoting it first, for this reason.
    Demote(&'static str),
}

/// One mount's record of its inline calls.
#[derive(Debug, Default)]
pub(super) struct Demotion {
    /// Until when the mount's handlers stay on its threads.
    demoted_until: AtomicU64,
    /// When the latest inline call started, 0 if none runs.
    inline_since: AtomicU64,
}

impl Demotion {
    /// Where a call that comes at `now` runs.
    pub(super) fn verdict(&self, now: u64) -> Verdict {
        if self.demoted_until.load(Ordering::Relaxed) > now {
            return Verdict::Pool;
        }
        let running_since = self.inline_since.load(Ordering::Relaxed);
        if running_since != 0 && now.saturating_sub(running_since) > ms(SLOW_CALL) {
            return Verdict::Demote("an inline call is still running");
        }
        Verdict::Inline
    }

    /// An inline call starts at `now`.
    pub(super) fn started(&self, now: u64) {
        self.inline_since.store(now, Ordering::Relaxed);
    }

    /// The inline call ended after `took`: if it was slow, why to demote.
    pub(super) fn finished(&self, took: Duration) -> Option<String> {
        self.inline_since.store(0, Ordering::Relaxed);
        (took > SLOW_CALL).then(|| format!("an inline call took {took:?}"))
    }

    /// Demotes the mount from `now` for [`DEMOTION`]; whether it was fast
    /// until then (so that the change is logged once).
    pub(super) fn demote(&self, now: u64) -> bool {
        let until = now.saturating_add(ms(DEMOTION));
        self.demoted_until.swap(until, Ordering::Relaxed) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_is_fast_until_an_inline_call_is_slow_then_it_waits_out_its_demotion() {
        let mount = Demotion::default();
        assert_eq!(mount.verdict(1), Verdict::Inline);
        mount.started(1);
        assert_eq!(mount.finished(Duration::from_millis(20)), None, "fast");
        assert_eq!(mount.verdict(30), Verdict::Inline);
        mount.started(30);
        let why = mount.finished(Duration::from_millis(150)).expect("slow");
        assert_eq!(why, "an inline call took 150ms");
        assert!(mount.demote(180), "newly demoted: logged");
        assert!(!mount.demote(190), "demoted already: not logged again");
        for now in [181, 5_000, 30_189] {
            assert_eq!(mount.verdict(now), Verdict::Pool, "at {now}");
        }
        assert_eq!(
            mount.verdict(30_191),
            Verdict::Inline,
            "the demotion is over"
        );
    }

    #[test]
    fn a_call_that_finds_another_inline_call_running_too_long_demotes_its_mount() {
        let mount = Demotion::default();
        mount.started(1_000);
        // another request of the mount while the first still runs
        assert_eq!(mount.verdict(1_050), Verdict::Inline, "within the limit");
        assert_eq!(
            mount.verdict(1_101),
            Verdict::Demote("an inline call is still running")
        );
        assert!(mount.demote(1_101));
        assert_eq!(mount.verdict(1_102), Verdict::Pool);
        // the slow call ends: the mount stays demoted all the same
        assert!(mount.finished(Duration::from_secs(3)).is_some());
        assert_eq!(mount.verdict(20_000), Verdict::Pool);
    }
}
