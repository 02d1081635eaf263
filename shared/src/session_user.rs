//! Who is logged in, as an app's signed session cookie remembers it:
//! written by the `auth` blueprint, read by it and by the templates (the
//! `user` of every page rendered with a session).

use app_api::sdk::Session;

use crate::model::User;

/// The session key of the logged-in user.
const USER_KEY: &str = "user";

/// The user the session remembers, unchecked: `auth::current_user` also
/// checks that the user still exists.
pub(crate) fn remembered(session: &Session) -> Option<User> {
    session.get::<User>(USER_KEY)
}

/// Remembers `user` as logged in.
pub(crate) fn remember(session: &mut Session, user: &User) {
    session.insert(USER_KEY, user);
}
