// Entry point of the browser app (built by trunk for wasm32), its CPU-only build; the WebGPU
// build (`medseg-web-gpu.rs`) includes this file. (Plain comments: an included file cannot
// carry inner doc attributes.)

/// Runs when the wasm loads, on the page and in its workers.
#[cfg(target_family = "wasm")]
fn main() {
    use_simd();
    medseg::app::start();
}

/// gemm (burn-flex's matrix products on the CPU path) has wasm SIMD kernels, compiled in since
/// the build targets simd128 (.cargo/config.toml) but off unless switched on (BENCHMARKS.md).
#[cfg(target_family = "wasm")]
fn use_simd() {
    gemm_common::set_wasm_simd128(true);
}

/// Called by `static/worker.js` once this wasm is loaded in the GenSeg training worker.
#[cfg(target_family = "wasm")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn genseg_worker() {
    medseg::app::genseg_worker::serve();
}

/// Called by `static/worker.js` once this wasm is loaded in the image encoder's worker.
#[cfg(target_family = "wasm")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn encode_worker() {
    medseg::app::encoder::serve();
}

#[cfg(not(target_family = "wasm"))]
fn main() {
    eprintln!("medseg-web is the browser app: build it with `trunk build` (see README)");
}
