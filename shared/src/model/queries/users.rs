//! Users and the record of failed logins.

use app_api::{params, prelude::*, sdk::db::Statement};

use super::Blog;
use crate::model::{
    entities::{User, now},
    entity::Entity,
    validation::{Change, Refusal, check_user},
};

/// How many failed logins within the window refuse the next attempt.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// From one address (an IPv6 client's /64), whatever the usernames.
    pub per_address: u32,
    /// For one username, from anywhere.
    pub per_username: u32,
}

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

    /// Starts a login of `user_id` the server remembers; its id.
    pub fn open_session(&self, user_id: i64) -> Result<String, Error> {
        // forget logins older than a session cookie may live
        let expired = now() - i64::try_from(app_api::sdk::session::MAX_AGE.as_secs()).unwrap_or(0);
        let rows = self.db.transaction(&[
            Statement::new(
                "DELETE FROM sessions WHERE created_at < ?1",
                params![expired],
            ),
            // the id made here, not by SQL: each engine has its own
            // random function
            Statement::new(
                "INSERT INTO sessions (id, user_id, created_at) VALUES (?1, ?2, ?3) RETURNING id",
                params![
                    app_api::sdk::session::random_token().as_str(),
                    user_id,
                    now()
                ],
            ),
        ])?;
        rows.get(1)
            .and_then(|rows| rows.first())
            .map(|row| row.get("id"))
            .transpose()?
            .ok_or_else(|| Error::internal("the new session has no id"))
    }

    /// The user of login `session` if it is still open and is `user_id`'s.
    pub fn session_user(&self, session: &str, user_id: i64) -> Result<Option<User>, Error> {
        let rows = self.db.query(
            &format!(
                "SELECT {} FROM users WHERE id = ?2 AND EXISTS \
                 (SELECT 1 FROM sessions WHERE sessions.id = ?1 AND sessions.user_id = users.id)",
                User::COLUMNS
            ),
            params![session, user_id],
        )?;
        rows.first().map(|row| User::from_row(&row)).transpose()
    }

    /// Ends login `session`, for every copy of its cookie.
    pub fn close_session(&self, session: &str) -> Result<(), Error> {
        self.db
            .execute("DELETE FROM sessions WHERE id = ?1", params![session])?;
        Ok(())
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

    /// Takes a login attempt for `username` from `address` (a client's
    /// address, or an IPv6 client's /64), recorded as a failure until
    /// [`Blog::login_succeeded`] says otherwise, unless either already has
    /// its limit of failures since `since`: `None` then. Checking and
    /// recording are one statement, so parallel attempts cannot all pass a
    /// check that each alone would fail.
    pub fn take_login_attempt(
        &self,
        username: &str,
        address: &str,
        since: i64,
        limits: LoginLimits,
    ) -> Result<Option<i64>, Error> {
        let rows = self.db.query(
                "INSERT INTO login_failures (username, address, failed_at) \
                 SELECT ?1, ?2, ?3 \
                 WHERE (SELECT COUNT(*) FROM login_failures WHERE address = ?2 AND failed_at > ?4) < ?5 \
                 AND (SELECT COUNT(*) FROM login_failures WHERE username = ?1 AND failed_at > ?4) < ?6 \
                 RETURNING id",
                params![
                    username,
                    address,
                    now(),
                    since,
                    limits.per_address,
                    limits.per_username
                ],
        )?;
        rows.first().map(|row| row.get("id")).transpose()
    }

    /// Forgets the failed logins recorded before `before`: they no longer
    /// count.
    pub fn expire_login_failures(&self, before: i64) -> Result<(), Error> {
        self.db.execute(
            "DELETE FROM login_failures WHERE failed_at <= ?1",
            params![before],
        )?;
        Ok(())
    }

    /// When the oldest failure since `since` that counts against `username`
    /// or `address` was recorded.
    pub fn oldest_login_failure(
        &self,
        username: &str,
        address: &str,
        since: i64,
    ) -> Result<Option<i64>, Error> {
        let rows = self.db.query(
            "SELECT MIN(failed_at) AS oldest FROM login_failures \
             WHERE (username = ?1 OR address = ?2) AND failed_at > ?3",
            params![username, address, since],
        )?;
        Ok(rows
            .first()
            .map(|row| row.get("oldest"))
            .transpose()?
            .flatten())
    }

    /// Takes back login attempt `attempt`: it was never checked.
    pub fn withdraw_login_attempt(&self, attempt: i64) -> Result<(), Error> {
        self.db
            .execute("DELETE FROM login_failures WHERE id = ?1", params![attempt])?;
        Ok(())
    }

    /// The attempt `attempt` logged in: it is no failure, and the earlier
    /// failures of `username` from `address` are forgotten.
    pub fn login_succeeded(
        &self,
        attempt: i64,
        username: &str,
        address: &str,
    ) -> Result<(), Error> {
        self.db.transaction(&[
            Statement::new("DELETE FROM login_failures WHERE id = ?1", params![attempt]),
            Statement::new(
                "DELETE FROM login_failures WHERE username = ?1 AND address = ?2",
                params![username, address],
            ),
        ])?;
        Ok(())
    }
}
