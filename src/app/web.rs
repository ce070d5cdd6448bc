//! Small browser helpers: reading files, fetching our own static files with progress,
//! downloads, yielding to the event loop, WebGPU detection, f32 bulk bytes.

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, File, HtmlAnchorElement, Response, Url};

/// f32 values as little-endian bytes: the bulk of worker messages, stored support sets.
pub fn f32_bytes<'a>(values: impl IntoIterator<Item = &'a f32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The inverse of [`f32_bytes`] (a trailing partial value is ignored).
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn js_err(v: JsValue) -> String {
    v.as_string()
        .or_else(|| {
            v.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{v:?}"))
}

/// Calls `resolve` after `ms` through the global `setTimeout` (the page's or a worker's).
fn timeout(resolve: &js_sys::Function, ms: i32) {
    let global = js_sys::global();
    if let Ok(f) = Reflect::get(&global, &"setTimeout".into()) {
        if let Some(f) = f.dyn_ref::<js_sys::Function>() {
            let _ = f.call2(&global, resolve, &ms.into());
        }
    }
}

/// Lets the browser paint and handle input (or a worker its messages) before heavy
/// synchronous work starts.
pub async fn yield_now() {
    sleep(0).await
}

/// Waits `ms` milliseconds without blocking the page.
pub async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| timeout(&resolve, ms));
    let _ = JsFuture::from(p).await;
}

/// A `blob:` URL for bytes made in the tab (thumbnails); revoke it when done.
pub fn object_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let arr = js_sys::Array::of1(&Uint8Array::from(bytes));
    let opts = BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&arr, &opts).map_err(js_err)?;
    Url::create_object_url_with_blob(&blob).map_err(js_err)
}

pub async fn read_file(file: &File) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(file.array_buffer()).await.map_err(js_err)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// Fetches a same-origin static file, reporting (loaded, total) bytes as it arrives.
pub async fn fetch_bytes(
    path: &str,
    mut progress: impl FnMut(f64, f64),
) -> Result<Vec<u8>, String> {
    let window = web_sys::window().unwrap();
    let resp: Response = JsFuture::from(window.fetch_with_str(path))
        .await
        .map_err(js_err)?
        .unchecked_into();
    if !resp.ok() {
        return Err(format!("{path}: HTTP {}", resp.status()));
    }
    let total: f64 = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let body = resp.body().ok_or("empty response")?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::with_capacity(total as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(js_err)?;
        if Reflect::get(&chunk, &"done".into())
            .map_err(js_err)?
            .as_bool()
            == Some(true)
        {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(js_err)?;
        out.extend(Uint8Array::new(&value).to_vec());
        progress(out.len() as f64, total);
    }
    Ok(out)
}

/// Offers bytes to the user as a file download (nothing leaves the machine).
pub fn download(name: &str, mime: &str, bytes: &[u8]) -> Result<(), String> {
    let arr = js_sys::Array::of1(&Uint8Array::from(bytes));
    let opts = BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&arr, &opts).map_err(js_err)?;
    let url = Url::create_object_url_with_blob(&blob).map_err(js_err)?;
    let doc = web_sys::window().unwrap().document().unwrap();
    let a: HtmlAnchorElement = doc.create_element("a").map_err(js_err)?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = Url::revoke_object_url(&url);
    Ok(())
}

/// What WebGPU the browser offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WebGpu {
    None,
    /// A fallback adapter (Chromium's SwiftShader): WebGPU emulated on the CPU, where our own
    /// CPU path is ~35× faster (BENCHMARKS.md).
    Software,
    Hardware,
}

/// Asks `navigator.gpu` for an adapter and whether it is a fallback one (`adapter.info.
/// isFallbackAdapter`, or the older `adapter.isFallbackAdapter`).
pub async fn webgpu_adapter() -> WebGpu {
    let nav = web_sys::window().unwrap().navigator();
    let gpu = Reflect::get(&nav, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return WebGpu::None;
    }
    let Ok(req) = Reflect::get(&gpu, &"requestAdapter".into()) else {
        return WebGpu::None;
    };
    let Ok(f) = req.dyn_into::<js_sys::Function>() else {
        return WebGpu::None;
    };
    let Ok(p) = f.call0(&gpu) else {
        return WebGpu::None;
    };
    let adapter = match JsFuture::from(Promise::from(p)).await {
        Ok(a) if !a.is_null() && !a.is_undefined() => a,
        _ => return WebGpu::None,
    };
    let flag = |o: &JsValue| Reflect::get(o, &"isFallbackAdapter".into()).ok()?.as_bool();
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let fallback = (info.is_object().then(|| flag(&info)).flatten())
        .or_else(|| flag(&adapter))
        .unwrap_or(false);
    if fallback {
        WebGpu::Software
    } else {
        WebGpu::Hardware
    }
}

/// A parameter of the page's address: `?backend=webgpu` uses WebGPU even when it is
/// software-emulated, `cpu` never uses it; `?encoders=N` caps the encoder workers (benchmarks; 0: the page encodes itself).
pub fn page_param(name: &str) -> Option<String> {
    // Through Reflect: web-sys's Location/UrlSearchParams features would rebuild wgpu and leptos.
    let location = Reflect::get(&web_sys::window()?.into(), &"location".into()).ok()?;
    let search = Reflect::get(&location, &"search".into())
        .ok()?
        .as_string()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.to_ascii_lowercase())
}
