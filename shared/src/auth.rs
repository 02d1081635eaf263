//! The `auth` blueprint both apps register under `/<lang_code>`:
//! `/en/login` and `/en/logout` (`auth.login`, `auth.logout`), argon2id
//! passwords, the signed per-app session cookie, safe `?next=` redirects,
//! throttling of repeated failures, and [`login_required`], the hook for
//! pages only users may see.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use app_api::{
    minijinja::context,
    prelude::*,
    sdk::{HandlerResult, Session, session::csrf_protect},
};

use crate::{
    Site,
    i18n::{lang, tr, tr_with},
    model::{LoginLimits, User, now},
    password, session_user,
};

/// Failed logins allowed within [`WINDOW`] from one address (an IPv6
/// client's /64: one subscriber holds all of it), whatever the usernames,
/// and for one username from anywhere...
pub const LIMITS: LoginLimits = LoginLimits {
    per_address: 10,
    per_username: 10,
};

/// ...seconds; then the login answers 429 until the oldest expires.
pub const WINDOW: i64 = 15 * 60;

/// The longest username a login form takes (as long as a user may have).
pub const MAX_USERNAME_CHARS: usize = 64;

/// The longest password a login form takes: more only costs hashing time.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A hash nobody's password matches, verified for unknown usernames so
/// that they take as long as known ones.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash("not a password of anyone").unwrap_or_default())
}

/// The blueprint: `auth.login` and `auth.logout` (`GET` shows the form,
/// `POST` sends it: `auth.login_submit`, `auth.logout_submit`). It checks
/// the CSRF token of its own forms, whatever the app does.
pub fn blueprint(site: &Arc<Site>) -> Blueprint {
    let (show, submit, confirm, leave) = (
        Arc::clone(site),
        Arc::clone(site),
        Arc::clone(site),
        Arc::clone(site),
    );
    Blueprint::new("auth")
        .before_request(csrf_protect)
        .get("/login", "login", move |req: &Request| {
            login_form(&show, req)
        })
        .post("/login", "login_submit", move |req: &Request| {
            login(&submit, req)
        })
        .get("/logout", "logout", move |req: &Request| {
            logout_form(&confirm, req)
        })
        .post("/logout", "logout_submit", move |req: &Request| {
            logout(&leave, req)
        })
}

/// The logged-in user of this app's session, checked against the
/// database: a login ended on the server (logged out from any copy of the
/// cookie, or its user deleted) is no login.
pub fn current_user(site: &Site, session: &Session) -> Result<Option<User>, Error> {
    match (
        session_user::remembered(session),
        session_user::login(session),
    ) {
        (Some(user), Some(login)) => site.blog.session_user(&login, user.id),
        _ => Ok(None),
    }
}

/// The user a handler behind [`login_required`] serves (the hook checked
/// the login on the server already).
pub fn user(req: &Request) -> Result<User, Error> {
    session_user::remembered(&req.session())
        .ok_or_else(|| Error::internal("auth::user outside login_required"))
}

/// A before-request hook for pages only logged-in users may reach
/// (Flask-Login's `@login_required`, for a whole app or blueprint): others
/// get `303 See Other` to the login page with `?next=` this page. The
/// endpoints in `public` are exempt; `"auth.*"` exempts a blueprint.
pub fn login_required(
    site: &Arc<Site>,
    public: &'static [&'static str],
) -> impl Fn(&Request) -> Result<Option<Response>, Error> + Send + Sync + 'static {
    let site = Arc::clone(site);
    move |req: &Request| {
        let endpoint = req.endpoint().unwrap_or_default();
        let exempt = public.iter().any(|public| match public.strip_suffix(".*") {
            Some(blueprint) => req.blueprint() == Some(blueprint),
            None => *public == endpoint,
        });
        if exempt || current_user(&site, &req.session())?.is_some() {
            return Ok(None);
        }
        let mut here = format!("{}{}", req.script_root(), req.path());
        if !req.query_string().is_empty() {
            here.push('?');
            here.push_str(req.query_string());
        }
        let login = req.url_for("auth.login", &[("next", &here)])?;
        Ok(Some(Response::redirect_with(303, &login)))
    }
}

/// `next` if it is a path inside this mount, else `None`: never another
/// site (`//evil.example`, `https://...`), never another mount's path.
pub fn safe_next(script_root: &str, next: &str) -> Option<String> {
    let inside = match script_root {
        "" => next.starts_with('/'),
        root => next
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
    };
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let suspicious = next.starts_with("//")
        || next.contains('\\')
        || next.chars().any(|c| c.is_control() || c.is_whitespace())
        || path
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
        || path.to_ascii_lowercase().contains("%2e")
        || path.to_ascii_lowercase().contains("%2f")
        || path.to_ascii_lowercase().contains("%5c");
    (inside && !suspicious).then(|| next.to_owned())
}

/// Whom failures count against: the client's address without its port (a
/// client picks a new port for each connection), an IPv6 address as its
/// /64 (a subscriber gets a whole /64 and may use any address in it).
pub fn client_address(req: &Request) -> String {
    let remote = req.remote_addr();
    let address = remote
        .parse::<SocketAddr>()
        .map(|address| address.ip())
        .or_else(|_| remote.parse::<IpAddr>());
    match address.map(|address| address.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(segments))
        }
        Ok(v4) => v4.to_string(),
        Err(_) => remote.to_owned(),
    }
}

