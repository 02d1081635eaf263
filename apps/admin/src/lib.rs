//! The blog's admin, mounted at `/admin`: everything but the login page
//! needs a logged-in user. Write, edit, publish and delete posts; upload
//! images and attach them to posts in order. Shares the model, templates,
//! login and pages with `frontend` through the `shared` crate.

use std::sync::Arc;

use app_api::{
    prelude::*,
    sdk::{Commands, Form, HandlerResult, Session},
};
use minijinja::{Value, context};
use shared::{
    Site,
    auth::login_required,
    model::{Image, Post, PostInput, Refusal, User},
    templates::flash,
};

/// The upload size limit when the mount's config does not set
/// `max_upload_bytes`.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_base.html",
        include_str!("../templates/admin_base.html"),
    ),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    ("edit.html", include_str!("../templates/edit.html")),
    ("images.html", include_str!("../templates/images.html")),
];

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

type AdminHandler = fn(&Admin, &Request, Session, User) -> HandlerResult;

/// Builds the app's routes for one mount.
pub fn build(mount: &Mount) -> Result<Router, Error> {
    let site = Site::open(mount, TEMPLATES)?;
    let admin = Arc::new(Admin {
        site: Arc::clone(&site),
        max_upload_bytes: max_upload_bytes(mount)?,
    });
    let guarded = |handler: AdminHandler| {
        let admin = Arc::clone(&admin);
        login_required(&site, move |req, session, user| {
            handler(&admin, req, session, user)
        })
    };
    let router = Router::new()
        .get("/", "index", guarded(dashboard))
        .get("/posts/new", "new_post", guarded(new_post))
        .post("/posts/new", "create_post", guarded(create_post))
        .get("/posts/<int:id>/edit", "edit_post", guarded(edit_post))
        .post("/posts/<int:id>/edit", "update_post", guarded(update_post))
        .post(
            "/posts/<int:id>/publish",
            "publish_post",
            guarded(publish_post),
        )
        .post(
            "/posts/<int:id>/delete",
            "delete_post",
            guarded(delete_post),
        )
        .post(
            "/posts/<int:id>/images",
            "attach_image",
            guarded(attach_image),
        )
        .post(
            "/posts/<int:id>/images/<int:image_id>/detach",
            "detach_image",
            guarded(detach_image),
        )
        .post(
            "/posts/<int:id>/images/<int:image_id>/move",
            "move_image",
            guarded(move_image),
        )
        .get("/images", "images", guarded(images))
        .post("/images", "upload_image", guarded(upload_image))
        .post(
            "/images/<int:id>/delete",
            "delete_image",
            guarded(delete_image),
        );
    let router = shared::auth::register(router, &site);
    Ok(shared::pages::register(router, &site))
}

/// The form of a POST, after its CSRF token was checked.
fn checked_form(req: &Request, session: &Session) -> Result<Form, Error> {
    let form = req.form();
    session.verify_csrf(form.get("csrf_token"))?;
    Ok(form)
}

/// An `<int:...>` parameter.
fn id(req: &Request, name: &str) -> Result<i64, Error> {
    req.param(name)
        .and_then(|value| value.parse().ok())
        .ok_or_else(Error::not_found)
}

fn no_such_post() -> Error {
    Error::new(404, "There is no such post.")
}

fn post_or_404(admin: &Admin, id: i64) -> Result<Post, Error> {
    admin.site.blog.post(id)?.ok_or_else(no_such_post)
}

/// `303 See Other` back to a post's editor, saving the session.
fn to_editor(req: &Request, session: &Session, post_id: i64) -> HandlerResult {
    see_other(req, session, "edit_post", &[("id", &post_id.to_string())])
}

/// `303 See Other` to an endpoint, saving the session.
fn see_other(
    req: &Request,
    session: &Session,
    endpoint: &str,
    params: &[(&str, &str)],
) -> HandlerResult {
    Ok(Response::redirect_with(303, &req.url_for(endpoint, params)?).with_session(req, session))
}

fn dashboard(admin: &Admin, req: &Request, mut session: Session, _user: User) -> HandlerResult {
    let posts = admin.site.blog.all_posts()?;
    admin.site.templates.form_page(
        req,
        &mut session,
        "dashboard.html",
        context! { posts => posts },
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
    }
}

/// The editor page: for a new post (`post` is `None`) or an existing one,
/// showing `input` and `error` after a refused change.
fn editor(
    admin: &Admin,
    req: &Request,
    session: &mut Session,
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
    Ok(admin
        .site
        .templates
        .form_page(req, session, "edit.html", page)?
        .with_status(status))
}

fn new_post(admin: &Admin, req: &Request, mut session: Session, _user: User) -> HandlerResult {
    editor(admin, req, &mut session, None, &PostInput::default(), None)
}

fn create_post(admin: &Admin, req: &Request, mut session: Session, user: User) -> HandlerResult {
    let input = input(&checked_form(req, &session)?);
    match admin.site.blog.create_post(&input)? {
        Ok(post) => {
            tracing::info!(user = %user.username, slug = %post.slug, "created post {}", post.id);
            flash(
                &mut session,
                &format!("Created \u{201c}{}\u{201d}.", post.title),
            );
            to_editor(req, &session, post.id)
        }
        Err(refusal) => editor(admin, req, &mut session, None, &input, Some(&refusal)),
    }
}

