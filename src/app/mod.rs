//! The Leptos single-page app. It talks to `pipeline`, never to `models` directly, and keeps
//! every image, mask and annotation inside the tab.

mod autosave;
mod canvas;
pub mod encoder;
mod generate;
pub mod genseg_worker;
mod measure;
mod refine;
mod state;
mod storage;
mod task;
mod volume;
mod web;
mod worker;

use crate::imaging::GrayImage;
use crate::imaging::decode::{decode_image, encode_gray_png, encode_mask_png};
use crate::imaging::dicom::is_dicom;
use crate::imaging::volume::has_volume_extension;
use crate::metrics::{dice, nsd};
use crate::pipeline::medsam::{MedSam, UserPrompt};
use burn::tensor::Device;
use leptos::prelude::*;
use leptos::task::spawn_local;
use state::with;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, HtmlInputElement, MouseEvent, PointerEvent};

const MODEL_PATH: &str = "models/litemedsam.int8.medseg";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Box,
    Brush,
    Eraser,
}

/// Reactive UI state (small values only; the heavy state lives in `state`).
#[derive(Clone, Copy)]
struct Ui {
    phase: RwSignal<&'static str>,
    status: RwSignal<String>,
    error: RwSignal<Option<String>>,
    progress: RwSignal<Option<f64>>,
    backend: RwSignal<String>,
    /// Each object's name, colour (#rrggbb), pixels on the image (or slice) in view, hidden.
    objects: RwSignal<Vec<(String, String, usize, bool)>>,
    selected: RwSignal<Option<usize>>,
    /// The object whose name is being edited in the list.
    renaming: RwSignal<Option<usize>>,
    tool: RwSignal<Tool>,
    brush: RwSignal<f64>,
    opacity: RwSignal<f64>,
    /// Masks shown as outlines.
    outline: RwSignal<bool>,
    metrics: RwSignal<Option<(f64, f64)>>,
    image_name: RwSignal<String>,
    /// The pixel under the pointer and its value.
    readout: RwSignal<String>,
    /// The brush's outline under the pointer: its centre in the viewer and its diameter (CSS px).
    brush_ring: RwSignal<Option<(f64, f64, f64)>>,
    /// The keyboard and mouse list is open.
    help: RwSignal<bool>,
}

impl Ui {
    fn new() -> Self {
        Ui {
            phase: RwSignal::new("loading"),
            status: RwSignal::new("Starting…".into()),
            error: RwSignal::new(None),
            progress: RwSignal::new(Some(0.0)),
            backend: RwSignal::new("…".into()),
            objects: RwSignal::new(vec![]),
            selected: RwSignal::new(None),
            renaming: RwSignal::new(None),
            tool: RwSignal::new(Tool::Box),
            brush: RwSignal::new(6.0),
            opacity: RwSignal::new(0.45),
            outline: RwSignal::new(false),
            metrics: RwSignal::new(None),
            image_name: RwSignal::new(String::new()),
            readout: RwSignal::new(String::new()),
            brush_ring: RwSignal::new(None),
            help: RwSignal::new(false),
        }
    }

    /// Whether the models compute on WebGPU (in f32 or f16).
    fn on_webgpu(&self) -> bool {
        self.backend.get_untracked().starts_with("WebGPU")
    }

    fn fail(&self, msg: impl Into<String>) {
        self.error.set(Some(msg.into()));
        self.progress.set(None);
    }

    /// Refreshes everything derived from the heavy state and repaints.
    fn sync(&self) {
        let (list, sel, metrics) = with(|s| {
            canvas::redraw(s);
            let list = s
                .objects
                .iter()
                .map(|o| {
                    let [r, g, b] = o.color;
                    (
                        o.name.clone(),
                        format!("#{r:02x}{g:02x}{b:02x}"),
                        o.mask.iter().filter(|&&v| v > 0).count(),
                        o.hidden,
                    )
                })
                .collect::<Vec<_>>();
            let metrics = match (
                &s.reference,
                s.selected.and_then(|i| s.objects.get(i)),
                &s.display,
            ) {
                (Some(r), Some(o), Some(img)) => {
                    let m: Vec<bool> = o.mask.iter().map(|&v| v > 0).collect();
                    Some((
                        dice(r, &m),
                        nsd(r, &m, img.width, img.height, (1.0, 1.0), 2.0),
                    ))
                }
                _ => None,
            };
            (list, s.selected, metrics)
        });
        self.objects.set(list);
        self.selected.set(sel);
        self.metrics.set(metrics);
        autosave::schedule();
    }
}

/// WebGPU when the browser has a real GPU adapter; the CPU path without one, and also on a
/// software-emulated adapter, where it is far faster. `?backend=webgpu|cpu` overrides. On WebGPU
/// the models compute in f16 where the adapter has `shader-f16`, unless `?precision=f32`.
async fn init_backend(ui: Ui) -> Device {
    let wanted = web::page_param("backend");
    let label = match (web::webgpu_adapter().await, wanted.as_deref()) {
        (_, Some("cpu")) => "CPU (chosen by ?backend=cpu)",
        (web::WebGpu::None, _) => "CPU (no WebGPU)",
        (web::WebGpu::Software, w) if w != Some("webgpu") => {
            "CPU (this browser's WebGPU is software-emulated; ?backend=webgpu uses it anyway)"
        }
        #[cfg(feature = "webgpu")]
        _ => match Device::wgpu_options().init_async().await {
            Ok(mut d) => {
                let f16 = web::page_param("precision").as_deref() != Some("f32")
                    && crate::models::compute_in_f16(&mut d);
                ui.backend
                    .set(if f16 { "WebGPU (f16)" } else { "WebGPU" }.into());
                return d;
            }
            Err(e) => {
                ui.error.set(Some(format!(
                    "WebGPU failed to start ({e:?}); using the CPU instead"
                )));
                "CPU (WebGPU failed to start)"
            }
        },
        // static/boot.js loads this build only where WebGPU is unusable or not wanted.
        #[cfg(not(feature = "webgpu"))]
        _ => "CPU (the WebGPU build did not load)",
    };
    ui.backend.set(label.into());
    Device::flex()
}

/// " on N CPU threads" for a status line, where more than one computed; nothing otherwise.
fn on_threads(threads: usize) -> String {
    match threads {
        0 | 1 => String::new(),
        t => format!(" on {t} CPU threads"),
    }
}

