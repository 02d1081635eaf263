//! Who is logged in, as an app's signed session cookie remembers it:
//! written by the `auth` blueprint, read by it and by the templates (the
//! `user` of every page rendered with a session).

use app_api::sdk::Session;

use crate::model::User;

/// The session key of the logged-in user.
const USER_KEY: &str = "user";
/// The session key of the login's id on the server (`Blog::open_session`).
const LOGIN_KEY: &str = "login";

/// The user the session remembers, unchecked: `auth::current_user` also
/// checks that the login is still open on the server.
pub(crate) fn remembered(session: &Session) -> Option<User> {
    session.get::<User>(USER_KEY)
}

/// The server's id of the session's login, if it has one.
pub(crate) fn login(session: &Session) -> Option<String> {
    session.get::<String>(LOGIN_KEY)
}

/// Remembers `user` as logged in with the server's login `id`.
pub(crate) fn remember(session: &Session, user: &User, id: &str) {
    session.insert(USER_KEY, user);
    session.insert(LOGIN_KEY, id);
}

/// Forgets the logged-in user (the login ended on the server).
pub(crate) fn forget(session: &Session) {
    session.remove(USER_KEY);
    session.remove(LOGIN_KEY);
}
