//! A shared library with one C function and no app root module.
// `no_mangle` is what makes it a plain C library; there is no unsafe code.
#![allow(unsafe_code)]

/// Something to export, so the library is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn plain_cdylib_answer() -> i32 {
    42
}
