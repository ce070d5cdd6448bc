// The browser bundle drops the wasm "name" section (function names for stack traces): it is a
// quarter of the gzipped download (1.45 of 6.2 MB), and panics still report message and line.
// MEDSEG_WASM_NAMES=1 keeps it, for profiles (scripts/profile-web.sh).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MEDSEG_WASM_NAMES");
    let keep_names = std::env::var_os("MEDSEG_WASM_NAMES").is_some();
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() == Ok("wasm") && !keep_names {
        println!("cargo:rustc-link-arg-bin=medseg-web=--strip-all");
        println!("cargo:rustc-link-arg-bin=medseg-web-gpu=--strip-all");
    }
}
