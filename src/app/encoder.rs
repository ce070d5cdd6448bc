//! Image encoding off the page's thread. On the CPU path an encode takes seconds of pure wasm
//! compute, which would freeze the page (clicks, scrolling, the progress bar) for as long; so a
//! worker running this same wasm holds its own copy of the model and computes embeddings, and
//! the page moves them (4 MB for LiteMedSAM) onto its device for the decoder. With WebGPU the
//! page's thread only queues GPU work, so the page's device encodes and no worker is started.
//! If the worker cannot start or dies, the page encodes itself, as before.
//!
//! A 3D propagation encodes slice after slice, while the decoder needs only the page's thread
//! briefly: when a volume opens the pool [`widen`]s to a few workers (one per core, at most
//! [`MAX_WORKERS`], each with its own model copy), and a propagation has the slices next in its
//! walk encoded ahead, in parallel.

use super::web::{f32_bytes, f32s, js_err};
use super::worker::{listen, message, read, reply, spawn};
use crate::error::{Error, Result};
use crate::imaging::GrayImage;
use crate::imaging::decode::Planes;
use crate::models::gemm;
use crate::pipeline::medsam::{ImageEmbedding, MedSam};
use burn::tensor::Device;
use js_sys::{Function, Promise};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// What the page asks of the worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ToEncoder {
    /// Bulk: our model file. `helpers`: helper threads to start for the matrix products, so that
    /// they are ready by the first encode (each `Embed` says how many it may use).
    Load { id: u32, helpers: usize },
    /// Bulk: the image's planes (`planes` × width × height u8, row-major). `helpers`: threads
    /// the worker's matrix products may add (`models::gemm::set_helpers`).
    Embed {
        id: u32,
        width: usize,
        height: usize,
        planes: usize,
        helpers: usize,
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
    /// Bulk: the embedding as f32 little-endian. `helpers`: threads that took part besides the
    /// worker's own.
    Embedded {
        id: u32,
        shape: [usize; 4],
        resized: (usize, usize),
        helpers: usize,
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
        Ok((ToEncoder::Load { id, helpers }, bulk)) => {
            match MedSam::from_model_file(&bulk, &Device::flex()) {
                Ok(m) => {
                    MODEL.set(Some(m));
                    gemm::set_helpers(helpers);
                    reply(&FromEncoder::Loaded { id }, None);
                }
                Err(e) => failed(Some(id), e.to_string()),
            }
        }
        Ok((
            ToEncoder::Embed {
                id,
                width,
                height,
                planes,
                helpers,
            },
            bulk,
        )) => wasm_bindgen_futures::spawn_local(async move {
            gemm::set_helpers(helpers);
            gemm::helpers_started().await;
            gemm::take_helpers_used();
            match embed_here(width, height, planes, bulk).await {
                Ok((shape, resized, values)) => {
                    let bytes = f32_bytes(&values);
                    let helpers = gemm::take_helpers_used();
                    let done = FromEncoder::Embedded {
                        id,
                        shape,
                        resized,
                        helpers,
                    };
                    reply(&done, Some(&bytes));
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

/// Workers a propagation may use (each holds ~45 MB of model and its own activations).
pub const MAX_WORKERS: usize = 3;

/// One running worker and the requests waiting for its answer.
struct Slot {
    worker: Worker,
    /// Answers by request id: each resolves the promise its request awaits.
    pending: HashMap<u32, Function>,
    /// Resolves with the answer to `Load` (or the failure that came instead).
    loaded: Promise,
    /// Set when the answer to `Load` was `Loaded`.
    ready: bool,
    /// The model, sent once the worker says it is ready.
    load: Option<JsValue>,
    /// Requests for a worker still starting, sent right after the model.
    queued: Vec<JsValue>,
    /// Why the worker is unusable (its requests go elsewhere, or the page encodes itself).
    broken: Option<String>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

struct Pool {
    slots: Vec<Slot>,
    next_id: u32,
    /// The `Load` message (our model file), for workers started later.
    load: JsValue,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// Starts one worker with our model file (`bytes`); any earlier pool is stopped. On failure the
/// page keeps encoding itself and the reason is returned (for the console, not the user: the
/// app works either way).
pub fn start(bytes: &[u8]) -> std::result::Result<(), String> {
    stop();
    if cap() == Some(0) {
        return Err("`?encoders=0`: the page encodes itself".into());
    }
    let load = ToEncoder::Load {
        id: LOAD,
        helpers: helpers(1),
    };
    let load = message(&load, Some(bytes))?;
    let slot = spawn_slot(0, &load)?;
    POOL.set(Some(Pool {
        slots: vec![slot],
        next_id: LOAD + 1,
        load,
    }));
    Ok(())
}

/// Grows the pool to one worker per core (at most [`MAX_WORKERS`], or the page's `?encoders=N`)
/// and returns how many workers it has; 0 where the page encodes itself.
pub fn widen() -> usize {
    let cores = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency() as usize)
        .unwrap_or(1);
    let want = cores
        .min(cap().unwrap_or(MAX_WORKERS))
        .clamp(1, MAX_WORKERS);
    POOL.with_borrow_mut(|pool| {
        let Some(pool) = pool.as_mut() else {
            return 0;
        };
        while pool.slots.len() < want {
            match spawn_slot(pool.slots.len(), &pool.load) {
                Ok(s) => pool.slots.push(s),
                Err(e) => {
                    web_sys::console::warn_1(&format!("another encoder worker: {e}").into());
                    break;
                }
            }
        }
        pool.slots.iter().filter(|s| s.broken.is_none()).count()
    })
}

/// The page's `?encoders=N` (benchmarks and profiles; 0: no workers, the page encodes itself).
fn cap() -> Option<usize> {
    super::web::page_param("encoders").and_then(|v| v.parse().ok())
}

fn spawn_slot(k: usize, load: &JsValue) -> std::result::Result<Slot, String> {
    let worker = spawn("encode_worker")?;
    let mut resolve_load = None;
    let loaded = Promise::new(&mut |resolve, _| resolve_load = Some(resolve));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        on_answer(k, e.data());
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |e: ErrorEvent| {
        e.prevent_default();
        let msg = FromEncoder::Failed {
            id: None,
            message: format!("the encoder worker failed: {}", e.message()),
        };
        if let Ok(v) = message(&msg, None) {
            on_answer(k, v);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let mut pending = HashMap::new();
    pending.insert(LOAD, resolve_load.expect("Promise::new calls back at once"));
    Ok(Slot {
        worker,
        pending,
        loaded,
        ready: false,
        load: Some(load.clone()),
        queued: vec![],
        broken: None,
        _on_message: on_message,
        _on_error: on_error,
    })
}

/// Ends the workers, if any (their memory goes with them).
pub fn stop() {
    if let Some(pool) = POOL.take() {
        for s in &pool.slots {
            s.worker.terminate();
        }
        // The handlers may be on the stack (a failure seen in them): drop them later.
        wasm_bindgen_futures::spawn_local(async move { drop(pool) });
    }
}

/// Routes one message of worker `k` to whoever waits for it.
fn on_answer(k: usize, data: JsValue) {
    let answer = read::<FromEncoder>(&data).map(|(m, _)| m);
    let resolve: Vec<Function> = POOL.with_borrow_mut(|pool| {
        let Some(slot) = pool.as_mut().and_then(|p| p.slots.get_mut(k)) else {
            return vec![];
        };
        match answer {
            Ok(FromEncoder::Ready) => {
                let load = slot.load.take().into_iter();
                for m in load.chain(std::mem::take(&mut slot.queued)) {
                    if let Err(e) = slot.worker.post_message(&m) {
                        slot.broken = Some(js_err(e));
                        return slot.pending.drain().map(|(_, f)| f).collect();
                    }
                }
                vec![]
            }
            Ok(FromEncoder::Loaded { id }) => {
                slot.ready = true;
                slot.pending.remove(&id).into_iter().collect()
            }
            // The model did not load: what waits for this worker goes elsewhere.
            Ok(FromEncoder::Failed {
                id: Some(LOAD),
                message,
            }) => {
                slot.broken = Some(message);
                slot.pending.drain().map(|(_, f)| f).collect()
            }
            Ok(FromEncoder::Embedded { id, .. } | FromEncoder::Failed { id: Some(id), .. }) => {
                slot.pending.remove(&id).into_iter().collect()
            }
            // The worker itself failed: it may still be computing (a trap ends only its task).
            Ok(FromEncoder::Failed { id: None, message }) => {
                slot.worker.terminate();
                slot.broken = Some(message);
                slot.pending.drain().map(|(_, f)| f).collect()
            }
            Err(e) => {
                slot.broken = Some(e);
                slot.pending.drain().map(|(_, f)| f).collect()
            }
        }
    });
    for f in resolve {
        let _ = f.call1(&JsValue::NULL, &data);
    }
}

/// Sends a request to the least busy worker (the first worker, once it has the model, when none
/// has yet); None where the page must encode. A worker still loading the model counts as half a
/// request busy: loading takes a second or two, an encode several.
async fn ask(msg: impl FnOnce(u32, usize) -> ToEncoder, bulk: &[u8]) -> Option<Promise> {
    if !POOL.with_borrow(|p| p.as_ref().is_some_and(|p| p.slots.iter().any(|s| s.ready))) {
        first_worker_ready().await;
    }
    POOL.with_borrow_mut(|pool| {
        let pool = pool.as_mut()?;
        let id = pool.next_id;
        pool.next_id += 1;
        let live = pool.slots.iter().filter(|s| s.broken.is_none()).count();
        let slot = pool
            .slots
            .iter_mut()
            .filter(|s| s.broken.is_none())
            .min_by_key(|s| {
                let loading = !s.ready as usize;
                2 * (s.pending.len() - loading) + loading
            })?;
        let data = message(&msg(id, helpers(live)), Some(bulk)).ok()?;
        let mut resolve = None;
        let promise = Promise::new(&mut |r, _| resolve = Some(r));
        slot.pending
            .insert(id, resolve.expect("Promise::new calls back at once"));
        if slot.load.is_some() {
            slot.queued.push(data);
        } else if let Err(e) = slot.worker.post_message(&data) {
            slot.broken = Some(js_err(e));
            slot.pending.remove(&id);
            return None;
        }
        Some(promise)
    })
}

/// Lets the page's own matrix products (its decodes; its encodes where no worker does them) share
/// their rows with helper threads, as a worker's do: a decode's products run on the page's thread.
pub async fn share_page_products() {
    gemm::set_helpers(helpers(1));
    gemm::helpers_started().await;
}

/// Helper threads for each of `workers` encoder workers' matrix products: the cores the workers
/// leave (2 cores, one worker: 1), or the page's `?helpers=N`.
fn helpers(workers: usize) -> usize {
    let cores = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency() as usize)
        .unwrap_or(1);
    super::web::page_param("helpers")
        .and_then(|v| v.parse().ok())
        .unwrap_or((cores / workers.max(1)).saturating_sub(1))
}

/// Waits for the first worker to load the model (or to fail, which marks it broken).
async fn first_worker_ready() {
    let Some(loaded) = POOL.with_borrow(|p| {
        p.as_ref()
            .and_then(|p| p.slots.first())
            .filter(|s| s.broken.is_none())
            .map(|s| s.loaded.clone())
    }) else {
        return;
    };
    let answer = JsFuture::from(loaded)
        .await
        .ok()
        .and_then(|d| read::<FromEncoder>(&d).ok());
    if let Some((FromEncoder::Loaded { .. }, _)) = answer {
        return;
    }
    let why = match answer {
        Some((FromEncoder::Failed { message, .. }, _)) => message,
        _ => "no answer".into(),
    };
    POOL.with_borrow_mut(|p| {
        if let Some(s) = p.as_mut().and_then(|p| p.slots.first_mut()) {
            s.broken.get_or_insert(why.clone());
        }
    });
    web_sys::console::warn_1(&format!("encoding on the page: {why}").into());
}

/// An image's embedding on its way from a worker (None: the page computes it in [`finish`]).
pub struct Pending(Option<Promise>);

/// Starts encoding `img` on a worker.
pub async fn request(img: &Planes) -> Pending {
    let bulk: Vec<u8> = img
        .planes
        .iter()
        .flat_map(|p| p.data.iter().copied())
        .collect();
    let request = |id, helpers| ToEncoder::Embed {
        id,
        width: img.width(),
        height: img.height(),
        planes: img.planes.len(),
        helpers,
    };
    Pending(ask(request, &bulk).await)
}

/// The embedding `pending` brings, for `model` (whose device receives it); the page computes
/// it itself when no worker could (`img` is the image that was requested).
pub async fn finish(model: &MedSam, img: &Planes, pending: Pending) -> Result<ImageEmbedding> {
    if let Some(promise) = pending.0 {
        let answer = JsFuture::from(promise)
            .await
            .ok()
            .and_then(|d| read::<FromEncoder>(&d).ok());
        match answer {
            Some((
                FromEncoder::Embedded {
                    shape,
                    resized,
                    helpers,
                    ..
                },
                bytes,
            )) => {
                LAST_THREADS.set(Some(1 + helpers));
                return model.embedding_from_host(
                    f32s(&bytes),
                    shape,
                    (img.width(), img.height()),
                    resized,
                );
            }
            Some((
                FromEncoder::Failed {
                    id: Some(id),
                    message,
                },
                _,
            )) if id != LOAD => {
                return Err(Error::Device(message));
            }
            // The worker died or could not load the model: the page takes over.
            _ => {}
        }
    }
    gemm::take_helpers_used();
    let embedding = model.embed(img);
    let helpers = gemm::take_helpers_used();
    LAST_THREADS.set((helpers > 0).then_some(1 + helpers));
    embedding
}

thread_local! {
    static LAST_THREADS: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The CPU threads the last embedding [`finish`]ed took where more than one did (None: the page's
/// thread alone, or its GPU).
pub fn last_threads() -> Option<usize> {
    LAST_THREADS.get()
}

/// `img`'s embedding for `model`: from a worker when one runs, else computed here.
pub async fn embed(model: &MedSam, img: &Planes) -> Result<ImageEmbedding> {
    let pending = request(img).await;
    finish(model, img, pending).await
}
