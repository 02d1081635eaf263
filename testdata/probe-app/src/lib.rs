//! Test fixture: an app that shows the host's tests what it received, and
//! misbehaves on request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use app_api::{
    prelude::*,
    sdk::db::{DbError, Statement, Value},
};
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

/// A database error as JSON, for tests to read.
fn db_error(error: &DbError) -> serde_json::Value {
    json!({"error": {"kind": format!("{:?}", error.kind), "message": error.message}})
}

/// Runs the SQL of the form field `sql` on the database named by `database`
/// (none: the mount's default) and answers what came back, or the error.
fn sql(req: &Request) -> Result<Response, Error> {
    let form = req.form();
    let name = form.get("database").unwrap_or_default();
    let db = match req.mount().database(name) {
        Ok(db) => db,
        Err(error) => return Ok(Response::json(&json!({"open_error": error.message()}))),
    };
    let sql = form.get("sql").unwrap_or_default();
    Ok(Response::json(&match db.query(sql, &[]) {
        Ok(rows) => {
            let values: Vec<Vec<serde_json::Value>> = rows
                .iter()
                .map(|row| {
                    row.values()
                        .iter()
                        .map(|value| match value {
                            Value::Null => serde_json::Value::Null,
                            Value::Integer(number) => json!(number),
                            Value::Real(number) => json!(number),
                            Value::Text(text) => json!(text.as_str()),
                            Value::Blob(bytes) => json!(bytes.len()),
                        })
                        .collect()
                })
                .collect();
            json!({"database": db.name(), "rows": values, "rows_affected": rows.rows_affected()})
        }
        Err(error) => db_error(&error),
    }))
}

/// Calls every service of contract 1.1 and says what each answered: on a
/// host built against 1.0 each must be a clear error, not a panic.
fn services(req: &Request) -> Result<Response, Error> {
    let mount = req.mount();
    let outcome = |result: Result<String, String>| match result {
        Ok(value) => json!({"ok": value}),
        Err(message) => json!({"error": message}),
    };
    let default = mount.db().map_err(|error| error.message().to_owned());
    let named = mount
        .database("probe_other")
        .map(|db| db.name().to_owned())
        .map_err(|error| error.message().to_owned());
    let query = default.clone().and_then(|db| {
        db.query("SELECT 41 + 1 AS answer", &[])
            .map(|rows| format!("{:?}", rows.first().map(|row| row.get::<i64>("answer"))))
            .map_err(|error| error.message)
    });
    let migrate = default.clone().and_then(|db| {
        db.migrate("probe_services", &["CREATE TABLE probe_services (x)"])
            .map(|migrated| format!("{migrated:?}"))
            .map_err(|error| error.message)
    });
    let transaction = default.clone().and_then(|db| {
        db.transaction(&[Statement::new("SELECT 1", &[])])
            .map(|rows| rows.len().to_string())
            .map_err(|error| error.message)
    });
    Ok(Response::json(&json!({
        "db": outcome(default.map(|db| db.name().to_owned())),
        "database": outcome(named),
        "query": outcome(query),
        "transaction": outcome(transaction),
        "migrate": outcome(migrate),
    })))
}

/// Stores the request body as an upload (`POST`) with the extension
/// `?ext=` (default `png`), or deletes one.
fn store_upload(req: &Request) -> Result<Response, Error> {
    let extension = req.query("ext").unwrap_or_else(|| "png".to_owned());
    Ok(match req.mount().store_upload(req.body(), &extension) {
        Ok(name) => Response::text(name),
        Err(error) => Response::text(error.message().to_owned()).with_status(409),
    })
}

fn delete_upload(req: &Request) -> Result<Response, Error> {
    let name: &str = req.param("name")?;
    Ok(match req.mount().delete_upload(name) {
        Ok(deleted) => Response::text(deleted.to_string()),
        Err(error) => Response::text(error.message().to_owned()).with_status(409),
    })
}

/// The migrations the config asks for, run at start:
/// `"migrations": {"namespace": "x", "steps": ["..."], "database": "name"}`.
fn migrate_from_config(mount: &Mount) -> Result<(), Error> {
    let Some(migrations) = mount.config.get("migrations") else {
        return Ok(());
    };
    let namespace = migrations["namespace"].as_str().unwrap_or("probe");
    let steps: Vec<&str> = migrations["steps"]
        .as_array()
        .map(|steps| steps.iter().filter_map(|step| step.as_str()).collect())
        .unwrap_or_default();
    let db = mount.database(migrations["database"].as_str().unwrap_or(""))?;
    db.migrate(namespace, &steps)?;
    Ok(())
}

/// Builds the routes; the counter is per mount, to show instances are
/// independent even when one library is mounted twice.
pub fn build(mount: &Mount) -> Result<Router, Error> {
    if mount.config.get("fail_init").is_some() {
        return Err(Error::internal("init refused: config has fail_init"));
    }
    migrate_from_config(mount)?;
    let counter = Arc::new(AtomicU64::new(0));
    let router = Router::new()
        .get("/", "index", shared_hello)
        .route(&["GET", "POST", "PUT"], "/echo", "echo", echo)
        .route(&["GET", "POST"], "/echo/<path:rest>", "echo_rest", echo)
        .get("/links", "links", links)
        .get("/post/<slug>", "post", |req: &Request| {
            Ok(Response::text(format!(
                "post {}",
                req.param::<&str>("slug")?
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
            let ms: u64 = req.param("ms")?;
            std::thread::sleep(Duration::from_millis(ms));
            Ok(Response::text(format!("slept {ms}")))
        })
        .get("/log", "log", log)
        // whether the host told the app it runs with --reload (the SDK
        // then reads templates from disk)
        .get("/reloading", "reloading", |req: &Request| {
            Ok(Response::text(req.mount().reload.to_string()))
        })
        .get("/redirect", "redirect", |req: &Request| {
            Ok(Response::redirect(&req.url_for("index", &[])?))
        })
        .route(&["GET", "POST"], "/db/sql", "sql", sql)
        .get("/db/services", "services", services)
        .post("/uploads-store", "store_upload", store_upload)
        .post("/uploads-delete/<name>", "delete_upload", delete_upload);
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
