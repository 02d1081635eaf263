//! Pages every app of the blog shows, from the same code.

use app_api::prelude::*;

/// The greeting of the original Flask setup, byte for byte:
/// `'Hello ' + app_name + '! request.url = ' + request.url`.
pub fn hello(req: &Request) -> Result<Response, Error> {
    Ok(Response::text(format!(
        "Hello {}! request.url = {}",
        req.app_name(),
        req.url()
    )))
}