/// Loads LiteMedSAM on `device` (the one chosen at start, or the CPU after a GPU loss).
async fn load_model(ui: Ui, device: Device) {
    with(|s| s.device = Some(device.clone()));
    ui.status.set("Loading LiteMedSAM…".into());
    let bytes = match web::fetch_bytes(MODEL_PATH, |done, total| {
        if total > 0.0 {
            ui.progress.set(Some(done / total));
        }
    })
    .await
    {
        Ok(b) => b,
        Err(e) => return ui.fail(format!("Could not load the model file {MODEL_PATH}: {e}")),
    };
    web::yield_now().await;
    match MedSam::from_model_file(&bytes, &device) {
        Ok(m) => {
            with(|s| s.model = Some(m));
            if !ui.on_webgpu() {
                if let Err(e) = encoder::start(&bytes) {
                    web_sys::console::warn_1(&format!("encoding on the page: {e}").into());
                }
                encoder::share_page_products().await;
            }
            ui.progress.set(None);
            ui.phase.set("idle");
            ui.status
                .set("LiteMedSAM ready. Open an image (drop it here or use Open).".into());
            // An image opened while the model loaded is embedded now.
            if with(|s| s.image.is_some()) {
                spawn_embed(ui);
            }
        }
        Err(e) => ui.fail(format!("The model file is unusable: {e}")),
    }
}

/// index.html reports a lost WebGPU device (driver reset, GPU out of memory) as a
/// `medseg-gpu-lost` event on the window.
fn watch_gpu_loss(ui: Ui, t: task::TaskUi, g: generate::GenUi) {
    let on_lost = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(
        move |e: web_sys::Event| {
            let why = js_sys::Reflect::get(&e, &"detail".into())
                .ok()
                .and_then(|d| d.as_string())
                .unwrap_or_default();
            spawn_local(fall_back_to_cpu(ui, t, g, why));
        },
    );
    if let Some(w) = web_sys::window() {
        let _ =
            w.add_event_listener_with_callback("medseg-gpu-lost", on_lost.as_ref().unchecked_ref());
    }
    on_lost.forget();
}

/// After a GPU loss everything that lived on the GPU (models, embeddings) is loaded again on
/// the CPU from its files; masks, boxes, the scan and the support set are in the tab's memory
/// and stay. Work that was running on the GPU ends with its own error message.
async fn fall_back_to_cpu(ui: Ui, t: task::TaskUi, g: generate::GenUi, why: String) {
    if !ui.on_webgpu() {
        return;
    }
    ui.backend.set("CPU (WebGPU was lost)".into());
    ui.phase.set("loading");
    ui.error.set(Some(format!(
        "The GPU stopped working ({why}); medseg continues on the CPU. Your work is kept."
    )));
    let device = Device::flex();
    with(|s| {
        s.device = Some(device.clone());
        s.model = None;
        s.embedding = None;
        s.universeg = None;
        s.genseg = None;
        if let Some(v) = s.volume.as_mut() {
            v.cache.clear();
        }
    });
    spawn_local(task::find_weights(ui, t));
    spawn_local(generate::restore(g));
    load_model(ui, device).await;
}

/// Encodes the open image in the background. The phase says `embedding` at once, not when the
/// task starts: until then the page would still say `ready` for the previous image (a box drawn
/// in that moment was refused as "still being encoded").
fn spawn_embed(ui: Ui) {
    ui.phase.set("embedding");
    spawn_local(async move {
        embed_current(ui).await;
        // While the user reaches for a box: the decoder's image-only work (≈ 12 ms on the CPU
        // path), which would otherwise be part of the first box's wait. Not for a volume's
        // slices: their cached embeddings would each keep 6 MB more.
        web::yield_now().await;
        let ready = with(|s| Some((s.model.clone()?, s.embedding.clone()?)));
        if let (Some((model, emb)), false) = (ready, volume::is_open()) {
            model.prepare_prompts(&emb);
            warm_decoder(&model, &emb).await;
        }
    });
}

