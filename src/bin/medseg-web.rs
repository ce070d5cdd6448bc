//! Entry point of the browser app (built by trunk for wasm32).

#[cfg(target_family = "wasm")]
fn main() {
    medseg::app::start();
}

#[cfg(not(target_family = "wasm"))]
fn main() {
    eprintln!("medseg-web is the browser app: build it with `trunk build` (see README)");
}
