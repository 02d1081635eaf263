//! The host's background threads that work in rounds (the log writer, the
//! stall guard): a round every period, asleep after a round that found
//! nothing to do until the threads that give them work wake them, so that
//! an idle host wakes none of its threads.

use std::{
    sync::{
        Condvar, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// What a thread working in rounds shares with the threads that give it
/// work and with whoever stops it.
#[derive(Default)]
pub struct Periodic {
    stopping: Mutex<bool>,
    signal: Condvar,
    /// The thread sleeps until [`Periodic::wake`].
    asleep: AtomicBool,
}

impl Periodic {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.stopping
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// For the working thread: waits `period`, or less when told to stop;
    /// whether it is told to stop.
    pub fn wait(&self, period: Duration) -> bool {
        *self
            .signal
            .wait_timeout_while(self.lock(), period, |stopping| !*stopping)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
    }

    /// For the working thread: sleeps until woken or told to stop, unless
    /// `pending` says work came in meanwhile (asked after the thread is
    /// marked asleep, so work given before that cannot be missed).
    pub fn sleep_unless(&self, pending: impl FnOnce() -> bool) {
        // SeqCst pairs with `wake`: either `pending` sees the work or the
        // thread that gave it sees this one asleep.
        self.asleep.store(true, Ordering::SeqCst);
        if pending() {
            self.asleep.store(false, Ordering::SeqCst);
            return;
        }
        drop(
            self.signal
                .wait_while(self.lock(), |stopping| {
                    !*stopping && self.asleep.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    /// For a thread that gave work (after giving it): wakes the working
    /// thread if it sleeps. One load of a flag that changes at most once per
    /// quiet spell, so it may run on every request.
    pub fn wake(&self) {
        if self.asleep.load(Ordering::SeqCst) && self.asleep.swap(false, Ordering::SeqCst) {
            // under the lock, so the notification cannot fall between the
            // sleeper's look at the flag and its wait
            let _stopping = self.lock();
            self.signal.notify_all();
        }
    }

    /// Tells the working thread to stop, waking it.
    pub fn stop(&self) {
        *self.lock() = true;
        self.signal.notify_all();
    }

    /// Whether the working thread sleeps until woken (for tests).
    #[cfg(test)]
    pub fn asleep(&self) -> bool {
        self.asleep.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        sync::{Arc, atomic::AtomicUsize},
        thread,
        time::Instant,
    };

    use super::*;

    /// Polls `condition` every millisecond for up to 5 s.
    pub(crate) fn soon(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        condition()
    }

    /// A worker that counts its rounds, doing work while `work` > 0 and
    /// otherwise, after `pause`, sleeping.
    struct Worker {
        periodic: Periodic,
        work: AtomicUsize,
        rounds: AtomicUsize,
    }

    impl Worker {
        fn rounds(&self) -> usize {
            self.rounds.load(Ordering::SeqCst)
        }

        fn give(&self, work: usize) {
            self.work.store(work, Ordering::SeqCst);
            if work > 0 {
                self.periodic.wake();
            }
        }
    }

    fn start(pause: Duration) -> (Arc<Worker>, thread::JoinHandle<()>) {
        let worker = Arc::new(Worker {
            periodic: Periodic::default(),
            work: AtomicUsize::new(0),
            rounds: AtomicUsize::new(0),
        });
        let thread = thread::spawn({
            let worker = Arc::clone(&worker);
            move || {
                while !worker.periodic.wait(Duration::from_millis(2)) {
                    worker.rounds.fetch_add(1, Ordering::SeqCst);
                    if worker.work.load(Ordering::SeqCst) == 0 {
                        thread::sleep(pause);
                        worker
                            .periodic
                            .sleep_unless(|| worker.work.load(Ordering::SeqCst) > 0);
                    }
                }
            }
        });
        (worker, thread)
    }

    #[test]
    fn an_idle_worker_sleeps_until_woken_and_stops_when_told() {
        let (worker, thread) = start(Duration::ZERO);
        for _ in 0..3 {
            assert!(soon(|| worker.periodic.asleep()));
            let rounds = worker.rounds();
            thread::sleep(Duration::from_millis(20));
            assert_eq!(worker.rounds(), rounds, "asleep");
            worker.give(1);
            assert!(!worker.periodic.asleep());
            assert!(soon(|| worker.rounds() >= rounds + 5));
            worker.give(0);
        }
        assert!(soon(|| worker.periodic.asleep()));
        worker.periodic.stop();
        thread.join().unwrap();
    }

    #[test]
    fn work_given_as_the_worker_falls_asleep_is_never_missed() {
        // the worker pauses between finding no work and falling asleep;
        // work comes in that pause, when it is not yet marked asleep
        let (worker, thread) = start(Duration::from_millis(30));
        for _ in 0..10 {
            worker.give(0);
            let rounds = worker.rounds();
            assert!(
                soon(|| worker.rounds() > rounds),
                "a round that finds no work"
            );
            worker.give(1);
            assert!(
                soon(|| worker.rounds() > rounds + 1),
                "work given, no round followed"
            );
        }
        worker.periodic.stop();
        thread.join().unwrap();
    }
}
