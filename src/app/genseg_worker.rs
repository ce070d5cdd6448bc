//! GenSeg training off the page's thread, so the page answers clicks however long a step takes.
//!
//! The page starts a module worker (`super::worker`) that loads this same wasm and calls
//! [`serve`]. The sides talk in [`ToWorker`] / [`FromWorker`] messages; the bulk (training
//! pairs as f32, the trained weights as our model file) travels beside them as a byte array.
//! The worker computes on its own device (WebGPU when the page has it, else the CPU).

use super::web::{self, js_err};
use super::worker::{listen, message, read, reply, spawn};
use crate::genseg::{Losses, Pair, TrainConfig, Trainer};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// What the page asks of the worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToWorker {
    /// Bulk: `n_train` then `n_val` pairs, each image then mask at `config.net.size`².
    Train {
        config: TrainConfig,
        iterations: usize,
        /// Time budget in minutes (0: none); training stops at whichever limit comes first.
        minutes: f64,
        webgpu: bool,
        n_train: usize,
        n_val: usize,
    },
    Pause,
    Resume,
    /// Stop after the current iteration and send what was learnt.
    Cancel,
}

/// What the worker tells the page.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FromWorker {
    Ready,
    Started {
        backend: String,
    },
    Progress {
        iteration: usize,
        losses: Losses,
        ms_per_iteration: f64,
    },
    /// Bulk: the trained weights. `stopped` says why it ended early (cancel, time budget).
    Done {
        iterations: usize,
        seconds: f64,
        stopped: Option<String>,
    },
    Failed {
        message: String,
    },
}

fn pairs_to_bytes(pairs: &[Pair]) -> Vec<u8> {
    web::f32_bytes(pairs.iter().flat_map(|p| p.image.iter().chain(&p.mask)))
}

fn pairs_from_bytes(bytes: &[u8], count: usize, side: usize) -> Result<Vec<Pair>, String> {
    let n = side * side;
    if bytes.len() != count * 2 * n * 4 {
        return Err(format!(
            "expected {count} pairs of {side}², got {} bytes",
            bytes.len()
        ));
    }
    let v = web::f32s(bytes);
    Ok(v.chunks_exact(2 * n)
        .map(|c| Pair {
            image: c[..n].to_vec(),
            mask: c[n..].to_vec(),
        })
        .collect())
}

// ---- the worker's side ----

#[derive(Clone, Copy, PartialEq)]
enum Control {
    Run,
    Pause,
    Cancel,
}

thread_local! {
    static CONTROL: Cell<Control> = const { Cell::new(Control::Run) };
}

/// Entry point inside the worker: answers the page's messages until it is terminated.
pub fn serve() {
    listen(|e: MessageEvent| match read::<ToWorker>(&e.data()) {
        Ok((ToWorker::Pause, _)) => CONTROL.set(Control::Pause),
        Ok((ToWorker::Resume, _)) => CONTROL.set(Control::Run),
        Ok((ToWorker::Cancel, _)) => CONTROL.set(Control::Cancel),
        Ok((job @ ToWorker::Train { .. }, bulk)) => wasm_bindgen_futures::spawn_local(async move {
            if let Err(message) = run(job, bulk).await {
                reply(&FromWorker::Failed { message }, None);
            }
        }),
        Err(e) => reply(
            &FromWorker::Failed {
                message: format!("unreadable request: {e}"),
            },
            None,
        ),
    });
    reply(&FromWorker::Ready, None);
}

