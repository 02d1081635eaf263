//! The blog's admin, mounted at `/admin`: everything but the login and
//! about pages (the shared blueprints, under `/admin/<lang_code>/`) needs a
//! logged-in user, which one hook checks for every route; another checks
//! the CSRF token of every form. Write, edit, publish and delete posts in
//! either language; upload images and attach them to posts in order;
//! approve or delete readers' comments. Shares the model, templates, login
//! and pages with `frontend` through the `shared` crate.

use std::sync::Arc;

use app_api::{
    minijinja::{Value, context},
    prelude::*,
    sdk::{Commands, Form, HandlerResult, session::csrf_protect},
};
use shared::{
    Site, auth,
    i18n::{self, LANGUAGES},
    model::{Image, Post, PostInput, Refusal},
};

/// The upload size limit when the mount's config does not set
/// `max_upload_bytes`.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024;

/// What the admin's handlers share.
struct Admin {
    site: Arc<Site>,
    max_upload_bytes: u64,
}

/// The mount's `config.max_upload_bytes`, checked.
fn max_upload_bytes(mount: &Mount) -> Result<u64, Error> {
    match mount.config.get("max_upload_bytes") {
        None => Ok(DEFAULT_MAX_UPLOAD_BYTES),
        Some(value) => value.as_u64().filter(|bytes| *bytes > 0).ok_or_else(|| {
            Error::internal(format!(
                "config.max_upload_bytes is {value}: give a positive number of bytes, e.g. 5242880"
            ))
        }),
    }
}

type AdminHandler = fn(&Admin, &Request) -> HandlerResult;

/// The endpoints anyone may reach: the login and about pages, and the
/// original setup's hello.
const PUBLIC: &[&str] = &["auth.*", "pages.*", "hello"];

/// Builds the app's routes for one mount.
pub fn build(mount: &Mount) -> Result<Router, Error> {
    let site = Site::open(mount, app_api::templates!("templates"))?;
    let admin = Arc::new(Admin {
        site: Arc::clone(&site),
        max_upload_bytes: max_upload_bytes(mount)?,
    });
    let to = |handler: AdminHandler| {
        let admin = Arc::clone(&admin);
        move |req: &Request| handler(&admin, req)
    };
    let router = Router::new()
        .before_request(csrf_protect)
        .before_request(auth::login_required(&site, PUBLIC))
        .get("/", "index", to(dashboard))
        .get("/hello", "hello", shared::pages::hello)
        .get("/posts/new", "new_post", to(new_post))
        .post("/posts/new", "create_post", to(create_post))
        .get("/posts/<int:id>/edit", "edit_post", to(edit_post))
        .post("/posts/<int:id>/edit", "update_post", to(update_post))
        .post("/posts/<int:id>/publish", "publish_post", to(publish_post))
        .post("/posts/<int:id>/delete", "delete_post", to(delete_post))
        .post("/posts/<int:id>/images", "attach_image", to(attach_image))
        .post(
            "/posts/<int:id>/images/<int:image_id>/detach",
            "detach_image",
            to(detach_image),
        )
        .post(
            "/posts/<int:id>/images/<int:image_id>/move",
            "move_image",
            to(move_image),
        )
        .get("/images", "images", to(images))
        .post("/images", "upload_image", to(upload_image))
        .post("/images/<int:id>/delete", "delete_image", to(delete_image))
        .get("/comments", "comments", to(comments))
        .post(
            "/comments/<int:id>/approve",
            "approve_comment",
            to(approve_comment),
        )
        .post(
            "/comments/<int:id>/delete",
            "delete_comment",
            to(delete_comment),
        )
        .register(auth::blueprint(&site), "/<lang_code>")
        .register(shared::pages::blueprint(&site), "/<lang_code>")
        .error_handler(shared::pages::error_handler(&site))
        .register_error_handler(500, shared::pages::error_handler(&site));
    Ok(i18n::localise(router))
}

fn no_such_post() -> Error {
    Error::not_found_with("There is no such post.")
}

