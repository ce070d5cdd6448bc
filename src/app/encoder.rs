//! Image encoding off the page's thread. On the CPU path an encode takes seconds of pure wasm
//! compute, which would freeze the page (clicks, scrolling, the progress bar) for as long; so a
//! worker running this same wasm holds its own copy of the model and computes embeddings, and
//! the page moves them (4 MB for LiteMedSAM) onto its device for the decoder. With WebGPU the
//! page's thread only queues GPU work, so the page's device encodes and no worker is started.
//! If the worker cannot start or dies, the page encodes itself, as before.

use super::web::{f32_bytes, f32s, js_err};
use super::worker::{listen, message, read, reply, spawn};
use crate::error::{Error, Result};
use crate::imaging::GrayImage;
use crate::imaging::decode::Planes;
use crate::pipeline::medsam::{ImageEmbedding, MedSam};
use burn::tensor::Device;
use js_sys::{Function, Promise};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// What the page asks of the worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ToEncoder {
    /// Bulk: our model file.
    Load { id: u32 },
    /// Bulk: the image's planes (`planes` × width × height u8, row-major).
    Embed {
        id: u32,
        width: usize,
        height: usize,
        planes: usize,
    },
}

/// What the worker tells the page.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FromEncoder {
    Ready,
    Loaded {
        id: u32,
    },
    /// Bulk: the embedding as f32 little-endian.
    Embedded {
        id: u32,
        shape: [usize; 4],
        resized: (usize, usize),
    },
    /// `id` None: the worker itself failed (it could not start, a request was unreadable).
    Failed {
        id: Option<u32>,
        message: String,
    },
}

const LOAD: u32 = 0;

// ---- the worker's side ----

thread_local! {
    static MODEL: RefCell<Option<MedSam>> = const { RefCell::new(None) };
}

/// Entry point inside the worker: loads the model, then embeds what the page sends.
pub fn serve() {
    listen(|e: MessageEvent| match read::<ToEncoder>(&e.data()) {
        Ok((ToEncoder::Load { id }, bulk)) => match MedSam::from_model_file(&bulk, &Device::flex())
        {
            Ok(m) => {
                MODEL.set(Some(m));
                reply(&FromEncoder::Loaded { id }, None);
            }
            Err(e) => failed(Some(id), e.to_string()),
        },
        Ok((
            ToEncoder::Embed {
                id,
                width,
                height,
                planes,
            },
            bulk,
        )) => wasm_bindgen_futures::spawn_local(async move {
            match embed_here(width, height, planes, bulk).await {
                Ok((shape, resized, values)) => {
                    let bytes = f32_bytes(&values);
                    reply(&FromEncoder::Embedded { id, shape, resized }, Some(&bytes));
                }
                Err(e) => failed(Some(id), e.to_string()),
            }
        }),
        Err(e) => failed(None, format!("unreadable request: {e}")),
    });
    reply(&FromEncoder::Ready, None);
}

fn failed(id: Option<u32>, message: String) {
    reply(&FromEncoder::Failed { id, message }, None);
}

async fn embed_here(
    width: usize,
    height: usize,
    planes: usize,
    bulk: Vec<u8>,
) -> Result<([usize; 4], (usize, usize), Vec<f32>)> {
    let n = width * height;
    if planes == 0 || n == 0 || bulk.len() != planes * n {
        return Err(Error::Input(format!(
            "{} bytes for {planes} planes of {width}×{height}",
            bulk.len()
        )));
    }
    let img = Planes {
        planes: bulk
            .chunks_exact(n)
            .map(|p| GrayImage::new(width, height, p.to_vec()))
            .collect(),
    };
    let Some(model) = MODEL.with_borrow(|m| m.clone()) else {
        return Err(Error::Input("the encoder has no model yet".into()));
    };
    let emb = model.embed(&img)?;
    let shape = emb.tensor.dims();
    let values = crate::weights::to_host_async(emb.tensor).await?;
    Ok((shape, emb.resized, values))
}

// ---- the page's side ----

