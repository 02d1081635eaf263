//! Test fixture: an app that shows the host's tests what it received, and
//! misbehaves on request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use app_api::prelude::*;
use serde_json::json;

/// Everything the request carried, as JSON.
fn echo(req: &Request) -> Result<Response, Error> {
    let form = req.form();
    let headers: Vec<(String, String)> = req
        .headers()
        .map(|(name, value)| (name.to_owned(), String::from_utf8_lossy(value).into_owned()))
        .collect();
    Ok(Response::json(&json!({
        "app": req.app_name(),
        "method": req.method(),
        "script_root": req.script_root(),
        "path": req.path(),
        "query_string": req.query_string(),
        "query": req.query_pairs(),
        "form": form.pairs(),
        "url": req.url(),
        "host": req.host(),
        "scheme": req.scheme(),
        "remote_addr": req.remote_addr(),
        "request_id": req.request_id(),
        "headers": headers,
        "body_len": req.body().len(),
        "config": req.config(),
    })))
}

/// URLs built with `url_for` and `static_url` in this mount.
fn links(req: &Request) -> Result<Response, Error> {
    Ok(Response::json(&json!({
        "index": req.url_for("index", &[])?,
        "post": req.url_for("post", &[("slug", "hello world")])?,
        "post_page": req.url_for("post", &[("slug", "x"), ("page", "2")])?,
        "static": req.static_url("style.css"),
    })))
}

fn log(req: &Request) -> Result<Response, Error> {
    let text = req
        .query("text")
        .unwrap_or_else(|| "probe log line".to_owned());
    match req.query("level").as_deref() {
        Some("debug") => tracing::debug!(marker = %text, "probe says {}", text),
        Some("warn") => tracing::warn!(marker = %text, "probe says {}", text),
        _ => tracing::info!(marker = %text, "probe says {}", text),
    }
    let from_thread = format!("{text} from a spawned thread");
    let spawned = match req.query("thread").as_deref() {
        Some("sdk") => app_api::sdk::spawn(move || tracing::warn!("{from_thread}")).join(),
        Some(_) => std::thread::spawn(move || tracing::warn!("{from_thread}")).join(),
        None => Ok(()),
    };
    spawned.map_err(|_| Error::internal("log thread panicked"))?;
    Ok(Response::text("logged"))
}

/// Builds the routes; the counter is per mount, to show instances are
/// independent even when one library is mounted twice.
pub fn build(mount: &Mount) -> Result<Router, Error> {
    if mount.config.get("fail_init").is_some() {
        return Err(Error::internal("init refused: config has fail_init"));
    }
    let counter = Arc::new(AtomicU64::new(0));
    let router = Router::new()
        .get("/", "index", shared_hello)
        .route(&["GET", "POST", "PUT"], "/echo", "echo", echo)
        .route(&["GET", "POST"], "/echo/<path:rest>", "echo_rest", echo)
        .get("/links", "links", links)
        .get("/post/<slug>", "post", |req: &Request| {
            Ok(Response::text(format!(
                "post {}",
                req.param("slug").unwrap_or_default()
            )))
        })
        .post("/only-post", "only_post", |_req: &Request| {
            Ok(Response::text("posted"))
        })
        .get("/dir/", "dir", |_req: &Request| Ok(Response::text("dir")))
        .get("/count", "count", move |_req: &Request| {
            Ok(Response::text(
                (counter.fetch_add(1, Ordering::SeqCst) + 1).to_string(),
            ))
        })
        .get(
            "/panic",
            "panic",
            |_req: &Request| -> Result<Response, Error> { panic!("probe panic on purpose") },
        )
        .get(
            "/error",
            "error",
            |_req: &Request| -> Result<Response, Error> {
                Err(Error::internal("probe failure on purpose"))
            },
        )
        .get("/sleep/<int:ms>", "sleep", |req: &Request| {
            let ms: u64 = req.param("ms").unwrap_or("0").parse().unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            Ok(Response::text(format!("slept {ms}")))
        })
        .get("/log", "log", log)
        .get("/redirect", "redirect", |req: &Request| {
            Ok(Response::redirect(&req.url_for("index", &[])?))
        });
    // With `"catch_all": true`, every other path echoes too, so tests can see
    // how the host split any URL into script_root and path.
    if mount.config.get("catch_all").is_some() {
        return Ok(router.route(&["GET", "POST"], "/<path:rest>", "catch_all", echo));
    }
    Ok(router)
}

fn shared_hello(req: &Request) -> Result<Response, Error> {
    Ok(Response::text(format!(
        "Hello {}! request.url = {}",
        req.app_name(),
        req.url()
    )))
}

app_api::export_app!(name: "probe", init: build);
