// The browser bundle drops the wasm "name" section (function names for stack traces): it is a
// quarter of the gzipped download (1.45 of 6.2 MB), and panics still report message and line.
// MEDSEG_WASM_NAMES=1 keeps it, for profiles (scripts/profile-web.sh).
//
// For the browser it also compiles src/models/gemm_fma.rs, the matrix tile with fused
// multiply-adds, into modules of their own (see that file) that the app's wasm includes.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/models/gemm_fma.rs");
    println!("cargo:rerun-if-changed=src/models/gemm_core.rs");
    println!("cargo:rerun-if-changed=src/models/depthwise.rs");
    println!("cargo:rerun-if-env-changed=MEDSEG_WASM_NAMES");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() != Ok("wasm") {
        return;
    }
    if std::env::var_os("MEDSEG_WASM_NAMES").is_none() {
        println!("cargo:rustc-link-arg-bin=medseg-web=--strip-all");
        println!("cargo:rustc-link-arg-bin=medseg-web-gpu=--strip-all");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // The tile alone, on the app's memory; and the helper threads' module (gemm_pool.js): the
    // whole product (gemm_core.rs) on a shared memory of its own, which the app's wasm cannot
    // have (its std is not built with atomics; nothing in this module needs them, hence the
    // linker's feature check is off), with its stack pointer exported so that each helper gets
    // a stack of its own.
    let pool = [
        "--cfg=medseg_pool",
        "-Clink-arg=--shared-memory",
        "-Clink-arg=--max-memory=4294967296",
        "-Clink-arg=--no-check-features",
        "-Clink-arg=--export=__stack_pointer",
        "-Clink-arg=--export=__heap_base",
    ];
    for (name, extra) in [("gemm_fma.wasm", &[][..]), ("gemm_pool.wasm", &pool[..])] {
        let status = Command::new(&rustc)
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
            ])
            .args(extra)
            .arg("-o")
            .arg(out.join(name))
            .arg("src/models/gemm_fma.rs")
            .status()
            .expect("build.rs: could not run rustc for src/models/gemm_fma.rs");
        assert!(
            status.success(),
            "build.rs: src/models/gemm_fma.rs did not compile ({name})"
        );
    }
}
