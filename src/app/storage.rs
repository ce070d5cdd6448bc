//! The browser's own storage (IndexedDB), for what the user asks the page to keep: converted
//! model files, trained weights and autosaved work. Nothing here leaves the machine.

use super::web::js_err;
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

// A file, not inline JS: the app's two builds share the snippets folder, where inline snippets are
// numbered per build.
#[wasm_bindgen(module = "/src/app/storage.js")]
extern "C" {
    fn idb_put(key: &str, bytes: Uint8Array) -> js_sys::Promise;
    fn idb_get(key: &str) -> js_sys::Promise;
    fn idb_delete(key: &str) -> js_sys::Promise;
    fn idb_drop() -> js_sys::Promise;
}

/// Why storing failed, in words a user can act on (quota errors say so).
fn storage_err(v: JsValue) -> String {
    let name = js_sys::Reflect::get(&v, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let m = js_err(v);
    if name == "QuotaExceededError" || m.contains("Quota") || m.contains("quota") {
        format!("the browser's storage is full ({m}); free space or clear this site's data")
    } else {
        format!("the browser refused to store it ({m})")
    }
}

pub async fn put(key: &str, bytes: &[u8]) -> Result<(), String> {
    JsFuture::from(idb_put(key, Uint8Array::from(bytes)))
        .await
        .map(|_| ())
        .map_err(storage_err)
}

/// The stored bytes, or None when nothing is stored under `key` (or storage is unavailable).
pub async fn get(key: &str) -> Option<Vec<u8>> {
    let v = JsFuture::from(idb_get(key)).await.ok()?;
    if v.is_undefined() || v.is_null() {
        return None;
    }
    Some(Uint8Array::new(&v).to_vec())
}

pub async fn delete(key: &str) -> Result<(), String> {
    JsFuture::from(idb_delete(key))
        .await
        .map(|_| ())
        .map_err(storage_err)
}

/// Deletes everything stored here (all keys).
pub async fn clear_all() -> Result<(), String> {
    JsFuture::from(idb_drop())
        .await
        .map(|_| ())
        .map_err(storage_err)
}