async fn run(job: ToWorker, bulk: Vec<u8>) -> Result<(), String> {
    let ToWorker::Train {
        config,
        iterations,
        minutes,
        webgpu,
        n_train,
        n_val,
    } = job
    else {
        return Ok(());
    };
    let side = config.net.size;
    let n_bytes = n_train * 2 * side * side * 4;
    let train = pairs_from_bytes(&bulk[..n_bytes.min(bulk.len())], n_train, side)?;
    let val = pairs_from_bytes(&bulk[n_bytes.min(bulk.len())..], n_val, side)?;
    #[cfg(feature = "webgpu")]
    let (device, backend) = if webgpu {
        match Device::wgpu_options().init_async().await {
            Ok(d) => (d, "WebGPU".to_string()),
            Err(e) => (
                Device::flex(),
                format!("CPU (WebGPU failed in the worker: {e:?})"),
            ),
        }
    } else {
        (Device::flex(), "CPU".to_string())
    };
    // The CPU-only build runs in a page that chose the CPU, so `webgpu` is false here.
    #[cfg(not(feature = "webgpu"))]
    let (device, backend) = {
        let _ = webgpu;
        (Device::flex(), "CPU".to_string())
    };
    let mut trainer = Trainer::new(config, train, val, &device).map_err(|e| e.to_string())?;
    reply(&FromWorker::Started { backend }, None);
    let t0 = js_sys::Date::now();
    let mut paused_ms = 0.0;
    let budget_ms = minutes * 60_000.0;
    let mut stopped = None;
    for i in 0..iterations {
        while CONTROL.get() == Control::Pause {
            let p0 = js_sys::Date::now();
            web::sleep(100).await;
            paused_ms += js_sys::Date::now() - p0;
        }
        let elapsed = js_sys::Date::now() - t0 - paused_ms;
        if CONTROL.get() == Control::Cancel {
            stopped = Some("cancelled".to_string());
            break;
        }
        if budget_ms > 0.0 && elapsed >= budget_ms {
            stopped = Some(format!("time limit of {minutes} min reached"));
            break;
        }
        let losses = trainer
            .step_paced(&mut async || web::yield_now().await)
            .await
            .map_err(|e| format!("GenSeg training stopped: {e}"))?;
        let ms_per_iteration = (js_sys::Date::now() - t0 - paused_ms) / (i + 1) as f64;
        reply(
            &FromWorker::Progress {
                iteration: i + 1,
                losses,
                ms_per_iteration,
            },
            None,
        );
        web::yield_now().await;
    }
    let seconds = (js_sys::Date::now() - t0 - paused_ms) / 1000.0;
    let weights = trainer.model.to_bytes().await.map_err(|e| e.to_string())?;
    let done = FromWorker::Done {
        iterations: trainer.iteration,
        seconds,
        stopped,
    };
    reply(&done, Some(&weights));
    Ok(())
}

// ---- the page's side ----

/// A running worker and the handlers that must live as long as it does.
struct Running {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Starts a worker and gives it `job`; `on_message` sees everything it says after `Ready`
/// (a worker that dies says `Failed`). Any earlier worker is stopped first.
pub fn start(
    job: ToWorker,
    bulk: Vec<u8>,
    mut on_message: impl FnMut(FromWorker, Vec<u8>) + 'static,
) -> Result<(), String> {
    stop();
    let worker = spawn("genseg_worker")?;
    let first = message(&job, Some(&bulk))?;
    let w = worker.clone();
    let handler = std::rc::Rc::new(RefCell::new(move |msg: FromWorker, bulk: Vec<u8>| {
        on_message(msg, bulk)
    }));
    let h = handler.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        match read::<FromWorker>(&e.data()) {
            Ok((FromWorker::Ready, _)) => {
                if let Err(e) = w.post_message(&first) {
                    (h.borrow_mut())(FromWorker::Failed { message: js_err(e) }, vec![]);
                }
            }
            Ok((msg, bulk)) => (h.borrow_mut())(msg, bulk),
            Err(e) => (h.borrow_mut())(FromWorker::Failed { message: e }, vec![]),
        }
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |e: ErrorEvent| {
        e.prevent_default();
        let message = format!("the training worker failed: {}", e.message());
        (handler.borrow_mut())(FromWorker::Failed { message }, vec![]);
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    RUNNING.with_borrow_mut(|r| {
        *r = Some(Running {
            worker,
            _on_message: on_message,
            _on_error: on_error,
        })
    });
    Ok(())
}

/// Sends pause/resume/cancel to the running worker, if any.
pub fn control(msg: ToWorker) {
    RUNNING.with_borrow(|r| {
        if let (Some(r), Ok(v)) = (r, message(&msg, None)) {
            let _ = r.worker.post_message(&v);
        }
    });
}

/// Ends the worker (its memory goes with it). Safe to call from its own handlers: the
/// handlers are dropped later, outside the call.
pub fn stop() {
    if let Some(r) = RUNNING.with_borrow_mut(|r| r.take()) {
        r.worker.terminate();
        wasm_bindgen_futures::spawn_local(async move {
            drop(r);
        });
    }
}

/// The training pairs as the worker's bulk.
pub fn bulk(train: &[Pair], val: &[Pair]) -> Vec<u8> {
    let mut b = pairs_to_bytes(train);
    b.extend(pairs_to_bytes(val));
    b
}
