//! The blog's schema, one step at a time, under its own namespace.

/// The namespace of the blog's migrations, shared by every app that uses
/// this model (the frontend and the admin).
pub const MIGRATIONS_NAMESPACE: &str = "blog";

/// The schema, one step at a time. Append new steps; never edit a released
/// one (the host refuses a changed step).
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX posts_by_date ON posts (published, created_at DESC, id DESC);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    file_name TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE post_images (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (post_id, image_id)
);
CREATE INDEX post_images_by_image ON post_images (image_id);
CREATE TABLE login_failures (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (username, address, failed_at);
"#,
    r#"
-- a post's images in order, and its first one, without a sort
CREATE INDEX post_images_by_position ON post_images (post_id, position, image_id);
"#,
    r#"
-- logins the server remembers: logging out ends one for every copy of its
-- cookie, and deleting a user ends all of theirs (a new user given the
-- same id has none)
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
-- failed logins are limited per address too, whatever the username
CREATE INDEX login_failures_by_address ON login_failures (address, failed_at);
"#,
    r#"
-- a post is written in one language, and shows on its language's pages
ALTER TABLE posts ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
CREATE INDEX posts_by_lang_date ON posts (lang, published, created_at DESC, id DESC);
-- readers' comments wait for approval; the address limits how many one
-- client may leave
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    approved INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    address TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX comments_by_post ON comments (post_id, approved, created_at);
CREATE INDEX comments_by_state ON comments (approved, created_at);
CREATE INDEX comments_by_address ON comments (address, created_at);
"#,
    r#"
-- failed logins get an id of their own, which the code names: SQLite's
-- implicit rowid, which it named before, is SQLite's alone (the table is
-- made anew, its rows copied: SQLite cannot add a primary key)
CREATE TABLE login_failures_with_ids (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
INSERT INTO login_failures_with_ids (username, address, failed_at)
    SELECT username, address, failed_at FROM login_failures ORDER BY failed_at;
DROP TABLE login_failures;
ALTER TABLE login_failures_with_ids RENAME TO login_failures;
CREATE INDEX login_failures_by_key ON login_failures (username, address, failed_at);
CREATE INDEX login_failures_by_address ON login_failures (address, failed_at);
"#,
];
