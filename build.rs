// The browser bundle drops the wasm "name" section (function names for stack traces): it is a
// quarter of the gzipped download (1.45 of 6.2 MB), and panics still report message and line.
// MEDSEG_WASM_NAMES=1 keeps it, for profiles (scripts/profile-web.sh).
//
// For the browser it also compiles src/models/gemm_fma.rs, the matrix tile with fused
// multiply-adds, into a module of its own (see that file) that the app's wasm includes.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/models/gemm_fma.rs");
    println!("cargo:rerun-if-env-changed=MEDSEG_WASM_NAMES");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() != Ok("wasm") {
        return;
    }
    if std::env::var_os("MEDSEG_WASM_NAMES").is_none() {
        println!("cargo:rustc-link-arg-bin=medseg-web=--strip-all");
        println!("cargo:rustc-link-arg-bin=medseg-web-gpu=--strip-all");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("gemm_fma.wasm");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition=2024",
            "--crate-type=cdylib",
            "--target=wasm32-unknown-unknown",
            "-Copt-level=3",
            "-Cpanic=abort",
            "-Ctarget-feature=+simd128,+relaxed-simd",
            "-Clink-arg=--import-memory",
            "-Clink-arg=-zstack-size=0",
            "-Cstrip=symbols",
            "-o",
        ])
        .arg(&out)
        .arg("src/models/gemm_fma.rs")
        .status()
        .expect("build.rs: could not run rustc for src/models/gemm_fma.rs");
    assert!(
        status.success(),
        "build.rs: src/models/gemm_fma.rs did not compile"
    );
}
