//! The prefix dispatcher with path normalisation: never panics, and every
//! path it hands to an app is normalised and below the mount.
#![no_main]

use host::mounts::dispatch::{MountPrefix, PrefixTable, Route, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    let table = PrefixTable::new([
        MountPrefix {
            prefix: "",
            static_url_path: Some("/static"),
            uploads_url_path: Some("/uploads"),
        },
        MountPrefix {
            prefix: "/admin",
            static_url_path: Some("/static"),
            uploads_url_path: Some("/uploads"),
        },
        MountPrefix {
            prefix: "/admin/reports",
            static_url_path: None,
            uploads_url_path: None,
        },
    ]);
    match route(&table, path, query) {
        Route::App { path, .. } => {
            assert!(path.starts_with('/'), "{path:?}");
            assert!(
                !path
                    .split('/')
                    .any(|segment| segment == ".." || segment == "."),
                "{path:?}"
            );
            assert!(!path.contains('\0'));
        }
        Route::Static { file, .. } => {
            assert!(!file.split('/').any(|segment| segment == ".."), "{file:?}");
            assert!(!file.contains('\0'));
        }
        Route::Redirect(location) => {
            assert!(location.starts_with('/'), "{location:?}");
            assert!(
                location.ends_with('/') || location.contains("/?"),
                "{location:?}"
            );
        }
        Route::NotFound | Route::BadRequest(_) => {}
    }
});
