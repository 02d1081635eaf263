//! How many handlers run inline on the async workers at once: at most one
//! fewer than there are workers, so that one worker is always free to
//! accept and dispatch (there are at least two workers, even on one CPU:
//! `run::async_workers`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

use crate::periodic::Periodic;

/// Bounds how many handlers run inline on the async workers at once.
pub struct InlineGate {
    limit: usize,
    epoch: Instant,
    /// Shared with the stall guard.
    pub(super) shared: Arc<GateShared>,
}

/// What the gate and its stall guard share.
#[derive(Default)]
pub(super) struct GateShared {
    /// Handlers running inline now.
    pub(super) in_use: AtomicUsize,
    /// The guard's rounds; every inline call wakes it if it sleeps.
    pub(super) guard: Periodic,
    /// Empty tasks the guard has handed the runtime (for tests).
    pub(super) nudges: AtomicU64,
}

impl InlineGate {
    /// A gate for a runtime with `workers` async worker threads.
    pub fn new(workers: usize) -> InlineGate {
        InlineGate {
            limit: workers.saturating_sub(1),
            epoch: Instant::now(),
            shared: Arc::default(),
        }
    }

    /// A slot to run a handler inline, if one is free.
    pub(super) fn try_enter(&self) -> Option<InlinePermit<'_>> {
        // SeqCst, as the guard's look at `in_use` before it sleeps (see
        // `Periodic::sleep_unless`)
        let permit = self
            .shared
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .ok()
            .map(|_| InlinePermit { gate: self })?;
        self.shared.guard.wake();
        Some(permit)
    }

    /// Milliseconds since the gate was made, never 0.
    pub(super) fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// `instant` in milliseconds since the gate was made, never 0.
    pub(super) fn ms_at(&self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.epoch);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX) + 1
    }
}

/// A handler running inline; its slot frees when this drops.
pub(super) struct InlinePermit<'a> {
    gate: &'a InlineGate,
}

impl Drop for InlinePermit<'_> {
    fn drop(&mut self) {
        self.gate.shared.in_use.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_always_stays_free_of_inline_handlers() {
        for (workers, inline) in [(2, 1), (4, 3), (1, 0)] {
            let gate = InlineGate::new(workers);
            let permits: Vec<_> = std::iter::from_fn(|| gate.try_enter()).take(10).collect();
            assert_eq!(permits.len(), inline, "{workers} workers");
            drop(permits);
            assert_eq!(gate.shared.in_use.load(Ordering::SeqCst), 0);
            assert_eq!(gate.try_enter().is_some(), inline > 0);
        }
    }
}
