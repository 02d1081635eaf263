//! What the blog's `frontend` and `admin` apps share: pages and handlers
//! both mount ("blueprints"), and the static files in `shared/static/`.

pub mod pages;
