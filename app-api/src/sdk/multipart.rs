//! `multipart/form-data` bodies (Flask's `request.files` and
//! `request.form` for uploads), parsed with `multer`.

use std::{convert::Infallible, sync::Arc};

use super::{Error, Form, Request};

/// A file field of a multipart form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field's name.
    pub field: String,
    /// The file name the browser sent (not to be trusted for anything but
    /// display).
    pub file_name: String,
    /// The content type the browser claimed (not to be trusted either).
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A parsed multipart form: its text fields and its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Multipart {
    /// The text fields, in order.
    pub form: Form,
    /// The files, in order.
    pub files: Vec<UploadedFile>,
}

impl Multipart {
    /// The first file sent in `field` with a non-empty file name.
    pub fn file(&self, field: &str) -> Option<&UploadedFile> {
        self.files
            .iter()
            .find(|file| file.field == field && !file.file_name.is_empty())
    }
}

impl Request<'_> {
    /// The `multipart/form-data` body; `400` when the body is not one or is
    /// malformed. (The host has already applied the mount's body limit.)
    /// Parsed once per request: a hook that reads a field (the CSRF check)
    /// and the handler share it.
    pub fn multipart(&self) -> Result<Arc<Multipart>, Error> {
        self.parsed_multipart()
            .get_or_init(|| self.parse_multipart().map(Arc::new))
            .clone()
    }

    fn parse_multipart(&self) -> Result<Multipart, Error> {
        let content_type = self
            .header("content-type")
            .ok_or_else(|| Error::bad_request("expected a multipart/form-data body"))?;
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            Error::bad_request("expected a multipart/form-data body with a boundary")
        })?;
        let body = bytes::Bytes::copy_from_slice(self.body());
        let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let malformed =
            |error: multer::Error| Error::bad_request(format!("malformed multipart body: {error}"));
        // The whole body is already in memory, so no future here ever waits
        // on I/O: a minimal executor runs the parser to completion.
        futures_executor::block_on(async {
            let mut parsed = Multipart::default();
            let mut pairs = Vec::new();
            while let Some(field) = multipart.next_field().await.map_err(malformed)? {
                let name = field.name().unwrap_or_default().to_owned();
                match field.file_name().map(str::to_owned) {
                    Some(file_name) => {
                        let content_type = field.content_type().map(ToString::to_string);
                        let data = field.bytes().await.map_err(malformed)?.to_vec();
                        parsed.files.push(UploadedFile {
                            field: name,
                            file_name,
                            content_type,
                            data,
                        });
                    }
                    None => pairs.push((name, field.text().await.map_err(malformed)?)),
                }
            }
            parsed.form = Form::from_pairs(pairs);
            Ok(parsed)
        })
    }
}
