//! Mount-table parsing: never panics; an accepted table has unique,
//! normalised prefixes and names.
#![no_main]

use std::{collections::HashSet, path::Path};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match host::table::parse(text, Path::new("plugins.json")) {
        Ok(table) => {
            let mut prefixes = HashSet::new();
            let mut names = HashSet::new();
            for mount in &table.mounts {
                assert!(mount.prefix.is_empty() || mount.prefix.starts_with('/'));
                assert!(!mount.prefix.ends_with('/'));
                assert!(prefixes.insert(mount.prefix.clone()), "duplicate prefix");
                assert!(names.insert(mount.name.clone()), "duplicate name");
            }
        }
        Err(error) => {
            // every error names the file
            assert!(error.to_string().starts_with("plugins.json"), "{error}");
        }
    }
});
