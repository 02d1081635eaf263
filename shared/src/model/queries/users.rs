//! Users and the record of failed logins.

use app_api::{params, prelude::*, sdk::db::Statement};

use super::Blog;
use crate::model::{
    entities::{User, now},
    entity::Entity,
    validation::{Change, Refusal, check_user},
};

impl Blog {
    /// Creates a user with an argon2id hash of `password`.
    pub fn create_user(&self, username: &str, password: &str) -> Change<User> {
        let username = username.trim();
        if let Err(refusal) = check_user(username, password) {
            return Ok(Err(refusal));
        }
        let hash = crate::password::hash(password)?;
        match self.db.query(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![username, hash, now()],
        ) {
            Ok(rows) => {
                let id = rows.first().map(|row| row.get("id")).transpose()?.unwrap_or(0);
                Ok(Ok(User {
                    id,
                    username: username.to_owned(),
                }))
            }
            Err(error) if error.is_constraint() => Ok(Err(Refusal::Invalid(format!(
                "A user named \"{username}\" already exists."
            )))),
            Err(error) => Err(error.into()),
        }
    }

    /// The user with this id.
    pub fn user(&self, id: i64) -> Result<Option<User>, Error> {
        let rows = self.db.query(
            &format!("SELECT {} FROM users WHERE id = ?1", User::COLUMNS),
            params![id],
        )?;
        rows.first().map(|row| User::from_row(&row)).transpose()
    }

    /// The user and password hash for a login name.
    pub fn credentials(&self, username: &str) -> Result<Option<(User, String)>, Error> {
        let rows = self.db.query(
            &format!(
                "SELECT {}, password_hash FROM users WHERE username = ?1",
                User::COLUMNS
            ),
            params![username],
        )?;
        rows.first()
            .map(|row| Ok((User::from_row(&row)?, row.get("password_hash")?)))
            .transpose()
    }

    /// Failed logins for `username` from `address` since `since`, and the
    /// time of the oldest of them.
    pub fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: i64,
    ) -> Result<(u32, Option<i64>), Error> {
        let rows = self.db.query(
            "SELECT COUNT(*) AS failures, MIN(failed_at) AS oldest FROM login_failures \
             WHERE username = ?1 AND address = ?2 AND failed_at > ?3",
            params![username, address, since],
        )?;
        match rows.first() {
            Some(row) => Ok((row.get("failures")?, row.get("oldest")?)),
            None => Ok((0, None)),
        }
    }

    /// Records a failed login, forgetting those older than `forget_before`.
    pub fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        forget_before: i64,
    ) -> Result<(), Error> {
        self.db.transaction(&[
            Statement::new(
                "DELETE FROM login_failures WHERE failed_at <= ?1",
                params![forget_before],
            ),
            Statement::new(
                "INSERT INTO login_failures (username, address, failed_at) VALUES (?1, ?2, ?3)",
                params![username, address, now()],
            ),
        ])?;
        Ok(())
    }

    /// Forgets the failed logins for `username` from `address`.
    pub fn clear_login_failures(&self, username: &str, address: &str) -> Result<(), Error> {
        self.db.execute(
            "DELETE FROM login_failures WHERE username = ?1 AND address = ?2",
            params![username, address],
        )?;
        Ok(())
    }
}
