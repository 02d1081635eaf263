//! Uploads in an S3-compatible store (`"uploads": {"url": "s3://…"}`),
//! against a real one the test starts (moto's server): the admin's image
//! goes to the bucket under the prefix, never to the data folder; both
//! apps serve it from the store with the validators, ranges and caching of
//! a file; deleting it deletes the object; a store that does not answer is
//! a clear error, never a crash.

mod common;

use common::{
    Host,
    blog::{Client, PASSWORD, create_user, sample_png, site_table_with},
    s3::{BUCKET, S3},
};

/// The blog with its uploads in `s3://uploads/site` on `s3`, user alice.
fn blog_on(s3_env: &[(&'static str, String)]) -> (common::Table, Host) {
    let table = site_table_with(|value| {
        value["uploads"] = serde_json::json!({"url": format!("s3://{BUCKET}/site")});
    });
    create_user(&table, "alice");
    let mut env: Vec<(&str, &str)> = s3_env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    env.push(("RUST_LOG", "info"));
    let host = Host::start_with_env(&table, &env);
    (table, host)
}

/// Uploads `image` through the admin; the stored name and the image's id.
fn upload(client: &mut Client<'_>, image: &[u8]) -> (String, String) {
    let token = client.csrf_token("/admin/images");
    let uploaded = client.post_multipart(
        "/admin/images",
        &[("csrf_token", token.as_str())],
        ("image", "photo.png", image),
    );
    assert_eq!(uploaded.status, 303, "{}", uploaded.text());
    let page = client.get("/admin/images").text();
    let name = page
        .split("src=\"/admin/uploads/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the image is listed")
        .to_owned();
    let id = page
        .split("action=\"/admin/images/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the image can be deleted")
        .to_owned();
    (name, id)
}

#[test]
fn uploads_go_to_the_bucket_and_are_served_from_it_as_files_are() {
    let s3 = S3::start();
    let (table, host) = blog_on(&s3.env());
    let mut client = Client::new(&host);
    assert_eq!(client.log_in("/admin", "alice", PASSWORD).status, 303);
    // a large one too: served as it arrives from the store, not whole
    let small = sample_png();
    let mut large = sample_png();
    large.resize(1024 * 1024, 7);
    let (name, _) = upload(&mut client, &small);
    let (large_name, large_id) = upload(&mut client, &large);

    assert_eq!(
        s3.keys(),
        {
            let mut keys = vec![format!("site/{name}"), format!("site/{large_name}")];
            keys.sort();
            keys
        },
        "stored under the prefix"
    );
    let object = s3.request("GET", &format!("/{BUCKET}/site/{name}"));
    assert_eq!(object.status, 200);
    assert!(
        object.body == small,
        "the object is the upload: {} bytes",
        object.body.len()
    );
    assert!(
        !table.dir.path().join("data/uploads").exists(),
        "nothing in the data folder"
    );

    for (stored, bytes) in [(&name, &small), (&large_name, &large)] {
        for path in [
            format!("/uploads/{stored}"),
            format!("/admin/uploads/{stored}"),
        ] {
            let served = host.get(&path);
            assert_eq!(served.status, 200, "{path}: {}", host.log());
            assert!(&served.body == bytes, "{path}: {} bytes", served.body.len());
            assert_eq!(served.header("content-type"), Some("image/png"));
            assert_eq!(served.header("content-security-policy"), Some("sandbox"));
            assert!(served.header("cache-control").unwrap().contains("max-age="));
            let etag = served.header("etag").expect("an ETag").to_owned();
            let again = host.request("GET", &path, &[("If-None-Match", &etag)], b"");
            assert_eq!(again.status, 304, "{path}");
            let range = host.request("GET", &path, &[("Range", "bytes=100-199")], b"");
            assert_eq!(range.status, 206, "{path}");
            assert!(
                range.body == bytes[100..200],
                "{path}: {} bytes",
                range.body.len()
            );
            assert_eq!(
                range.header("content-range"),
                Some(format!("bytes 100-199/{}", bytes.len()).as_str())
            );
        }
    }
    assert_eq!(host.get("/uploads/nothing.png").status, 404);
    assert_eq!(host.get("/uploads/../secret.key").status, 404);
    assert_eq!(host.get("/uploads/site%2Fx.png").status, 404);

    // deleting the image deletes the object
    let token = client.csrf_token("/admin/images");
    let deleted = client.post_form(
        &format!("/admin/images/{large_id}/delete"),
        &[("csrf_token", token.as_str())],
    );
    assert_eq!(deleted.status, 303, "{}", deleted.text());
    assert_eq!(s3.keys(), [format!("site/{name}")]);
    assert_eq!(host.get(&format!("/uploads/{large_name}")).status, 404);
}

#[test]
fn a_store_that_does_not_answer_is_a_clear_error() {
    let s3 = S3::start();
    let env = s3.env();
    drop(s3);
    let (_table, host) = blog_on(&env);
    let mut client = Client::new(&host);
    assert_eq!(client.log_in("/admin", "alice", PASSWORD).status, 303);
    let token = client.csrf_token("/admin/images");
    let refused = client.post_multipart(
        "/admin/images",
        &[("csrf_token", token.as_str())],
        ("image", "photo.png", &sample_png()),
    );
    assert_eq!(refused.status, 500, "{}", refused.text());
    host.wait_for_log("cannot store");
    assert!(host.log().contains("s3://uploads/site"), "{}", host.log());
    // serving: the store's outage, not a missing file
    assert_eq!(
        host.get("/uploads/0123456789abcdef0123456789abcdef.png")
            .status,
        503
    );
    // the host still serves everything else
    assert_eq!(host.get("/en/").status, 200);
}