fn edit_post(admin: &Admin, req: &Request, mut session: Session, _user: User) -> HandlerResult {
    let post = post_or_404(admin, id(req, "id")?)?;
    editor(
        admin,
        req,
        &mut session,
        Some(&post),
        &PostInput::from(&post),
        None,
    )
}

fn update_post(admin: &Admin, req: &Request, mut session: Session, user: User) -> HandlerResult {
    let form = checked_form(req, &session)?;
    let post = post_or_404(admin, id(req, "id")?)?;
    let input = input(&form);
    match admin.site.blog.update_post(post.id, &input)? {
        Ok(Some(post)) => {
            tracing::info!(user = %user.username, slug = %post.slug, "saved post {}", post.id);
            flash(
                &mut session,
                &format!("Saved \u{201c}{}\u{201d}.", post.title),
            );
            to_editor(req, &session, post.id)
        }
        Ok(None) => Err(no_such_post()),
        Err(refusal) => editor(
            admin,
            req,
            &mut session,
            Some(&post),
            &input,
            Some(&refusal),
        ),
    }
}

fn publish_post(admin: &Admin, req: &Request, mut session: Session, user: User) -> HandlerResult {
    let form = checked_form(req, &session)?;
    let post = post_or_404(admin, id(req, "id")?)?;
    let published = form.get("published") == Some("1");
    admin.site.blog.set_published(post.id, published)?;
    tracing::info!(user = %user.username, slug = %post.slug, published, "changed post {}", post.id);
    let what = if published {
        "Published"
    } else {
        "Unpublished"
    };
    flash(
        &mut session,
        &format!("{what} \u{201c}{}\u{201d}.", post.title),
    );
    see_other(req, &session, "index", &[])
}

fn delete_post(admin: &Admin, req: &Request, mut session: Session, user: User) -> HandlerResult {
    checked_form(req, &session)?;
    let post = post_or_404(admin, id(req, "id")?)?;
    admin.site.blog.delete_post(post.id)?;
    tracing::info!(user = %user.username, slug = %post.slug, "deleted post {}", post.id);
    flash(
        &mut session,
        &format!("Deleted \u{201c}{}\u{201d}.", post.title),
    );
    see_other(req, &session, "index", &[])
}

fn attach_image(admin: &Admin, req: &Request, mut session: Session, _user: User) -> HandlerResult {
    let form = checked_form(req, &session)?;
    let post = post_or_404(admin, id(req, "id")?)?;
    let image_id: i64 = form
        .get("image_id")
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| Error::bad_request("Choose an image to attach."))?;
    if !admin.site.blog.attach(post.id, image_id)? {
        return Err(Error::new(404, "There is no such image."));
    }
    flash(&mut session, "Attached the image.");
    to_editor(req, &session, post.id)
}

fn detach_image(admin: &Admin, req: &Request, mut session: Session, _user: User) -> HandlerResult {
    checked_form(req, &session)?;
    let post = post_or_404(admin, id(req, "id")?)?;
    if !admin.site.blog.detach(post.id, id(req, "image_id")?)? {
        return Err(Error::new(404, "That image is not attached to this post."));
    }
    flash(&mut session, "Detached the image.");
    to_editor(req, &session, post.id)
}

fn move_image(admin: &Admin, req: &Request, session: Session, _user: User) -> HandlerResult {
    let form = checked_form(req, &session)?;
    let post = post_or_404(admin, id(req, "id")?)?;
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
        .move_image(post.id, id(req, "image_id")?, earlier)?;
    to_editor(req, &session, post.id)
}

fn images(admin: &Admin, req: &Request, mut session: Session, _user: User) -> HandlerResult {
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
    admin
        .site
        .templates
        .form_page(req, &mut session, "images.html", page)
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

fn upload_image(admin: &Admin, req: &Request, mut session: Session, user: User) -> HandlerResult {
    let multipart = req.multipart()?;
    let form = &multipart.form;
    session.verify_csrf(form.get("csrf_token"))?;
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
        flash(&mut session, "Uploaded and attached the image.");
        return to_editor(req, &session, post.id);
    }
    flash(&mut session, "Uploaded the image.");
    see_other(req, &session, "images", &[])
}

fn delete_image(admin: &Admin, req: &Request, mut session: Session, user: User) -> HandlerResult {
    checked_form(req, &session)?;
    match admin.site.blog.delete_image(id(req, "id")?)? {
        Ok(Some(image)) => {
            req.mount().delete_upload(&image.file_name)?;
            tracing::info!(user = %user.username, file = %image.file_name, "deleted an image");
            flash(&mut session, "Deleted the image.");
            see_other(req, &session, "images", &[])
        }
        Ok(None) => Err(Error::new(404, "There is no such image.")),
        Err(refusal) => Err(Error::new(409, refusal.to_string())),
    }
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
            "[--draft] FILE.md...",
            "Adds a post from each markdown file, titled by its first line (`# Title`); published unless --draft",
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
    let draft = args.iter().any(|arg| arg == "--draft");
    let files: Vec<&String> = args.iter().filter(|arg| *arg != "--draft").collect();
    if files.is_empty() {
        return Err(Error::bad_request(
            "usage: import-post [--draft] FILE.md...",
        ));
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
            slug: String::new(),
            body: body.to_owned(),
            published: !draft,
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
                "{file}: {} {:?} at /post/{} (id {})",
                if post.published {
                    "published"
                } else {
                    "drafted"
                },
                post.title,
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