fn post_or_404(admin: &Admin, id: i64) -> Result<Post, Error> {
    admin.site.blog.post(id)?.ok_or_else(no_such_post)
}

/// `303 See Other` back to a post's editor.
fn to_editor(req: &Request, post_id: i64) -> HandlerResult {
    see_other(req, "edit_post", &[("id", &post_id.to_string())])
}

/// `303 See Other` to an endpoint.
fn see_other(req: &Request, endpoint: &str, params: &[(&str, &str)]) -> HandlerResult {
    Ok(Response::redirect_with(
        StatusCode::SEE_OTHER,
        &req.url_for(endpoint, params)?,
    ))
}

/// Keeps a message for the next page.
fn flash(req: &Request, message: &str) {
    req.session().flash(message);
}

fn dashboard(admin: &Admin, req: &Request) -> HandlerResult {
    let posts = admin.site.blog.all_posts()?;
    let waiting = admin.site.blog.pending_comment_count()?;
    admin.site.page(
        req,
        "dashboard.html",
        context! { posts => posts, waiting => waiting },
    )
}

fn input(form: &Form) -> PostInput {
    PostInput {
        title: form.get("title").unwrap_or_default().to_owned(),
        slug: form.get("slug").unwrap_or_default().trim().to_owned(),
        body: form.get("body").unwrap_or_default().replace("\r\n", "\n"),
        published: form
            .get("published")
            .is_some_and(|value| value == "1" || value == "on"),
        lang: form.get("lang").unwrap_or(i18n::DEFAULT).to_owned(),
    }
}

/// The editor page: for a new post (`post` is `None`) or an existing one,
/// showing `input` and `error` after a refused change.
fn editor(
    admin: &Admin,
    req: &Request,
    post: Option<&Post>,
    input: &PostInput,
    error: Option<&Refusal>,
) -> HandlerResult {
    let (attached, available) = match post {
        Some(post) => {
            let attached = admin.site.blog.post_images(post.id)?;
            let available: Vec<Image> = admin
                .site
                .blog
                .images()?
                .into_iter()
                .map(|(image, _)| image)
                .filter(|image| !attached.iter().any(|a| a.id == image.id))
                .collect();
            (attached, available)
        }
        None => (Vec::new(), Vec::new()),
    };
    let page = context! {
        post => post,
        title => input.title,
        slug => input.slug,
        body => input.body,
        published => input.published,
        post_lang => input.lang,
        post_languages => Value::from_serialize(LANGUAGES),
        error => error.map(ToString::to_string),
        attached => attached,
        available => available,
        preview => Value::from_safe_string(shared::markdown::to_html(&input.body)),
    };
    let status = match error {
        Some(Refusal::SlugTaken(_)) => 409,
        Some(_) => 422,
        None => 200,
    };
    Ok(admin.site.page(req, "edit.html", page)?.with_status(status))
}

fn new_post(admin: &Admin, req: &Request) -> HandlerResult {
    editor(admin, req, None, &PostInput::default(), None)
}

fn create_post(admin: &Admin, req: &Request) -> HandlerResult {
    let user = auth::user(req)?;
    let input = input(&req.form());
    match admin.site.blog.create_post(&input)? {
        Ok(post) => {
            tracing::info!(user = %user.username, slug = %post.slug, "created post {}", post.id);
            flash(req, &format!("Created \u{201c}{}\u{201d}.", post.title));
            to_editor(req, post.id)
        }
        Err(refusal) => editor(admin, req, None, &input, Some(&refusal)),
    }
}

fn edit_post(admin: &Admin, req: &Request) -> HandlerResult {
    let post = post_or_404(admin, req.param("id")?)?;
    editor(admin, req, Some(&post), &PostInput::from(&post), None)
}

