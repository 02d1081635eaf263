//! abi_stable records the name of the package that defines each type in the
//! type's layout, and refuses to load a library whose types come from a
//! package of another name. The contract's types were published in package
//! `app-api` (1.0.0); this crate keeps presenting them under that name, so
//! apps built against 1.0.0 keep loading (docs/compatibility.md).
fn main() {
    println!("cargo::rustc-env=CARGO_PKG_NAME=app-api");
}
