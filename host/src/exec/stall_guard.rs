//! Keeps the runtime's I/O watched while handlers run inline.

use std::{
    sync::{Arc, atomic::Ordering},
    thread::{self, JoinHandle},
    time::Duration,
};

use super::gate::{GateShared, InlineGate};

/// How often a [`StallGuard`] looks at the inline calls: the longest a new
/// connection or request waits for a worker to see it while a handler runs
/// inline.
pub const STALL_CHECK: Duration = Duration::from_millis(10);

/// After this long without a handler running inline at any of its looks, a
/// [`StallGuard`] sleeps until the next inline call, so that an idle host
/// wakes no thread.
pub const GUARD_QUIET: Duration = Duration::from_secs(1);

/// Keeps the runtime's I/O watched while handlers run inline.
///
/// A tokio worker with nothing to do parks either on the I/O driver or, when
/// another worker holds the driver, on a condition variable. A worker that
/// was woken from the driver and then runs a handler inline leaves the
/// driver unwatched if the other workers sleep on the condition variable:
/// new connections and requests then wait until the handler returns (a
/// test on one CPU saw it happen in some runs). Every [`STALL_CHECK`]
/// this guard's thread checks whether a handler runs inline and, if so,
/// hands the runtime an empty task: that wakes a sleeping worker, which,
/// finding nothing else to do, parks again, now on the free driver. After
/// [`GUARD_QUIET`] without inline calls seen it sleeps, and the next inline
/// call wakes it, so that an idle host wakes none of its threads.
pub struct StallGuard {
    shared: Arc<GateShared>,
    thread: Option<JoinHandle<()>>,
}

impl StallGuard {
    /// Starts watching the handlers that `gate` lets run inline on
    /// `runtime`'s workers.
    pub fn start(
        gate: &InlineGate,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<StallGuard> {
        Self::start_with_quiet(gate, runtime, GUARD_QUIET)
    }

    fn start_with_quiet(
        gate: &InlineGate,
        runtime: tokio::runtime::Handle,
        quiet: Duration,
    ) -> std::io::Result<StallGuard> {
        let shared = Arc::clone(&gate.shared);
        let thread = thread::Builder::new().name("stall-guard".into()).spawn({
            let shared = Arc::clone(&shared);
            move || guard(&shared, &runtime, quiet)
        })?;
        Ok(StallGuard {
            shared,
            thread: Some(thread),
        })
    }

    /// Whether the guard sleeps until the next inline call.
    #[cfg(test)]
    fn asleep(&self) -> bool {
        self.shared.guard.asleep()
    }
}

/// The guard's thread: see [`StallGuard`].
fn guard(shared: &GateShared, runtime: &tokio::runtime::Handle, quiet: Duration) {
    let inline = || shared.in_use.load(Ordering::SeqCst) > 0;
    let quiet_looks = quiet.as_nanos() / STALL_CHECK.as_nanos();
    let mut looks_without_inline = 0;
    while !shared.guard.wait(STALL_CHECK) {
        if inline() {
            looks_without_inline = 0;
            shared.nudges.fetch_add(1, Ordering::Relaxed);
            drop(runtime.spawn(async {}));
            continue;
        }
        looks_without_inline += 1;
        if looks_without_inline >= quiet_looks {
            shared.guard.sleep_unless(inline);
            looks_without_inline = 0;
        }
    }
}

impl Drop for StallGuard {
    fn drop(&mut self) {
        self.shared.guard.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periodic::tests::soon;

    #[test]
    fn the_guard_sleeps_when_quiet_and_the_next_inline_call_wakes_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let gate = InlineGate::new(2);
        let guard =
            StallGuard::start_with_quiet(&gate, runtime.handle().clone(), STALL_CHECK * 5).unwrap();
        let nudges = || gate.shared.nudges.load(Ordering::Relaxed);
        for _ in 0..3 {
            assert!(soon(|| guard.asleep()), "no inline call: the guard sleeps");
            let before = nudges();
            thread::sleep(STALL_CHECK * 3);
            assert_eq!(nudges(), before, "asleep, it hands the runtime nothing");
            let permit = gate.try_enter().expect("a free slot");
            assert!(!guard.asleep());
            assert!(
                soon(|| nudges() >= before + 3),
                "while a handler runs inline, the woken guard keeps the I/O watched"
            );
            drop(permit);
        }
        // stopping a sleeping guard ends its thread
        assert!(soon(|| guard.asleep()));
        drop(guard);
    }
}
