//! Entry point of the browser app (built by trunk for wasm32).

#[cfg(target_family = "wasm")]
fn main() {
    medseg::app::start();
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
