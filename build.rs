//! Passes the target triple to the code, for `--version`: which build this is (musl static,
//! glibc, aarch64) matters in a bug report, and only a build script can see it.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=GWSHIM_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