fn update_post(admin: &Admin, req: &Request) -> HandlerResult {
    let user = auth::user(req)?;
    let form = req.form();
    let post = post_or_404(admin, req.param("id")?)?;
    let input = input(&form);
    match admin.site.blog.update_post(post.id, &input)? {
        Ok(Some(post)) => {
            tracing::info!(user = %user.username, slug = %post.slug, "saved post {}", post.id);
            flash(req, &format!("Saved \u{201c}{}\u{201d}.", post.title));
            to_editor(req, post.id)
        }
        Ok(None) => Err(no_such_post()),
        Err(refusal) => editor(admin, req, Some(&post), &input, Some(&refusal)),
    }
}

fn publish_post(admin: &Admin, req: &Request) -> HandlerResult {
    let user = auth::user(req)?;
    let form = req.form();
    let post = post_or_404(admin, req.param("id")?)?;
    let published = form.get("published") == Some("1");
    admin.site.blog.set_published(post.id, published)?;
    tracing::info!(user = %user.username, slug = %post.slug, published, "changed post {}", post.id);
    let what = if published {
        "Published"
    } else {
        "Unpublished"
    };
    flash(req, &format!("{what} \u{201c}{}\u{201d}.", post.title));
    see_other(req, "index", &[])
}

fn delete_post(admin: &Admin, req: &Request) -> HandlerResult {
    let user = auth::user(req)?;
    let post = post_or_404(admin, req.param("id")?)?;
    admin.site.blog.delete_post(post.id)?;
    tracing::info!(user = %user.username, slug = %post.slug, "deleted post {}", post.id);
    flash(req, &format!("Deleted \u{201c}{}\u{201d}.", post.title));
    see_other(req, "index", &[])
}

fn attach_image(admin: &Admin, req: &Request) -> HandlerResult {
    let form = req.form();
    let post = post_or_404(admin, req.param("id")?)?;
    let image_id: i64 = form
        .get("image_id")
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| Error::bad_request("Choose an image to attach."))?;
    if !admin.site.blog.attach(post.id, image_id)? {
        return Err(Error::new(404, "There is no such image."));
    }
    flash(req, "Attached the image.");
    to_editor(req, post.id)
}

fn detach_image(admin: &Admin, req: &Request) -> HandlerResult {
    let post = post_or_404(admin, req.param("id")?)?;
    if !admin.site.blog.detach(post.id, req.param("image_id")?)? {
        return Err(Error::new(404, "That image is not attached to this post."));
    }
    flash(req, "Detached the image.");
    to_editor(req, post.id)
}

fn move_image(admin: &Admin, req: &Request) -> HandlerResult {
    let form = req.form();
    let post = post_or_404(admin, req.param("id")?)?;
    let earlier = match form.get("direction") {
        Some("up") => true,
        Some("down") => false,
        _ => {
            return Err(Error::bad_request(
                "Say which way to move the image: up or down.",
            ));
        }
    };
    // already first or last: nothing to do, and nothing to complain about
    admin
        .site
        .blog
        .move_image(post.id, req.param("image_id")?, earlier)?;
    to_editor(req, post.id)
}

fn images(admin: &Admin, req: &Request) -> HandlerResult {
    let images: Vec<Value> = admin
        .site
        .blog
        .images()?
        .into_iter()
        .map(|(image, uses)| context! { uses => uses, ..Value::from_serialize(&image) })
        .collect();
    let page = context! {
        images => images,
        max_upload_bytes => admin.max_upload_bytes,
    };
    admin.site.page(req, "images.html", page)
}

/// The image types accepted, recognised by their first bytes.
fn image_kind(data: &[u8]) -> Option<(&'static str, &'static str)> {
    match imagesize::image_type(data).ok()? {
        imagesize::ImageType::Png => Some(("png", "image/png")),
        imagesize::ImageType::Jpeg => Some(("jpg", "image/jpeg")),
        imagesize::ImageType::Gif => Some(("gif", "image/gif")),
        imagesize::ImageType::Webp => Some(("webp", "image/webp")),
        _ => None,
    }
}