fn login_page(
    site: &Site,
    req: &Request,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> HandlerResult {
    site.page(
        req,
        "login.html",
        context! { next => next, username => username, error => error },
    )
}

fn after_login(req: &Request, next: Option<&str>) -> Result<String, Error> {
    match next.and_then(|next| safe_next(req.script_root(), next)) {
        Some(next) => Ok(next),
        None => req.url_for(crate::HOME_ENDPOINT, &[]),
    }
}

fn login_form(site: &Site, req: &Request) -> HandlerResult {
    let session = req.session();
    let next = req.query("next").unwrap_or_default();
    if current_user(site, &session)?.is_some() {
        return Ok(Response::redirect_with(
            303,
            &after_login(req, Some(&next))?,
        ));
    }
    // a login that ended elsewhere: the page must not greet its user
    session_user::forget(&session);
    login_page(site, req, &next, "", None)
}

fn login(site: &Site, req: &Request) -> HandlerResult {
    let form = req.form();
    let session = req.session();
    let lang = lang(req);
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let typed = form.get("password").unwrap_or_default();
    let next = form.get("next").unwrap_or_default().to_owned();
    // no hashing, storing or logging of what no user could have
    if username.chars().count() > MAX_USERNAME_CHARS || typed.len() > MAX_PASSWORD_BYTES {
        let shown: String = username.chars().take(MAX_USERNAME_CHARS).collect();
        let message = tr_with(
            lang,
            "A username has at most {chars} characters and a password at most {bytes} bytes.",
            &[
                ("chars", &MAX_USERNAME_CHARS.to_string()),
                ("bytes", &MAX_PASSWORD_BYTES.to_string()),
            ],
        );
        return Ok(login_page(site, req, &next, &shown, Some(&message))?.with_status(400));
    }
    let address = client_address(req);
    // the form again, with what was typed (but the password) and why
    let again = |message: &str| login_page(site, req, &next, &username, Some(tr(lang, message)));
    let since = now() - WINDOW;
    let Some(attempt) = site
        .blog
        .take_login_attempt(&username, &address, since, LIMITS)?
    else {
        let oldest = site.blog.oldest_login_failure(&username, &address, since)?;
        let retry_after = (oldest.unwrap_or_else(now) + WINDOW - now()).max(1);
        tracing::warn!(username = ?username, address = ?address, "login refused: too many failures");
        return Ok(
            again("Too many failed logins. Wait a few minutes and try again.")?
                .with_status(429)
                .with_header("retry-after", retry_after.to_string()),
        );
    };
    let checked = match site.blog.credentials(&username)? {
        Some((user, hash)) => password::verify(typed, &hash).map(|valid| valid.then_some(user)),
        None => password::verify(typed, decoy_hash()).map(|_| None),
    };
    let user = match checked {
        Ok(user) => user,
        Err(password::Busy) => {
            // not the client's failure: the attempt does not count
            site.blog.withdraw_login_attempt(attempt)?;
            return Ok(
                again("The server is busy checking other logins. Try again in a moment.")?
                    .with_status(503)
                    .with_header("retry-after", "2"),
            );
        }
    };
    let Some(user) = user else {
        // the attempt stays recorded: it is the failure; older ones that no
        // longer count go
        site.blog.expire_login_failures(since)?;
        tracing::info!(username = ?username, address = ?address, "failed login");
        return again("Invalid username or password.");
    };
    site.blog.login_succeeded(attempt, &username, &address)?;
    tracing::info!(username = ?user.username, "logged in");
    // a new session: nothing from before the login carries over
    session.clear();
    let login = site.blog.open_session(user.id)?;
    session_user::remember(&session, &user, &login);
    session.flash(&tr_with(
        lang,
        "Welcome, {name}.",
        &[("name", &user.username)],
    ));
    Ok(Response::redirect_with(
        303,
        &after_login(req, Some(&next))?,
    ))
}

fn logout_form(site: &Site, req: &Request) -> HandlerResult {
    site.page(req, "logout.html", context! {})
}

fn logout(site: &Site, req: &Request) -> HandlerResult {
    let session = req.session();
    if let Some(user) = current_user(site, &session)? {
        tracing::info!(username = ?user.username, "logged out");
    }
    // every copy of the cookie is logged out, not only this browser's
    if let Some(login) = session_user::login(&session) {
        site.blog.close_session(&login)?;
    }
    session.clear();
    Ok(Response::redirect_with(
        303,
        &req.url_for("auth.login", &[])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_inside_the_mount() {
        for (root, next, expected) in [
            ("/admin", "/admin/", true),
            ("/admin", "/admin", true),
            ("/admin", "/admin/posts/3/edit?x=1", true),
            ("/admin", "/", false),
            ("/admin", "/administrator", false),
            ("/admin", "/admin/../secret", false),
            ("/admin", "/admin/%2e%2e/x", false),
            ("/admin", "//evil.example/admin/", false),
            ("/admin", "https://evil.example/admin/", false),
            ("/admin", "/admin/\\evil", false),
            ("/admin", "/admin/\nx", false),
            ("", "/post/a", true),
            ("", "//evil.example", false),
            ("", "/\\evil.example", false),
            ("", "http://evil.example", false),
            ("", "javascript:alert(1)", false),
            ("", "", false),
        ] {
            assert_eq!(
                safe_next(root, next).is_some(),
                expected,
                "{root:?} {next:?}"
            );
        }
    }
}