/// The running worker and the requests waiting for its answer.
struct Encoder {
    worker: Worker,
    /// Answers by request id: each resolves the promise its request awaits.
    pending: HashMap<u32, Function>,
    next_id: u32,
    /// Resolves with the answer to `Load` (or the failure that came instead).
    loaded: Promise,
    /// The model bytes, sent once the worker says it is ready.
    load: Option<JsValue>,
    /// Why the worker is unusable (the page then encodes itself).
    broken: Option<String>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

thread_local! {
    static ENCODER: RefCell<Option<Encoder>> = const { RefCell::new(None) };
}

/// Starts the worker with our model file (`bytes`); any earlier one is stopped. On failure the
/// page keeps encoding itself and the reason is returned (for the console, not the user: the
/// app works either way).
pub fn start(bytes: &[u8]) -> std::result::Result<(), String> {
    stop();
    let load = message(&ToEncoder::Load { id: LOAD }, Some(bytes))?;
    let worker = spawn("encode_worker")?;
    let mut resolve_load = None;
    let loaded = Promise::new(&mut |resolve, _| resolve_load = Some(resolve));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| {
        on_answer(e.data());
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(|e: ErrorEvent| {
        e.prevent_default();
        let msg = FromEncoder::Failed {
            id: None,
            message: format!("the encoder worker failed: {}", e.message()),
        };
        if let Ok(v) = message(&msg, None) {
            on_answer(v);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let mut pending = HashMap::new();
    pending.insert(LOAD, resolve_load.expect("Promise::new calls back at once"));
    ENCODER.set(Some(Encoder {
        worker,
        pending,
        next_id: LOAD + 1,
        loaded,
        load: Some(load),
        broken: None,
        _on_message: on_message,
        _on_error: on_error,
    }));
    Ok(())
}

/// Ends the worker, if any (its memory goes with it).
pub fn stop() {
    if let Some(e) = ENCODER.take() {
        e.worker.terminate();
        // The handlers may be on the stack (a failure seen in them): drop them later.
        wasm_bindgen_futures::spawn_local(async move { drop(e) });
    }
}

/// Routes one message of the worker to whoever waits for it.
fn on_answer(data: JsValue) {
    let answer = read::<FromEncoder>(&data).map(|(m, _)| m);
    let resolve: Vec<Function> = ENCODER.with_borrow_mut(|enc| {
        let Some(enc) = enc.as_mut() else {
            return vec![];
        };
        match answer {
            Ok(FromEncoder::Ready) => {
                if let Some(load) = enc.load.take()
                    && let Err(e) = enc.worker.post_message(&load)
                {
                    enc.broken = Some(js_err(e));
                    return enc.pending.drain().map(|(_, f)| f).collect();
                }
                vec![]
            }
            Ok(
                FromEncoder::Loaded { id }
                | FromEncoder::Embedded { id, .. }
                | FromEncoder::Failed { id: Some(id), .. },
            ) => enc.pending.remove(&id).into_iter().collect(),
            Ok(FromEncoder::Failed { id: None, message }) => {
                enc.broken = Some(message);
                enc.pending.drain().map(|(_, f)| f).collect()
            }
            Err(e) => {
                enc.broken = Some(e);
                enc.pending.drain().map(|(_, f)| f).collect()
            }
        }
    });
    for f in resolve {
        let _ = f.call1(&JsValue::NULL, &data);
    }
}

/// Sends a request and waits for its answer.
async fn ask(msg: impl FnOnce(u32) -> ToEncoder, bulk: &[u8]) -> Option<(FromEncoder, Vec<u8>)> {
    let promise = ENCODER.with_borrow_mut(|enc| {
        let enc = enc.as_mut().filter(|e| e.broken.is_none())?;
        let id = enc.next_id;
        enc.next_id += 1;
        let data = message(&msg(id), Some(bulk)).ok()?;
        let mut resolve = None;
        let promise = Promise::new(&mut |r, _| resolve = Some(r));
        enc.pending
            .insert(id, resolve.expect("Promise::new calls back at once"));
        if let Err(e) = enc.worker.post_message(&data) {
            enc.broken = Some(js_err(e));
            enc.pending.remove(&id);
            return None;
        }
        Some(promise)
    })?;
    let data = JsFuture::from(promise).await.ok()?;
    read::<FromEncoder>(&data).ok()
}

/// Whether the worker has the model (waiting for it to load); false where the page must encode.
async fn worker_ready() -> bool {
    let Some(loaded) = ENCODER.with_borrow(|e| {
        e.as_ref()
            .filter(|e| e.broken.is_none())
            .map(|e| e.loaded.clone())
    }) else {
        return false;
    };
    let answer = JsFuture::from(loaded)
        .await
        .ok()
        .and_then(|d| read::<FromEncoder>(&d).ok());
    if let Some((FromEncoder::Loaded { .. }, _)) = answer {
        return true;
    }
    let why = match answer {
        Some((FromEncoder::Failed { message, .. }, _)) => message,
        _ => "no answer".into(),
    };
    ENCODER.with_borrow_mut(|e| {
        if let Some(e) = e.as_mut() {
            e.broken.get_or_insert(why.clone());
        }
    });
    web_sys::console::warn_1(&format!("encoding on the page: {why}").into());
    false
}

/// `img`'s embedding for `model` (whose device receives it): from the worker when it runs, else
/// computed here.
pub async fn embed(model: &MedSam, img: &Planes) -> Result<ImageEmbedding> {
    if worker_ready().await {
        let bulk: Vec<u8> = img
            .planes
            .iter()
            .flat_map(|p| p.data.iter().copied())
            .collect();
        let request = |id| ToEncoder::Embed {
            id,
            width: img.width(),
            height: img.height(),
            planes: img.planes.len(),
        };
        match ask(request, &bulk).await {
            Some((FromEncoder::Embedded { shape, resized, .. }, bytes)) => {
                return model.embedding_from_host(
                    f32s(&bytes),
                    shape,
                    (img.width(), img.height()),
                    resized,
                );
            }
            Some((
                FromEncoder::Failed {
                    id: Some(_),
                    message,
                },
                _,
            )) => {
                return Err(Error::Device(message));
            }
            // The worker died on the way: the page takes over.
            _ => {}
        }
    }
    model.embed(img)
}