fn upload_image(admin: &Admin, req: &Request) -> HandlerResult {
    let user = auth::user(req)?;
    let multipart = req.multipart()?;
    let form = &multipart.form;
    let file = multipart
        .file("image")
        .ok_or_else(|| Error::bad_request("Choose an image file to upload."))?;
    if file.data.len() as u64 > admin.max_upload_bytes {
        return Err(Error::new(
            413,
            format!(
                "The image is {} bytes; the limit is {} bytes.",
                file.data.len(),
                admin.max_upload_bytes
            ),
        ));
    }
    let (extension, content_type) = image_kind(&file.data)
        .ok_or_else(|| Error::new(415, "That file is not a PNG, JPEG, GIF or WebP image."))?;
    let size = imagesize::blob_size(&file.data)
        .map_err(|_| Error::new(415, "The image is damaged: its size cannot be read."))?;
    let mount = req.mount();
    let stored = mount.store_upload(&file.data, extension)?;
    let record = Image {
        id: 0,
        file_name: stored.clone(),
        original_name: file.file_name.chars().take(200).collect(),
        content_type: content_type.to_owned(),
        size: file.data.len() as i64,
        width: size.width as i64,
        height: size.height as i64,
    };
    let image = match admin.site.blog.create_image(&record) {
        Ok(image) => image,
        Err(error) => {
            // keep no file the database does not know of
            let _ = mount.delete_upload(&stored);
            return Err(error);
        }
    };
    tracing::info!(user = %user.username, file = %image.file_name, bytes = image.size, "uploaded an image");
    if let Some(post_id) = form
        .get("attach_to")
        .and_then(|value| value.parse::<i64>().ok())
    {
        let post = post_or_404(admin, post_id)?;
        admin.site.blog.attach(post.id, image.id)?;
        flash(req, "Uploaded and attached the image.");
        return to_editor(req, post.id);
    }
    flash(req, "Uploaded the image.");
    see_other(req, "images", &[])
}

fn delete_image(admin: &Admin, req: &Request) -> HandlerResult {
    let user = auth::user(req)?;
    match admin.site.blog.delete_image(req.param("id")?)? {
        Ok(Some(image)) => {
            req.mount().delete_upload(&image.file_name)?;
            tracing::info!(user = %user.username, file = %image.file_name, "deleted an image");
            flash(req, "Deleted the image.");
            see_other(req, "images", &[])
        }
        Ok(None) => Err(Error::new(404, "There is no such image.")),
        Err(refusal) => Err(Error::new(409, refusal.to_string())),
    }
}

fn comments(admin: &Admin, req: &Request) -> HandlerResult {
    let waiting = admin.site.blog.pending_comment_count()?;
    let comments: Vec<Value> = admin
        .site
        .blog
        .pending_comments()?
        .into_iter()
        .map(|pending| {
            context! {
                html => Value::from_safe_string(shared::markdown::comment_html(&pending.comment.body)),
                ..Value::from_serialize(&pending)
            }
        })
        .collect();
    admin.site.page(
        req,
        "comments.html",
        context! { comments => comments, waiting => waiting },
    )
}

/// What the admin does with a waiting comment.
#[derive(Debug, Clone, Copy)]
enum Moderation {
    Approve,
    Delete,
}

fn approve_comment(admin: &Admin, req: &Request) -> HandlerResult {
    moderate(admin, req, Moderation::Approve)
}

fn delete_comment(admin: &Admin, req: &Request) -> HandlerResult {
    moderate(admin, req, Moderation::Delete)
}

/// Approves or deletes the comment `<int:id>`, back to the queue.
fn moderate(admin: &Admin, req: &Request, what: Moderation) -> HandlerResult {
    let user = auth::user(req)?;
    let id: i64 = req.param("id")?;
    let blog = &admin.site.blog;
    let (found, done, said) = match what {
        Moderation::Approve => (
            blog.approve_comment(id)?,
            "approved",
            "Approved the comment: it shows under its post.",
        ),
        Moderation::Delete => (blog.delete_comment(id)?, "deleted", "Deleted the comment."),
    };
    if !found {
        return Err(Error::not_found_with("There is no such comment."));
    }
    tracing::info!(user = %user.username, comment = id, "{done} a comment");
    flash(req, said);
    see_other(req, "comments", &[])
}