/// The page's first decode runs 30–70 ms slower than the later ones (its code not yet optimised
/// by the engine, its buffers fresh memory); one box decoded and thrown away after the first
/// encode, while the user reaches for theirs, takes that off the user's first box.
async fn warm_decoder(model: &MedSam, emb: &crate::pipeline::medsam::ImageEmbedding) {
    thread_local!(static WARM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if WARM.with(|w| w.replace(true)) {
        return;
    }
    web::yield_now().await;
    let (w, h) = (emb.width as f32, emb.height as f32);
    let middle = [w * 0.25, h * 0.25, w * 0.75, h * 0.75];
    let _ = model.predict(emb, &UserPrompt::from_box(middle)).await;
}

async fn embed_current(ui: Ui) {
    let Some((model, image, image_id)) =
        with(|s| Some((s.model.clone()?, s.image.clone()?, s.image_id)))
    else {
        return;
    };
    ui.phase.set("embedding");
    ui.status.set("Encoding image…".into());
    ui.progress.set(Some(-1.0));
    web::yield_now().await;
    let t0 = js_sys::Date::now();
    // A failed encode leaves the image open without an embedding (opening it again retries).
    let failed = |msg: String| {
        ui.phase.set("idle");
        ui.fail(msg);
    };
    let emb = match encoder::embed(&model, &image).await {
        Ok(e) => e,
        Err(e) => return failed(e.to_string()),
    };
    // Wait for the device to finish before calling the image ready.
    let probe = emb.tensor.clone().slice([0..1, 0..1, 0..1, 0..1]);
    if let Err(e) = crate::weights::to_host_async(probe).await {
        return failed(format!("The compute device failed: {e}"));
    }
    // Another image (or slice) was opened meanwhile: its own encode is under way.
    if with(|s| s.image_id != image_id) {
        return;
    }
    volume::remember_embedding(&emb);
    with(|s| s.embedding = Some(emb));
    ui.progress.set(None);
    settle(ui, "ready");
    let threads = on_threads(encoder::last_threads().unwrap_or(1));
    ui.status.set(format!(
        "Image encoded in {:.0} ms{threads}. Draw a box around a structure.",
        js_sys::Date::now() - t0
    ));
}

/// Opens what the user chose: an image, a NRRD/NIfTI volume, or DICOM files (one image, a
/// multi-frame file or a series); a single PNG named `*mask*` is a reference mask instead.
async fn open_files(ui: Ui, v: volume::VolUi, files: Vec<web_sys::File>) {
    // Busy from the moment files are chosen: reading them is an await, during which the page
    // would otherwise still say `ready` for the previous scan. Opening a scan moves the phase on
    // (`embedding`, or `ready` for a volume); every path that keeps the current one puts it back.
    let before = ui.phase.get_untracked();
    ui.phase.set("opening");
    open_chosen(ui, v, files).await;
    if ui.phase.get_untracked() == "opening" {
        // An encode or decode of the current scan may have ended meanwhile (`settle`).
        let done = matches!(before, "embedding" | "decoding") && with(|s| s.embedding.is_some());
        ui.phase.set(if done { "ready" } else { before });
    }
}

/// Ends an encode or a decode in `phase`, unless files are being opened: `open_files` then
/// sets the phase once it knows whether the current scan stays.
fn settle(ui: Ui, phase: &'static str) {
    if ui.phase.get_untracked() != "opening" {
        ui.phase.set(phase);
    }
}

async fn open_chosen(ui: Ui, v: volume::VolUi, files: Vec<web_sys::File>) {
    ui.error.set(None);
    let mut read = Vec::with_capacity(files.len());
    for f in &files {
        match web::read_file(f).await {
            Ok(b) => read.push((f.name(), b)),
            Err(e) => return ui.fail(format!("Could not read {}: {e}", f.name())),
        }
    }
    if let [(name, bytes)] = read.as_slice() {
        if !has_volume_extension(name)
            && !is_dicom_file(name, bytes)
            && name.to_lowercase().contains("mask")
            && with(|s| s.display.is_some())
        {
            return load_reference(ui, bytes, name);
        }
    }
    if open_bytes(ui, v, &read).await {
        autosave::keep_source(&read).await;
    }
}

fn is_dicom_file(name: &str, bytes: &[u8]) -> bool {
    is_dicom(bytes) || name.to_lowercase().ends_with(".dcm")
}

/// Opens a scan from its files' bytes, replacing the current one; false (with a message, the
/// current work untouched) when it cannot be read.
async fn open_bytes(ui: Ui, v: volume::VolUi, files: &[(String, Vec<u8>)]) -> bool {
    if files.iter().any(|(n, b)| is_dicom_file(n, b)) {
        return volume::open_dicom(ui, v, files).await;
    }
    let Some((name, bytes)) = files.first() else {
        return false;
    };
    if has_volume_extension(name) {
        return volume::open(ui, v, name.clone(), bytes).await;
    }
    let img = match decode_image(bytes) {
        Ok(i) => i,
        Err(e) => {
            ui.fail(format!(
                "{name}: {e}. The current image and masks are unchanged."
            ));
            return false;
        }
    };
    with(|s| {
        s.volume = None;
        s.display = Some(img.luma());
        s.set_image(img);
        s.embedding = None;
        s.clear_work();
    });
    ui.image_name.set(name.clone());
    ui.sync();
    v.sync();
    if with(|s| s.model.is_some()) {
        spawn_embed(ui);
    }
    true
}

fn load_reference(ui: Ui, bytes: &[u8], name: &str) {
    match decode_image(bytes) {
        Ok(m) => {
            let luma = m.luma();
            let ok = with(|s| {
                let d = s.display.as_ref().unwrap();
                if (d.width, d.height) != (luma.width, luma.height) {
                    return false;
                }
                s.reference = Some(luma.data.iter().map(|&v| v > 0).collect());
                true
            });
            if ok {
                ui.status.set(format!(
                    "Reference mask {name} loaded: DSC/NSD shown for the selected object."
                ));
                ui.sync();
            } else {
                ui.fail(format!(
                    "{name}: the reference mask must have the image's size"
                ));
            }
        }
        Err(e) => ui.fail(format!("{name}: {e}")),
    }
}

/// Segments `bbox` into a new object, or into object `into` (its index and name: its box was
/// moved), replacing its mask (on a volume: on the slice in view). Should that object have gone
/// meanwhile (deleted, undone), the mask becomes a new object.
async fn segment_box(ui: Ui, bbox: [f32; 4], into: Option<(usize, String)>) {
    // Volume slices are embedded when first needed.
    if volume::is_open() && with(|s| s.model.is_some() && s.embedding.is_none()) {
        embed_current(ui).await;
    }
    let Some((model, emb)) = with(|s| Some((s.model.clone()?, s.embedding.clone()?))) else {
        return ui.fail("The image is still being encoded; try again in a moment.");
    };
    ui.phase.set("decoding");
    let t0 = js_sys::Date::now();
    crate::models::gemm::take_helpers_used();
    match model.predict(&emb, &UserPrompt::from_box(bbox)).await {
        Ok(p) => {
            with(|s| {
                s.checkpoint();
                let z = s.volume.as_ref().map(|v| v.z);
                let into =
                    into.filter(|(i, name)| s.objects.get(*i).is_some_and(|o| &o.name == name));
                let i = match into.map(|(i, _)| i) {
                    Some(i) => {
                        let o = &mut s.objects[i];
                        o.mask = p.mask;
                        o.bbox = Some(bbox);
                        o.hidden = false;
                        // A propagated object keeps its range; the moved box is its rectangle.
                        match &mut o.box3d {
                            Some(b) => b.rect = bbox,
                            None => o.box_slice = z,
                        }
                        i
                    }
                    None => s.new_object(Some(bbox), p.mask),
                };
                s.selected = Some(i);
            });
            let ms = js_sys::Date::now() - t0;
            let threads = on_threads(1 + crate::models::gemm::take_helpers_used());
            ui.status.set(format!(
                "Mask in {ms:.0} ms{threads} (box {}, predicted IoU {:.2}).",
                bbox.map(|v| v.to_string()).join(","),
                p.iou
            ));
            ui.sync();
        }
        Err(e) => ui.fail(e.to_string()),
    }
    settle(ui, "ready");
}

fn paint(x: f32, y: f32, radius: f64, value: u8) {
    with(|s| {
        let (Some(i), Some(img)) = (s.selected, s.display.as_ref()) else {
            return;
        };
        let (w, h) = (img.width as i64, img.height as i64);
        let r = radius as i64;
        let o = &mut s.objects[i];
        for dy in -r..=r {
            for dx in -r..=r {
                let (px, py) = (x as i64 + dx, y as i64 + dy);
                if dx * dx + dy * dy <= r * r && px >= 0 && py >= 0 && px < w && py < h {
                    o.mask[(py * w + px) as usize] = value;
                }
            }
        }
    });
}

fn export_selected(ui: Ui) {
    let out = with(|s| {
        let (i, img) = (s.selected?, s.display.as_ref()?);
        let o = &s.objects[i];
        Some((
            o.name.clone(),
            encode_mask_png(&o.mask, img.width, img.height),
        ))
    });
    match out {
        Some((name, Ok(png))) => {
            // The user's name for it, kept to characters every file system takes.
            let stem: String = name
                .chars()
                .map(|c| match c {
                    c if c.is_alphanumeric() || c == '-' => c.to_ascii_lowercase(),
                    _ => '_',
                })
                .collect();
            let file = format!("{stem}.png");
            if let Err(e) = web::download(&file, "image/png", &png) {
                ui.fail(e);
            }
        }
        Some((_, Err(e))) => ui.fail(e.to_string()),
        None => ui.fail("Select an object to export."),
    }
}

fn export_all(ui: Ui) {
    let out = with(|s| {
        let img = s.display.as_ref()?;
        let mut labels = vec![0u8; img.width * img.height];
        for (k, o) in s.objects.iter().enumerate() {
            for (l, &m) in labels.iter_mut().zip(&o.mask) {
                if m > 0 {
                    *l = (k + 1).min(255) as u8;
                }
            }
        }
        let boxes: Vec<serde_json::Value> = s
            .objects
            .iter()
            .enumerate()
            .map(|(k, o)| serde_json::json!({"label": k + 1, "name": o.name, "box": o.bbox}))
            .collect();
        Some((
            encode_gray_png(&GrayImage::new(img.width, img.height, labels)),
            serde_json::to_vec_pretty(&boxes),
        ))
    });
    match out {
        Some((Ok(png), Ok(json))) => {
            let _ = web::download("labels.png", "image/png", &png);
            let _ = web::download("boxes.json", "application/json", &json);
        }
        _ => ui.fail("Open an image and segment something first."),
    }
}

/// Zooms the viewer, keeping the image point under `at` (a screen position; the viewer's
/// middle when None) where it was.
fn zoom(f: impl Fn(f64) -> f64, at: Option<(f64, f64)>) {
    let Some(c) = canvas::canvas() else {
        return;
    };
    let Some(viewer) = c.parent_element() else {
        return;
    };
    let v = viewer.get_bounding_client_rect();
    let (mx, my) = (v.left() + v.width() / 2.0, v.top() + v.height() / 2.0);
    let (x, y) = at.unwrap_or((mx, my));
    let r = c.get_bounding_client_rect();
    // The point's place on the image, as fractions of its shown size.
    let fx = (x - r.left()) / r.width().max(1.0);
    let fy = (y - r.top()) / r.height().max(1.0);
    with(|s| {
        let z = f(s.zoom).clamp(0.25, 8.0);
        // The image's shown size scales with the zoom; its middle sits at the viewer's plus pan.
        let (w, h) = (r.width() * z / s.zoom, r.height() * z / s.zoom);
        s.pan = (x - mx + w * (0.5 - fx), y - my + h * (0.5 - fy));
        s.zoom = z;
        canvas::place(s);
    });
}

/// Back to the whole image filling the viewer.
fn fit_view() {
    with(|s| {
        (s.zoom, s.pan) = (1.0, (0.0, 0.0));
        canvas::place(s);
    });
}

fn undo(ui: Ui, redo: bool) {
    if with(|s| if redo { s.redo() } else { s.undo() }) {
        ui.sync();
    }
}

/// Masks drawn as outlines, or filled.
fn set_outline(ui: Ui, on: bool) {
    ui.outline.set(on);
    with(|s| {
        s.outline = on;
        canvas::redraw(s);
    });
    autosave::schedule();
}

/// A Refine button or key: not while a propagation is about to replace the object's slices.
fn refine_selected(ui: Ui, v: volume::VolUi, op: refine::Op) {
    if v.running.get_untracked() {
        ui.status
            .set("Wait for the propagation to finish (or cancel it), then refine.".into());
    } else {
        refine::apply(ui, op);
    }
}

/// Keep in range: the bounds typed in the Tools panel (an empty one is open).
fn keep_in_range(ui: Ui, v: volume::VolUi) {
    let bound = |id: &str| {
        document()
            .get_element_by_id(id)
            .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
            .and_then(|e| e.value().trim().parse::<f32>().ok())
    };
    match (bound("keep-lo"), bound("keep-hi")) {
        (None, None) => ui.fail("Type the lowest or the highest value to keep (or both)."),
        (Some(lo), Some(hi)) if lo > hi => {
            ui.fail("The lowest value to keep is above the highest.")
        }
        (lo, hi) => refine_selected(
            ui,
            v,
            refine::Op::InRange {
                lo: lo.unwrap_or(f32::NEG_INFINITY),
                hi: hi.unwrap_or(f32::INFINITY),
            },
        ),
    }
}

/// Shows or hides object `i` (its mask and box on the viewer and the planes).
fn toggle_hidden(ui: Ui, i: usize) {
    with(|s| {
        if let Some(o) = s.objects.get_mut(i) {
            o.hidden = !o.hidden;
        }
    });
    ui.sync();
}

/// Object `i` drawn in `hex` (#rrggbb, from the list's colour picker), undoably.
fn set_color(ui: Ui, i: usize, hex: &str) {
    let channel = |k: usize| {
        hex.get(1 + 2 * k..3 + 2 * k)
            .and_then(|c| u8::from_str_radix(c, 16).ok())
    };
    let (Some(r), Some(g), Some(b)) = (channel(0), channel(1), channel(2)) else {
        return;
    };
    with(|s| {
        if s.objects.get(i).is_some_and(|o| o.color != [r, g, b]) {
            s.checkpoint();
            s.objects[i].color = [r, g, b];
        }
    });
    ui.sync();
}

/// Selects the next object in the list (or the previous one), wrapping around.
fn select_next(ui: Ui, back: bool) {
    with(|s| {
        let n = s.objects.len();
        if n > 0 {
            s.selected = Some(match (s.selected, back) {
                (Some(i), false) => (i + 1) % n,
                (Some(i), true) => (i + n - 1) % n,
                (None, false) => 0,
                (None, true) => n - 1,
            });
        }
    });
    ui.sync();
}

/// Opens the name of object `i` for editing in the list (its text selected).
fn start_rename(ui: Ui, i: usize) {
    ui.renaming.set(Some(i));
    request_animation_frame(|| {
        if let Some(input) = document()
            .get_element_by_id("rename")
            .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
        {
            let _ = input.focus();
            input.select();
        }
    });
}

/// Ends the name editing; `name` (trimmed, if not empty) becomes object `i`'s name, undoably.
fn finish_rename(ui: Ui, i: usize, name: Option<String>) {
    if ui.renaming.get_untracked() != Some(i) {
        return; // already ended (Enter, then the input's blur)
    }
    ui.renaming.set(None);
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(name) = name {
        with(|s| {
            if s.objects.get(i).is_some_and(|o| o.name != name) {
                s.checkpoint();
                s.objects[i].name = name;
            }
        });
    }
    ui.sync();
}

fn delete_selected(ui: Ui) {
    with(|s| {
        if let Some(i) = s.selected {
            s.checkpoint();
            s.objects.remove(i);
            s.selected = if s.objects.is_empty() {
                None
            } else {
                Some(i.min(s.objects.len() - 1))
            };
        }
    });
    ui.sync();
}

/// The pixel at image position (x, y) and its value: on a volume the scan's own (HU on CT) on
/// the slice in view, else the grey level; None outside the image.
fn readout(s: &state::State, x: f32, y: f32) -> Option<String> {
    let img = s.display.as_ref()?;
    let (xi, yi) = (x.floor() as usize, y.floor() as usize);
    if x < 0.0 || y < 0.0 || xi >= img.width || yi >= img.height {
        return None;
    }
    Some(match &s.volume {
        Some(v) => {
            let [w, h, _] = v.volume.size;
            let value = v.volume.data.get((v.z * h + yi) * w + xi)?;
            format!("x {xi} · y {yi} — {value:.1}")
        }
        None => format!("x {xi} · y {yi} — {}", img.data[yi * img.width + xi]),
    })
}

/// Where the brush or eraser would paint: a ring of its size at the pointer (None for boxes).
fn brush_ring(c: &HtmlCanvasElement, ev: &MouseEvent, ui: Ui) -> Option<(f64, f64, f64)> {
    if ui.tool.get_untracked() == Tool::Box {
        return None;
    }
    let viewer = c.parent_element()?.get_bounding_client_rect();
    // CSS pixels per image pixel; `paint` fills a disc 2·radius + 1 pixels across.
    let scale = c.client_width() as f64 / c.width().max(1) as f64;
    let across = (2.0 * ui.brush.get_untracked() + 1.0) * scale;
    Some((
        ev.client_x() as f64 - viewer.left(),
        ev.client_y() as f64 - viewer.top(),
        across,
    ))
}

/// One of the brush outline's numbers as a CSS length (one element, restyled as it moves).
fn ring_px(ui: Ui, part: impl Fn((f64, f64, f64)) -> f64) -> String {
    ui.brush_ring
        .get()
        .map_or_else(String::new, |r| format!("{}px", part(r)))
}

/// What the keys and mouse do, for the list `?` opens (the handlers are in `App`).
const SHORTCUTS: &[(&str, &str)] = &[
    ("Drag", "box around a structure: its mask (Box tool)"),
    (
        "Drag a box's edge",
        "the selected object segmented again from the new box",
    ),
    ("B · R · E", "box, brush, eraser"),
    ("Ctrl+Z · Ctrl+Y", "undo · redo (also Ctrl+Shift+Z)"),
    ("Del", "delete the selected object"),
    ("N · Shift+N", "select the next · previous object"),
    (
        "H · F2",
        "hide or show · rename the selected object (or double-click its name)",
    ),
    ("O", "masks as outlines, or filled"),
    (
        "F · L · G · Shift+G",
        "selected mask: fill holes · keep the largest piece · grow · shrink by a pixel",
    ),
    ("Right-drag", "window (across) and level (up and down)"),
    (
        "Ctrl+wheel · + −",
        "zoom about the pointer · about the middle",
    ),
    ("0", "fit the image to the viewer"),
    ("Middle-drag", "pan"),
    ("Wheel · ↑ ↓ · PgUp PgDn", "volume: next slice · 10 slices"),
    ("[ · ]", "volume: mark the first · last slice"),
    ("P", "volume: propagate the selected object's box"),
    (
        "I",
        "volume: fill the slices between the selected object's masks",
    ),
    (
        "M",
        "volume: show the selected object's long and short axes",
    ),
    (
        "A · U",
        "task: add this image and mask · segment it with UniverSeg",
    ),
    ("Esc", "drop the box being dragged · stop a propagation"),
    ("?", "this list"),
];

/// The mouse drag under way on the viewer.
#[derive(Clone, Copy)]
struct Drag {
    button: i16,
    /// Where it started, in image pixels.
    at: (f32, f32),
    /// The window/level when it started.
    level: f64,
    width: f64,
    /// Where it started on the screen, and the image's pan then.
    screen: (i32, i32),
    pan: (f64, f64),
    /// Box tool: the edges of the selected object's box being moved (left, top, right,
    /// bottom); none for a new box.
    edges: [bool; 4],
}

/// The edges of the selected object's box (where it is drawn) within `tol` image pixels of
/// (x, y): a corner gives two.
fn box_edges(s: &state::State, (x, y): (f32, f32), tol: f32) -> [bool; 4] {
    let z = s.volume.as_ref().map(|v| v.z);
    let Some([x0, y0, x1, y1]) = s
        .selected
        .and_then(|i| s.objects.get(i))
        .filter(|o| !o.hidden && o.box_on(z))
        .and_then(|o| o.bbox)
    else {
        return [false; 4];
    };
    let (along_x, along_y) = (
        (x0 - tol..=x1 + tol).contains(&x),
        (y0 - tol..=y1 + tol).contains(&y),
    );
    let near = |a: f32, b: f32| (a - b).abs() <= tol;
    [
        along_y && near(x, x0),
        along_x && near(y, y0),
        along_y && near(x, x1) && !near(x, x0),
        along_x && near(y, y1) && !near(y, y0),
    ]
}

/// With the Box tool, the selected box's edges a press at image position (x, y) would take:
/// those within 6 screen pixels.
fn grabbed_edges(ui: Ui, c: &HtmlCanvasElement, at: (f32, f32)) -> [bool; 4] {
    if ui.tool.get_untracked() != Tool::Box {
        return [false; 4];
    }
    let tol = 6.0 * c.width() as f32 / c.client_width().max(1) as f32;
    with(|s| box_edges(s, at, tol))
}

/// The resize cursor for grabbing `edges` ("" = the viewer's own).
fn edge_cursor([l, t, r, b]: [bool; 4]) -> &'static str {
    match (l || r, t || b) {
        (true, true) if (l && t) || (r && b) => "nwse-resize",
        (true, true) => "nesw-resize",
        (true, false) => "ew-resize",
        (false, true) => "ns-resize",
        _ => "",
    }
}

