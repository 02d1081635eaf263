//! Passwords as argon2id hashes (PHC strings), for the model, which stores
//! them, and the `auth` blueprint, which checks them. Each hash takes 19 MiB
//! and tens of milliseconds of a core: at most [`MAX_AT_ONCE`] run at once,
//! in a process, and a login that waits longer than [`MAX_WAIT`] for its
//! turn is told to come back (a flood of logins costs neither all the
//! memory nor every handler thread).

use std::{
    sync::{Condvar, Mutex, PoisonError},
    time::{Duration, Instant},
};

use app_api::prelude::Error;
use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

/// Hashes running at once in this process, at most.
pub const MAX_AT_ONCE: usize = 2;

/// How long a hash waits for its turn before [`Busy`].
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// Every hashing turn was taken for [`MAX_WAIT`]: answer 503 with
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Turns to hash: how many run now, and how many may.
struct Turns {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
    wait: Duration,
}

/// The process's turns.
static TURNS: Turns = Turns::new(MAX_AT_ONCE, MAX_WAIT);

impl Turns {
    const fn new(max: usize, wait: Duration) -> Turns {
        Turns {
            running: Mutex::new(0),
            freed: Condvar::new(),
            max,
            wait,
        }
    }

    /// Runs `work` in a turn, once one is free within the wait.
    fn run<T>(&self, work: impl FnOnce() -> T) -> Result<T, Busy> {
        let deadline = Instant::now() + self.wait;
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= self.max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Busy);
            }
            running = self
                .freed
                .wait_timeout(running, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *running += 1;
        drop(running);
        /// Gives the turn back, even if `work` panics.
        struct Turn<'a>(&'a Turns);
        impl Drop for Turn<'_> {
            fn drop(&mut self) {
                *self
                    .0
                    .running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) -= 1;
                self.0.freed.notify_one();
            }
        }
        let _turn = Turn(self);
        Ok(work())
    }
}

/// An argon2id hash (PHC string) of `password`, with a random salt.
pub fn hash(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    TURNS
        .run(|| Argon2::default().hash_password(password.as_bytes(), &salt))
        .map_err(|Busy| Error::new(503, "Too many passwords are being checked; try again."))?
        .map(|hash| hash.to_string())
        .map_err(|error| Error::internal(format!("hashing a password failed: {error}")))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify(password: &str, hash: &str) -> Result<bool, Busy> {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return Ok(false);
    };
    TURNS.run(|| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_argon2id_hash() {
        let hash = hash("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(verify("correct horse", &hash), Ok(true));
        assert_eq!(verify("wrong horse", &hash), Ok(false));
        assert_eq!(verify("correct horse", "not a hash"), Ok(false));
    }

    #[test]
    fn work_waits_for_a_turn_and_gives_up_after_the_wait() {
        let turns = std::sync::Arc::new(Turns::new(2, Duration::from_millis(50)));
        // hold every turn
        let (holding, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Arc::new(Mutex::new(released));
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let (turns, holding) = (std::sync::Arc::clone(&turns), holding.clone());
                let released = std::sync::Arc::clone(&released);
                std::thread::spawn(move || {
                    turns
                        .run(|| {
                            holding.send(()).unwrap();
                            released.lock().unwrap().recv().unwrap();
                        })
                        .unwrap();
                })
            })
            .collect();
        for _ in 0..2 {
            held.recv().unwrap();
        }
        assert_eq!(turns.run(|| ()), Err(Busy));
        for _ in 0..2 {
            release.send(()).unwrap();
        }
        for holder in holders {
            holder.join().unwrap();
        }
        assert_eq!(turns.run(|| 7), Ok(7));
    }
}
