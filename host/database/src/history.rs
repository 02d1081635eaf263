//! The history of migrations, whatever the engine: each namespace (by
//! convention an app's name) has its own numbered steps, and the host
//! records every applied step with a checksum of its text, so that a step
//! edited after it ran, or a history ahead of the app, is an error naming
//! the namespace and the fix.

use sha2::{Digest, Sha256};

use crate::failure::{Failure, Kind};

/// What one migration call found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Steps recorded as applied before the call.
    pub before: u32,
    /// Steps recorded as applied after it (equal to `before` when only
    /// looking).
    pub after: u32,
}

/// The state of a namespace as `host check` saw it, without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// The namespace (`PRAGMA user_version` for a contract 1.0 app's).
    pub namespace: String,
    /// Steps recorded as applied.
    pub applied: u32,
    /// Steps that `user_version` would have it adopt first.
    pub adopted: u32,
    /// Steps the app knows.
    pub known: u32,
}

impl Inspected {
    /// Steps the host would apply when it serves.
    pub fn pending(&self) -> u32 {
        self.known.saturating_sub(self.applied + self.adopted)
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its number, from 1.
    pub step: u32,
    /// The checksum of its text when it was applied.
    pub checksum: String,
    /// When, in Unix seconds.
    pub applied_at: i64,
}

/// The checksum the history keeps of a step's text, byte for byte.
pub fn checksum(step: &str) -> String {
    let digest = Sha256::digest(step.as_bytes());
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Refuses an empty or odd namespace: it names an app's history.
pub fn check_namespace(namespace: &str) -> Result<(), Failure> {
    let valid = (1..=64).contains(&namespace.len())
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(Failure::new(
            Kind::Sql,
            format!(
                "migration namespace {namespace:?} is not valid: use 1 to 64 letters, digits, '_', '-' or '.' (by convention the app's name)"
            ),
        ))
    }
}

fn when(seconds: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| format!("{seconds} (Unix time)"))
}

/// Checks the recorded history of `namespace` against the steps this build
/// of the app knows: every recorded step must still have its text, and the
/// history may not be longer than the steps.
pub fn verify(
    database: &str,
    namespace: &str,
    recorded: &[Recorded],
    steps: &[&str],
) -> Result<(), Failure> {
    if let Some(last) = recorded.last()
        && last.step as usize > steps.len()
    {
        return Err(Failure::new(
            Kind::Other,
            format!(
                "database {database:?}: migration {namespace:?} is at step {}, but this build of the app knows only {} steps: run a newer build of the app (this one would not understand the schema)",
                last.step,
                steps.len()
            ),
        ));
    }
    for entry in recorded {
        let text = steps[entry.step as usize - 1];
        if checksum(text) != entry.checksum {
            return Err(Failure::new(
                Kind::Other,
                format!(
                    "database {database:?}: migration {namespace:?} step {} was changed after it was applied on {}: its text no longer matches the recorded checksum. Never edit an applied step: restore its text, and add a new step for the change",
                    entry.step,
                    when(entry.applied_at)
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(step: u32, text: &str) -> Recorded {
        Recorded {
            step,
            checksum: checksum(text),
            applied_at: 1_796_400_000,
        }
    }

    #[test]
    fn histories_are_checked_against_the_steps_this_build_knows() {
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (y)"];
        let ok: &[&[Recorded]] = &[
            &[],
            &[entry(1, steps[0])],
            &[entry(1, steps[0]), entry(2, steps[1])],
        ];
        for history in ok {
            assert_eq!(verify("blog", "guestbook", history, &steps), Ok(()));
        }
        let changed = verify(
            "blog",
            "guestbook",
            &[entry(1, steps[0]), entry(2, "CREATE TABLE b (y, z)")],
            &steps,
        )
        .unwrap_err();
        assert!(
            changed.message.starts_with(
                "database \"blog\": migration \"guestbook\" step 2 was changed after it was applied on 2026-12-04"
            ),
            "{}",
            changed.message
        );
        let ahead = verify(
            "blog",
            "guestbook",
            &[entry(1, steps[0]), entry(2, steps[1]), entry(3, "x")],
            &steps,
        )
        .unwrap_err();
        assert!(
            ahead.message.starts_with(
                "database \"blog\": migration \"guestbook\" is at step 3, but this build of the app knows only 2 steps"
            ),
            "{}",
            ahead.message
        );
    }

    #[test]
    fn a_step_counts_as_changed_when_a_single_byte_differs() {
        assert_eq!(
            checksum("CREATE TABLE a (x)"),
            checksum("CREATE TABLE a (x)")
        );
        assert_ne!(
            checksum("CREATE TABLE a (x)"),
            checksum("CREATE TABLE a (x) ")
        );
        assert!(checksum("").starts_with("sha256:e3b0c442"));
    }

    #[test]
    fn namespaces_are_names() {
        for good in ["guestbook", "blog", "my-app.v2", "a_b"] {
            assert_eq!(check_namespace(good), Ok(()), "{good}");
        }
        for bad in ["", "a b", "x/y", "é", &"n".repeat(65)] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