#[component]
pub fn App() -> impl IntoView {
    let ui = Ui::new();
    let t = task::TaskUi::new();
    let v = volume::VolUi::new();
    let g = generate::GenUi::new();
    // Measurements follow the objects and the selection.
    Effect::new(move |_| {
        ui.objects.track();
        ui.selected.track();
        v.sync();
    });
    spawn_local(async move { load_model(ui, init_backend(ui).await).await });
    watch_gpu_loss(ui, t, g);
    spawn_local(task::find_weights(ui, t));
    spawn_local(generate::restore(g));
    spawn_local(autosave::restore(ui, v, t));

    let drag = StoredValue::new(None::<Drag>);
    // Where the brush or eraser last painted in this drag (a stroke joins its mouse positions).
    let last_paint = StoredValue::new((0f32, 0f32));

    // Pointer events: mouse, pen and touch alike. The canvas captures the pointer for the
    // drag, so a box may be finished outside it (clamped to the image) instead of ending there.
    let on_down = move |ev: PointerEvent| {
        let Some(c) = canvas::canvas() else { return };
        ev.prevent_default();
        let _ = c.set_pointer_capture(ev.pointer_id());
        let (x, y) = canvas::to_image(&c, ev.offset_x(), ev.offset_y());
        let edges = if ev.button() == 0 {
            grabbed_edges(ui, &c, (x, y))
        } else {
            [false; 4]
        };
        let (level, width, pan) = with(|s| (s.level, s.width, s.pan));
        drag.set_value(Some(Drag {
            button: ev.button(),
            at: (x, y),
            level,
            width,
            screen: (ev.client_x(), ev.client_y()),
            pan,
            edges,
        }));
        if ev.button() == 0 {
            match ui.tool.get_untracked() {
                // On an edge of the selected object's box: that edge moves, and the object is
                // segmented again from the new box. Elsewhere: a new box.
                Tool::Box => with(|s| {
                    s.drag_box = if edges.contains(&true) {
                        s.selected.and_then(|i| s.objects[i].bbox)
                    } else {
                        Some([x, y, x, y])
                    };
                }),
                t => {
                    if with(|s| s.selected.is_none()) {
                        return ui.fail("Select an object to paint on (or draw a box first).");
                    }
                    with(|s| {
                        s.checkpoint();
                        // Painting on a hidden object shows it: no stroke goes unseen.
                        if let Some(i) = s.selected {
                            s.objects[i].hidden = false;
                        }
                    });
                    paint(x, y, ui.brush.get_untracked(), (t == Tool::Brush) as u8);
                    last_paint.set_value((x, y));
                    ui.sync();
                }
            }
        }
    };
    let on_move = move |ev: PointerEvent| {
        let Some(c) = canvas::canvas() else {
            return;
        };
        let (x, y) = canvas::to_image(&c, ev.offset_x(), ev.offset_y());
        ui.readout
            .set(with(|s| readout(s, x, y)).unwrap_or_default());
        ui.brush_ring.set(brush_ring(&c, &ev, ui));
        let Some(d) = drag.get_value() else {
            // The cursor says when a press would take the selected box's edge.
            let edges = grabbed_edges(ui, &c, (x, y));
            let _ = web_sys::HtmlElement::style(&c).set_property("cursor", edge_cursor(edges));
            return;
        };
        let ((x0, y0), (sx, sy)) = (d.at, d.screen);
        match (d.button, ui.tool.get_untracked()) {
            // Middle-drag pans.
            (1, _) => with(|s| {
                let (dx, dy) = ((ev.client_x() - sx) as f64, (ev.client_y() - sy) as f64);
                s.pan = (d.pan.0 + dx, d.pan.1 + dy);
                canvas::place(s);
            }),
            (2, _) => with(|s| {
                // Right-drag: horizontal = width, vertical = level, a grey value per screen pixel
                // (not per image pixel: a large radiograph shown small would jump).
                s.width = (d.width + (ev.client_x() - sx) as f64).clamp(1.0, 512.0);
                s.level = (d.level + (ev.client_y() - sy) as f64).clamp(-128.0, 384.0);
                canvas::redraw(s);
            }),
            (0, Tool::Box) => with(|s| {
                let (w, h) = s
                    .display
                    .as_ref()
                    .map_or((0.0, 0.0), |d| (d.width as f32, d.height as f32));
                let (x, y) = (x.clamp(0.0, w), y.clamp(0.0, h));
                if d.edges.contains(&true) {
                    // The grabbed edges follow the pointer; the box stays at least a pixel wide.
                    let Some(mut b) = s.drag_box else { return };
                    let [l, t, r, bo] = d.edges;
                    if l {
                        b[0] = x.min(b[2] - 1.0);
                    }
                    if t {
                        b[1] = y.min(b[3] - 1.0);
                    }
                    if r {
                        b[2] = x.max(b[0] + 1.0);
                    }
                    if bo {
                        b[3] = y.max(b[1] + 1.0);
                    }
                    s.drag_box = Some(b);
                } else {
                    s.drag_box = Some([x0.min(x), y0.min(y), x0.max(x), y0.max(y)]);
                }
                canvas::redraw_boxes(s);
            }),
            (0, t) => {
                let (radius, value) = (ui.brush.get_untracked(), (t == Tool::Brush) as u8);
                // Mouse moves arrive tens of pixels apart in a quick stroke: paint the way between.
                let (px, py) = last_paint.get_value();
                let steps = ((x - px).hypot(y - py) / (radius as f32 / 2.0).max(0.5))
                    .ceil()
                    .max(1.0);
                for k in 1..=steps as usize {
                    let f = k as f32 / steps;
                    paint(px + (x - px) * f, py + (y - py) * f, radius, value);
                }
                last_paint.set_value((x, y));
                with(|s| canvas::redraw(s));
            }
            _ => {}
        }
    };
    let on_up = move |_ev: PointerEvent| {
        let Some(Drag { button, edges, .. }) = drag.get_value() else {
            return;
        };
        drag.set_value(None);
        if button == 0 && ui.tool.get_untracked() == Tool::Box {
            let b = with(|s| s.drag_box.take());
            // A moved edge segments the selected object again; a new box makes a new one.
            let into = if edges.contains(&true) {
                ui.selected
                    .get_untracked()
                    .and_then(|i| with(|s| Some((i, s.objects.get(i)?.name.clone()))))
            } else {
                None
            };
            if let Some(b) = b.filter(|b| b[2] - b[0] >= 2.0 && b[3] - b[1] >= 2.0) {
                // Corners snap to the pixel under the pointer: integer boxes, as the official scripts use.
                spawn_local(segment_box(ui, b.map(f32::floor), into));
            } else {
                with(|s| canvas::redraw(s));
            }
        } else {
            ui.sync();
        }
    };

    let on_file = move |ev: web_sys::Event| {
        let input: HtmlInputElement = ev.target().unwrap().unchecked_into();
        let files = task::files_of(&ev);
        if !files.is_empty() {
            spawn_local(open_files(ui, v, files));
        }
        input.set_value("");
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        let files: Vec<web_sys::File> = ev
            .data_transfer()
            .and_then(|d| d.files())
            .map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
            .unwrap_or_default();
        let weights = |f: &web_sys::File| {
            let name = f.name().to_ascii_lowercase();
            [".pt", ".pth", ".medseg"].iter().any(|e| name.ends_with(e))
        };
        match files.as_slice() {
            [f] if weights(f) => spawn_local(task::add_weights(ui, t, f.clone())),
            [] => {}
            _ => spawn_local(open_files(ui, v, files)),
        }
    };

    let _resize = window_event_listener(leptos::ev::resize, move |_| with(|s| canvas::redraw(s)));
    let _keys = window_event_listener(leptos::ev::keydown, move |ev| {
        // Keys typed into a field (or moving a slider or a list) are its own; after a click on a
        // checkbox or button the shortcuts still work.
        let in_field = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| match e.tag_name().as_str() {
                "TEXTAREA" | "SELECT" => true,
                "INPUT" => !matches!(
                    e.get_attribute("type").as_deref(),
                    Some("checkbox" | "radio" | "button" | "file" | "color")
                ),
                _ => false,
            });
        if in_field {
            return;
        }
        let ctrl = ev.ctrl_key() || ev.meta_key();
        match (ev.key().as_str(), ctrl) {
            ("z" | "Z", true) => undo(ui, ev.shift_key()),
            ("y", true) => undo(ui, true),
            ("b", false) => ui.tool.set(Tool::Box),
            ("r", false) => ui.tool.set(Tool::Brush),
            ("e", false) => ui.tool.set(Tool::Eraser),
            ("Delete" | "Backspace", false) => delete_selected(ui),
            ("o", false) => set_outline(ui, !ui.outline.get_untracked()),
            ("n" | "N", false) => select_next(ui, ev.shift_key()),
            ("f", false) => refine_selected(ui, v, refine::Op::FillHoles),
            ("l", false) => refine_selected(ui, v, refine::Op::Largest),
            ("g", false) => refine_selected(ui, v, refine::Op::Grow),
            ("G", false) => refine_selected(ui, v, refine::Op::Shrink),
            ("i", false) if volume::is_open() => refine_selected(ui, v, refine::Op::Between),
            ("m", false) if volume::is_open() => volume::show_axes(v, !v.axes.get_untracked()),
            ("h", false) => {
                if let Some(i) = ui.selected.get_untracked() {
                    toggle_hidden(ui, i)
                }
            }
            ("F2", false) => {
                if let Some(i) = ui.selected.get_untracked() {
                    start_rename(ui, i)
                }
            }
            ("+" | "=", false) => zoom(|z| z * 1.25, None),
            ("-", false) => zoom(|z| z / 1.25, None),
            ("0", false) => fit_view(),
            ("ArrowUp" | "PageUp", false) if volume::is_open() => {
                volume::step(ui, v, if ev.key() == "PageUp" { 10 } else { 1 })
            }
            ("ArrowDown" | "PageDown", false) if volume::is_open() => {
                volume::step(ui, v, if ev.key() == "PageDown" { -10 } else { -1 })
            }
            ("[", false) if volume::is_open() => volume::mark(v, 0),
            ("]", false) if volume::is_open() => volume::mark(v, 1),
            ("p", false) if volume::is_open() => spawn_local(volume::run(ui, v, false)),
            ("a", false) => task::add_current(ui, t),
            ("u", false) => spawn_local(task::run_current(ui, t)),
            ("?", _) => ui.help.update(|h| *h = !*h),
            ("Escape", false) if ui.help.get_untracked() => ui.help.set(false),
            // Esc drops a box (or an edge) being dragged, else stops a propagation.
            ("Escape", false) if drag.get_value().is_some() => {
                drag.set_value(None);
                with(|s| {
                    s.drag_box = None;
                    canvas::redraw(s);
                });
            }
            ("Escape", false) if v.running.get_untracked() => volume::cancel(),
            _ => return,
        }
        ev.prevent_default();
    });

    let tool_button = move |t: Tool, label: &'static str, key: &'static str| {
        view! {
            <button class:active=move || ui.tool.get() == t title=format!("{label} ({key})")
                on:click=move |_| ui.tool.set(t)>{label}</button>
        }
    };
    let refine_button = move |op: refine::Op| {
        let (label, key, what) = op.label();
        view! {
            <button title=format!("{what} ({key})") disabled=move || ui.selected.get().is_none()
                on:click=move |_| refine_selected(ui, v, op)>{label}</button>
        }
    };

    view! {
        <div class="app" data-phase=move || ui.phase.get()>
            <header>
                <div class="brand">"medseg"<span>"private segmentation in your browser"</span></div>
                <div class="header-tools">
                    <div class="backend" id="backend">{move || ui.backend.get()}</div>
                    <button id="help-button" class="quiet" title="Keyboard and mouse (?)"
                        on:click=move |_| ui.help.update(|h| *h = !*h)>"?"</button>
                    <button id="clear-data" class="quiet" title="Delete everything this app keeps in this browser (work is saved here as you go)"
                        on:click=move |_| spawn_local(autosave::clear_all(ui))>"Clear data"</button>
                </div>
            </header>
            <main>
                <section class="viewer" on:dragover=|ev: web_sys::DragEvent| ev.prevent_default() on:drop=on_drop
                    on:wheel=move |ev: web_sys::WheelEvent| if ev.ctrl_key() {
                        ev.prevent_default();
                        let at = Some((ev.client_x() as f64, ev.client_y() as f64));
                        zoom(|z| if ev.delta_y() < 0.0 { z * 1.1 } else { z / 1.1 }, at);
                    } else if volume::is_open() {
                        ev.prevent_default();
                        volume::step(ui, v, if ev.delta_y() < 0.0 { 1 } else { -1 });
                    }>
                    <Show when=move || !ui.image_name.get().is_empty()
                        fallback=|| view! { <div class="empty">"Drop a PNG or JPEG image, DICOM files or a NRRD/NIfTI volume here, or press Open."<br/>
                            <small>"Images never leave this computer."</small></div> }>
                        {()}
                    </Show>
                    <div class="brush-ring" class:hidden=move || ui.brush_ring.get().is_none()
                        style:left=move || ring_px(ui, |(x, _, _)| x) style:top=move || ring_px(ui, |(_, y, _)| y)
                        style:width=move || ring_px(ui, |(_, _, d)| d) style:height=move || ring_px(ui, |(_, _, d)| d)></div>
                    <canvas id="view"
                        class:hidden=move || ui.image_name.get().is_empty()
                        on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up
                        on:pointerleave=move |_| { ui.readout.set(String::new()); ui.brush_ring.set(None); }
                        on:mousedown=|ev: MouseEvent| ev.prevent_default()
                        on:contextmenu=|ev: MouseEvent| ev.prevent_default()></canvas>
                </section>
                <aside>
                    <div class="panel">
                        <label class="button primary">"Open image or volume…"
                            <input id="file" type="file" multiple accept=".png,.jpg,.jpeg,.dcm,.nrrd,.nii,.gz,image/png,image/jpeg,application/dicom" on:change=on_file/>
                        </label>
                        <div class="name">{move || ui.image_name.get()}</div>
                    </div>
                    <div class="panel">
                        <h3>"Tools"</h3>
                        <div class="row">{tool_button(Tool::Box, "Box", "B")}{tool_button(Tool::Brush, "Brush", "R")}{tool_button(Tool::Eraser, "Eraser", "E")}</div>
                        <label class="slider">"Brush size"
                            <input type="range" min="1" max="40" prop:value=move || ui.brush.get()
                                on:input=move |ev| ui.brush.set(event_target_value(&ev).parse().unwrap_or(6.0))/></label>
                        <label class="slider">"Mask opacity"
                            <input type="range" min="0" max="1" step="0.05" prop:value=move || ui.opacity.get()
                                on:input=move |ev| {
                                    let v = event_target_value(&ev).parse().unwrap_or(0.45);
                                    ui.opacity.set(v);
                                    with(|s| { s.opacity = v; canvas::redraw(s); });
                                    autosave::schedule();
                                }/></label>
                        <label class="check"><input id="outline" type="checkbox" prop:checked=move || ui.outline.get()
                            on:change=move |ev| set_outline(ui, event_target_checked(&ev))/>"Outlines only (O)"</label>
                        <div class="row refine" aria-label="Refine the selected mask">
                            {[refine::Op::FillHoles, refine::Op::Largest, refine::Op::Grow, refine::Op::Shrink].map(refine_button)}
                        </div>
                        <div class="row settings keep-range">
                            <input id="keep-lo" type="number" step="any" placeholder="from" aria-label="Lowest value kept"/>
                            <input id="keep-hi" type="number" step="any" placeholder="to" aria-label="Highest value kept"/>
                            <button id="keep-in-range" title=refine::Op::InRange { lo: 0.0, hi: 0.0 }.label().2
                                disabled=move || ui.selected.get().is_none() on:click=move |_| keep_in_range(ui, v)>"Keep in range"</button>
                        </div>
                        <div class="row">
                            <button title="Undo (Ctrl+Z)" on:click=move |_| undo(ui, false)>"Undo"</button>
                            <button title="Redo (Ctrl+Shift+Z)" on:click=move |_| undo(ui, true)>"Redo"</button>
                            <button title="Clear all objects" on:click=move |_| { with(|s| { s.checkpoint(); s.objects.clear(); s.selected = None; }); ui.sync(); }>"Clear"</button>
                        </div>
                        <p class="hint">"Right-drag: window/level · Ctrl+wheel or +/−: zoom · middle-drag: pan"</p>
                    </div>
                    <div class="panel">
                        <h3>"Objects"</h3>
                        <ul class="objects">
                            <For each=move || ui.objects.get().into_iter().enumerate() key=|(i, o)| (*i, o.clone()) let:item>
                                {
                                    let (i, (name, color, px, hidden)) = item;
                                    let shown_name = name.clone();
                                    view! {
                                        <li class:selected=move || ui.selected.get() == Some(i) class:hidden-object=hidden
                                            on:click=move |_| { with(|s| s.selected = Some(i)); ui.sync(); }>
                                            <input type="color" class="swatch" value=color title="Colour" aria-label="Colour"
                                                on:click=|ev| ev.stop_propagation()
                                                on:change=move |ev| set_color(ui, i, &event_target_value(&ev))/>
                                            {move || if ui.renaming.get() == Some(i) {
                                                view! {
                                                    <input id="rename" class="rename" value=name.clone() aria-label="Object name" maxlength="80"
                                                        on:click=|ev| ev.stop_propagation()
                                                        on:keydown=move |ev| match ev.key().as_str() {
                                                            "Enter" => finish_rename(ui, i, Some(event_target_value(&ev))),
                                                            "Escape" => finish_rename(ui, i, None),
                                                            _ => {}
                                                        }
                                                        on:blur=move |ev| finish_rename(ui, i, Some(event_target_value(&ev)))/>
                                                }.into_any()
                                            } else {
                                                let name = shown_name.clone();
                                                let tip = format!("{name} · double-click to rename (F2)");
                                                view! {
                                                    <span class="object-name" title=tip
                                                        on:dblclick=move |_| start_rename(ui, i)>{name}</span>
                                                }.into_any()
                                            }}
                                            <small>{format!("{px} px")}</small>
                                            <button class="eye" title=if hidden { "Show (H)" } else { "Hide (H)" }
                                                aria-pressed=if hidden { "true" } else { "false" }
                                                on:click=move |ev| { ev.stop_propagation(); toggle_hidden(ui, i); }>
                                                {if hidden { "Show" } else { "Hide" }}</button>
                                        </li>
                                    }
                                }
                            </For>
                        </ul>
                        <div class="row">
                            <button id="export-mask" on:click=move |_| export_selected(ui)>"Export mask"</button>
                            <button id="export-all" on:click=move |_| export_all(ui)>"Export all"</button>
                            <button id="export-csv" title="Every object's size and the image's values under it, as a table"
                                on:click=move |_| measure::export(ui)>"Measurements (CSV)"</button>
                            <button title="Delete (Del)" on:click=move |_| delete_selected(ui)>"Delete"</button>
                        </div>
                    </div>
                    <volume::VolumePanel ui=ui v=v/>
                    <task::TaskPanel ui=ui t=t/>
                    <generate::GeneratePanel ui=ui g=g t=t/>
                    <div class="panel">
                        <h3>"Evaluation"</h3>
                        <p class="hint">"Open a reference mask (file name containing “mask”) to compare."</p>
                        <div id="metrics">{move || match ui.metrics.get() {
                            Some((d, n)) => format!("DSC {d:.3} · NSD {n:.3} (2 px)"),
                            None => "—".to_string(),
                        }}</div>
                    </div>
                </aside>
            </main>
            <Show when=move || ui.help.get() fallback=|| ()>
                <div class="panel help" id="help" role="dialog" aria-label="Keyboard and mouse">
                    <h3>"Keyboard and mouse"</h3>
                    <dl>{SHORTCUTS.iter().map(|(k, what)| view! { <dt>{*k}</dt><dd>{*what}</dd> }).collect_view()}</dl>
                    <button on:click=move |_| ui.help.set(false)>"Close (Esc)"</button>
                </div>
            </Show>
            <footer>
                <div class="status" id="status">{move || ui.status.get()}</div>
                <div class="readout" id="readout">{move || ui.readout.get()}</div>
                <Show when=move || ui.progress.get().is_some() fallback=|| ()>
                    <div class="progress" class:indeterminate=move || ui.progress.get().unwrap_or(0.0) < 0.0>
                        <div style:width=move || format!("{}%", (ui.progress.get().unwrap_or(0.0).max(0.0) * 100.0) as i32)></div>
                    </div>
                </Show>
                <Show when=move || ui.error.get().is_some() fallback=|| ()>
                    <div class="error" id="error" role="alert">
                        {move || ui.error.get().unwrap_or_default()}
                        <button on:click=move |_| ui.error.set(None)>"×"</button>
                    </div>
                </Show>
            </footer>
        </div>
    }
}

/// Mounts the app. In a worker (no window) it does nothing: there the same wasm serves
/// [`genseg_worker::serve`] or [`encoder::serve`].
pub fn start() {
    if web_sys::window().is_none() {
        return;
    }
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
