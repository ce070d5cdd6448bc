//! What the app's module workers share: `static/worker.js` loads this same wasm in the worker
//! and calls the entry point the page names (`genseg_worker`, `encode_worker`). Both sides talk
//! in serde messages; bulk bytes (pairs, weights, embeddings) travel beside them.

use super::web::js_err;
use js_sys::{Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, Worker, WorkerOptions, WorkerType};

const SCRIPT: &str = "worker.js";

/// A message with its bulk bytes (if any) under `bulk`.
pub fn message<T: Serialize>(msg: &T, bulk: Option<&[u8]>) -> Result<JsValue, String> {
    let v = serde_wasm_bindgen::to_value(msg).map_err(|e| e.to_string())?;
    if let Some(b) = bulk {
        Reflect::set(&v, &"bulk".into(), &Uint8Array::from(b)).map_err(js_err)?;
    }
    Ok(v)
}

/// The message and its bulk bytes (empty when none).
pub fn read<T: for<'de> Deserialize<'de>>(data: &JsValue) -> Result<(T, Vec<u8>), String> {
    let msg = serde_wasm_bindgen::from_value(data.clone()).map_err(|e| e.to_string())?;
    let bulk = Reflect::get(data, &"bulk".into())
        .ok()
        .and_then(|b| b.dyn_into::<Uint8Array>().ok())
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Ok((msg, bulk))
}

/// Inside a worker: sends `msg` to the page.
pub fn reply<T: Serialize>(msg: &T, bulk: Option<&[u8]>) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    match message(msg, bulk) {
        Ok(v) => {
            let _ = scope.post_message(&v);
        }
        Err(e) => web_sys::console::error_1(&e.into()),
    }
}

/// Inside a worker: the handler of the page's messages, for the worker's lifetime.
pub fn listen(on_message: impl FnMut(web_sys::MessageEvent) + 'static) {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(on_message);
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
}

/// The app's own script and wasm: the build `static/boot.js` loaded into the page.
fn app_files() -> Result<(String, String), String> {
    let app = Reflect::get(&js_sys::global(), &"__medsegApp".into()).map_err(js_err)?;
    let file = |k: &str| {
        Reflect::get(&app, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .ok_or_else(|| format!("the page did not say which build it loaded ({k})"))
    };
    Ok((file("js")?, file("wasm")?))
}

/// On the page: starts a worker that loads the app and calls `entry`. The caller sets its
/// handlers before returning to the event loop, so no message is missed; the worker says it is
/// ready itself before it can take requests.
pub fn spawn(entry: &str) -> Result<Worker, String> {
    let (js, wasm) = app_files()?;
    let opts = WorkerOptions::new();
    opts.set_type(WorkerType::Module);
    let worker = Worker::new_with_options(SCRIPT, &opts).map_err(js_err)?;
    let init = js_sys::Object::new();
    for (k, v) in [
        ("js", js.as_str()),
        ("wasm", wasm.as_str()),
        ("entry", entry),
    ] {
        Reflect::set(&init, &k.into(), &v.into()).map_err(js_err)?;
    }
    worker.post_message(&init).map_err(js_err)?;
    Ok(worker)
}
