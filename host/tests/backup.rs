//! `host backup DEST` while the blog serves, and a restore: the copy is a
//! data folder, and a host started on it serves what was there at the
//! backup (the post, its image, the logins), and nothing written after.

mod common;

use common::{
    Host, Table,
    blog::{Client, PASSWORD, create_user, sample_png, site_table, site_table_value},
};

#[test]
fn a_backup_taken_while_serving_restores_to_a_serving_site() {
    let table = site_table();
    create_user(&table, "alice");
    let host = Host::start_on(&table);
    let mut client = Client::new(&host);
    assert_eq!(client.log_in("/admin", "alice", PASSWORD).status, 303);
    let cookie = format!("admin_session={}", client.cookies["admin_session"].value);
    let edit = client.create_post("Before the backup", "", "Kept.", true);
    let post_id = edit
        .trim_start_matches("/admin/posts/")
        .trim_end_matches("/edit")
        .to_owned();
    let token = client.csrf_token(&edit);
    let upload = client.post_multipart(
        "/admin/images",
        &[("csrf_token", &token), ("attach_to", &post_id)],
        ("image", "sunrise.png", &sample_png()),
    );
    assert_eq!(upload.status, 303);

    let copies = tempfile::tempdir().unwrap();
    let destination = copies.path().join("site-backup");
    let backup = table.run_args(&["backup", destination.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&backup.stdout).into_owned();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(
        said.contains("database blog: ") && said.contains("copied to"),
        "{said}"
    );
    assert!(said.contains("uploads: 1 files copied"), "{said}");
    assert!(said.contains("secret.key copied"), "{said}");
    // written after the backup: not in it
    client.create_post("After the backup", "", "Not kept.", true);
    // a second backup into the same folder is refused, nothing written
    let again = table.run_args(&["backup", destination.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    drop(client);
    drop(host);

    // restored: a host whose data folder is the copy
    let mut value = site_table_value();
    value["data_dir"] = destination.display().to_string().into();
    let restored = Table::from_value(value);
    let host = Host::start_on(&restored);
    let page = host.get("/en/post/before-the-backup");
    assert_eq!(page.status, 200);
    let text = page.text();
    let image = text
        .split("src=\"/uploads/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the image is shown")
        .to_owned();
    let served = host.get(&format!("/uploads/{image}"));
    assert_eq!(served.status, 200);
    assert!(served.body == sample_png(), "the same image");
    assert_eq!(host.get("/en/post/after-the-backup").status, 404);
    // the secret came along: a login from before still works
    let dashboard = host.request("GET", "/admin/", &[("Cookie", &cookie)], b"");
    assert_eq!(dashboard.status, 200);
}
