//! hyper's timer for HTTP/1 connections, with tokio's sleeps reused from one
//! request to the next.
//!
//! hyper guards against slow clients (slowloris) with a fresh timer for
//! every request head: a tokio `Sleep` made, registered in the timer wheel
//! while the connection waits for the head, then deregistered and freed.
//! Under `cargo xtask bench`'s load that was some 650 of a hello request's
//! user-space instructions (callgrind). Here a finished sleep goes back to
//! its thread's pool instead, still registered, and the next request
//! [`reset`](tokio::time::Sleep::reset)s it to its own deadline: a later
//! deadline only moves the timer's expiry (one atomic operation), and tokio
//! re-files it in the wheel only when the old deadline comes round. About
//! 400 remain: the box hyper asks for, the reset, the poll.
//!
//! A pooled sleep may still fire at its old deadline and wake the task that
//! last waited on it, once: a spurious wake-up, which futures must expect.
//! Until it is reused it also keeps that task's waker, and so the task's
//! memory (a few KiB for a finished connection): at most `POOL_SIZE` (64) per
//! thread.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hyper::rt::{Sleep, Timer};

/// Sleeps kept per thread, at most.
const POOL_SIZE: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Pin<Box<tokio::time::Sleep>>>> = const { RefCell::new(Vec::new()) };
}

/// A [`Timer`] whose sleeps come from, and go back to, a per-thread pool.
/// Needs a tokio runtime with its time driver, like hyper-util's
/// `TokioTimer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PooledTimer;

/// A pooled tokio sleep; back to the pool when dropped.
struct PooledSleep {
    /// Always there: taken only by `drop`.
    inner: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PooledSleep {
    fn until(deadline: Instant) -> PooledSleep {
        let reused = POOL.try_with(|pool| pool.borrow_mut().pop()).ok().flatten();
        let inner = match reused {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline.into());
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline.into())),
        };
        PooledSleep { inner: Some(inner) }
    }

    fn sleep(&mut self) -> Pin<&mut tokio::time::Sleep> {
        self.inner
            .as_mut()
            .expect("the sleep is taken only when dropped")
            .as_mut()
    }
}

impl Future for PooledSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep().poll(cx)
    }
}

impl Sleep for PooledSleep {}

impl Drop for PooledSleep {
    fn drop(&mut self) {
        if let Some(sleep) = self.inner.take() {
            // a thread that is ending just drops it
            let _ = POOL.try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() < POOL_SIZE {
                    pool.push(sleep);
                }
            });
        }
    }
}

impl Timer for PooledTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(PooledSleep::until(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<PooledSleep>() {
            Some(mut pooled) => pooled.sleep().reset(new_deadline.into()),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_reused_sleep_keeps_its_new_deadline_not_its_old_one() {
        runtime().block_on(async {
            let timer = PooledTimer;
            // registered with a near deadline, then back to the pool
            let mut first = timer.sleep(Duration::from_millis(20));
            assert!(
                futures_poll_once(first.as_mut()).is_pending(),
                "not due yet"
            );
            drop(first);
            assert_eq!(POOL.with(|pool| pool.borrow().len()), 1);
            let deadline = Instant::now() + Duration::from_millis(150);
            let second = timer.sleep_until(deadline);
            assert_eq!(POOL.with(|pool| pool.borrow().len()), 0, "reused");
            second.await;
            assert!(Instant::now() >= deadline, "fired at the old deadline");
        });
    }

    #[test]
    fn reset_moves_a_deadline_both_ways() {
        runtime().block_on(async {
            let timer = PooledTimer;
            let mut sleep = timer.sleep(Duration::from_secs(3600));
            let sooner = Instant::now() + Duration::from_millis(30);
            timer.reset(&mut sleep, sooner);
            sleep.as_mut().await;
            assert!(Instant::now() >= sooner);
            let later = Instant::now() + Duration::from_millis(60);
            timer.reset(&mut sleep, later);
            sleep.await;
            assert!(Instant::now() >= later);
        });
    }

    /// Polls once with a waker that does nothing.
    fn futures_poll_once(future: Pin<&mut dyn Sleep>) -> Poll<()> {
        let mut context = Context::from_waker(std::task::Waker::noop());
        future.poll(&mut context)
    }
}
