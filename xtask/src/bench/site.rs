//! The site the benchmark serves: its mount tables, static files and
//! posts.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Value, json};

/// Writes the site the benchmark serves: two mounts like the default table
/// (with a ~200 KB file in the static folder), and the same `.so` mounted 100
/// times.
pub(super) fn write_tables(root: &Path, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let io = |error: std::io::Error| error.to_string();
    let static_dir = static_folder(dir);
    fs::create_dir_all(&static_dir).map_err(io)?;
    fs::copy(
        root.join("shared/static/style.css"),
        static_dir.join("style.css"),
    )
    .map_err(io)?;
    let big: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
    fs::write(static_dir.join("big.bin"), big).map_err(io)?;
    let apps = root.join("apps");
    let frontend = apps.join("libfrontend.so");
    let admin = apps.join("libadmin.so");
    let two = table_json(
        &[
            ("frontend", "/".to_owned(), &frontend),
            ("admin", "/admin".to_owned(), &admin),
        ],
        &static_dir,
        dir,
    );
    let hundred: Vec<(String, String)> = (0..100)
        .map(|i| (format!("m{i}"), format!("/m{i}")))
        .collect();
    let hundred = table_json(
        &hundred
            .iter()
            .map(|(name, prefix)| (name.as_str(), prefix.clone(), &frontend))
            .collect::<Vec<_>>(),
        &static_dir,
        dir,
    );
    let two_file = dir.join("plugins-2.json");
    let hundred_file = dir.join("plugins-100.json");
    fs::write(&two_file, two).map_err(io)?;
    fs::write(&hundred_file, hundred).map_err(io)?;
    Ok((two_file, hundred_file))
}

/// The static folder of the site written in `dir`.
pub(super) fn static_folder(dir: &Path) -> PathBuf {
    dir.join("static")
}

/// Posts the benchmark imports before it starts the host.
const POSTS: usize = 12;

/// The markdown of the benchmark's post `number`: about 3 KB in six
/// sections, each with a paragraph, a list and a code block.
fn post_markdown(number: usize) -> String {
    let paragraph = "This is a paragraph with *emphasis*, **strong text**, a \
                     [link](https://example.com/page) and `inline code`. "
        .repeat(4);
    let mut text = format!("# Post {number}\n\n");
    for section in 1..=6 {
        let _ = write!(
            text,
            "## Section {section}\n\n{paragraph}\n\n- item one\n- item two with \
             [a link](https://example.org)\n- item three\n\n\
             ```rust\nfn main() {{ println!(\"hello {section}\"); }}\n```\n\n"
        );
    }
    text
}

/// Starts the site's database afresh with [`POSTS`] posts, imported the
/// way a user would (`host cmd admin import-post`).
pub(super) fn seed_posts(host_binary: &Path, table: &Path, dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir.join("data")) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error.to_string());
        }
        _ => {}
    }
    import_posts(host_binary, table, dir)
}

/// Imports [`POSTS`] posts into the database of `table` (written to
/// `dir/posts` first).
pub(super) fn import_posts(host_binary: &Path, table: &Path, dir: &Path) -> Result<(), String> {
    let io = |error: std::io::Error| error.to_string();
    let posts = dir.join("posts");
    fs::create_dir_all(&posts).map_err(io)?;
    let mut files = Vec::new();
    for number in 1..=POSTS {
        let file = posts.join(format!("post-{number}.md"));
        fs::write(&file, post_markdown(number)).map_err(io)?;
        files.push(file);
    }
    let output = Command::new(host_binary)
        .args(["cmd", "--config"])
        .arg(table)
        .args(["admin", "import-post"])
        .args(&files)
        .output()
        .map_err(|error| format!("{}: {error}", host_binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "importing the benchmark's posts failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// The two-mount table at `two` with the blog's database at `url` on
/// PostgreSQL, for the host `index` of a cluster: its own data and log
/// folders, the cluster's `key` file, nginx trusted as its proxy.
pub(super) fn postgres_table(
    two: &Path,
    url: &str,
    key: &Path,
    dir: &Path,
    index: usize,
) -> Result<PathBuf, String> {
    let text = fs::read_to_string(two).map_err(|error| error.to_string())?;
    let mut table: Value = serde_json::from_str(&text).map_err(|error| error.to_string())?;
    let own = dir.join(format!("host{index}"));
    table["databases"]["blog"]["url"] = url.into();
    table["secret_key_file"] = json!(key);
    table["data_dir"] = json!(own.join("data"));
    table["log_dir"] = json!(own.join("logs"));
    table["trusted_proxies"] = json!(["127.0.0.1"]);
    let file = dir.join(format!("plugins-pg{index}.json"));
    fs::write(&file, format!("{table:#}\n")).map_err(|error| error.to_string())?;
    Ok(file)
}

/// A mount table: every mount on the blog's database, as in the shipped
/// table.
fn table_json(mounts: &[(&str, String, &PathBuf)], static_dir: &Path, dir: &Path) -> String {
    let mounts: Vec<Value> = mounts
        .iter()
        .map(|(name, prefix, library)| {
            json!({
                "name": name,
                "prefix": prefix,
                "library": library,
                "static_folder": static_dir,
                "databases": ["blog"],
            })
        })
        .collect();
    let table = json!({
        "data_dir": dir.join("data"),
        "log_dir": dir.join("logs"),
        "databases": {"blog": {"url": "sqlite:app.db"}},
        "mounts": mounts,
    });
    format!("{table:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_posts_are_titled_and_about_3_kb() {
        let post = post_markdown(7);
        assert!(post.starts_with("# Post 7\n\n## Section 1\n"), "{post}");
        assert_eq!(post.matches("## Section").count(), 6);
        assert!((2_500..4_000).contains(&post.len()), "{} bytes", post.len());
    }

    #[test]
    fn tables_put_every_mount_on_the_blog_database() {
        let library = PathBuf::from("/apps/libfrontend.so");
        let text = table_json(
            &[
                ("m0", "/m0".to_owned(), &library),
                ("m1", "/m1".to_owned(), &library),
            ],
            Path::new("/site/static"),
            Path::new("/site"),
        );
        let table: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(table["data_dir"], "/site/data");
        assert_eq!(table["databases"]["blog"]["url"], "sqlite:app.db");
        assert_eq!(table["mounts"][1]["prefix"], "/m1");
        assert_eq!(table["mounts"][1]["library"], "/apps/libfrontend.so");
        assert_eq!(table["mounts"][0]["databases"], json!(["blog"]));
    }
}