/// The app's command-line commands.
pub fn commands() -> Commands {
    Commands::new()
        .command(
            "create-user",
            "NAME",
            "Creates a user who can log in (reads the password from standard input)",
            create_user,
        )
        .command(
            "import-post",
            "[--draft] [--lang CODE] FILE.md...",
            "Adds a post from each markdown file, titled by its first line (`# Title`), in English unless --lang nl; published unless --draft",
            import_posts,
        )
}

/// `create-user NAME`.
fn create_user(mount: &Mount, args: &[String]) -> Result<String, Error> {
    let [name] = args else {
        return Err(Error::bad_request("usage: create-user NAME"));
    };
    let blog = shared::model::Blog::open(mount.db()?)?;
    let password = mount.prompt("Password: ", true)?;
    match blog.create_user(name, &password)? {
        Ok(user) => Ok(format!("created user {:?} (id {})", user.username, user.id)),
        Err(refusal) => Err(Error::bad_request(refusal.to_string())),
    }
}

/// `import-post`: every file is read and checked before any post is made,
/// so a bad file leaves the blog as it was.
fn import_posts(mount: &Mount, args: &[String]) -> Result<String, Error> {
    const USAGE: &str = "usage: import-post [--draft] [--lang CODE] FILE.md...";
    let mut draft = false;
    let mut lang = i18n::DEFAULT.to_owned();
    let mut files: Vec<&String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--draft" => draft = true,
            "--lang" => {
                lang = args
                    .next()
                    .ok_or_else(|| Error::bad_request(USAGE))?
                    .clone()
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        return Err(Error::bad_request(USAGE));
    }
    let mut inputs = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|error| Error::bad_request(format!("{file}: {error}")))?;
        let (title, body) = shared::markdown::split_title(&text).ok_or_else(|| {
            Error::bad_request(format!(
                "{file}: no title: the first line must be a heading like `# My first post`"
            ))
        })?;
        let input = PostInput {
            title: title.to_owned(),
            body: body.to_owned(),
            published: !draft,
            lang: lang.clone(),
            ..PostInput::default()
        };
        input
            .check()
            .map_err(|refusal| Error::bad_request(format!("{file}: {refusal}")))?;
        inputs.push(input);
    }
    let blog = shared::model::Blog::open(mount.db()?)?;
    let mut said = Vec::new();
    for (file, input) in files.iter().zip(&inputs) {
        match blog.create_post(input)? {
            Ok(post) => said.push(format!(
                "{file}: {} {:?} at /{}/post/{} (id {})",
                if post.published {
                    "published"
                } else {
                    "drafted"
                },
                post.title,
                post.lang,
                post.slug,
                post.id
            )),
            Err(refusal) => return Err(Error::bad_request(format!("{file}: {refusal}"))),
        }
    }
    Ok(said.join("\n"))
}

app_api::export_app!(name: "admin", init: build, commands: commands);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
        assert_eq!(image_kind(png), Some(("png", "image/png")));
        assert_eq!(
            image_kind(b"GIF89a\x01\0\x01\0\x80\0\0\xff\xff\xff"),
            Some(("gif", "image/gif"))
        );
        assert_eq!(
            image_kind(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            None
        );
        assert_eq!(image_kind(b"not an image at all"), None);
    }

    #[test]
    fn the_upload_limit_comes_from_the_config() {
        let mut mount = Mount::new("admin", "/admin");
        assert_eq!(max_upload_bytes(&mount).unwrap(), DEFAULT_MAX_UPLOAD_BYTES);
        mount.config = serde_json::json!({ "max_upload_bytes": 1000 });
        assert_eq!(max_upload_bytes(&mount).unwrap(), 1000);
        mount.config = serde_json::json!({ "max_upload_bytes": "big" });
        assert!(
            max_upload_bytes(&mount)
                .unwrap_err()
                .message()
                .contains("max_upload_bytes")
        );
    }
}
