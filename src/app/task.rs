//! The "Task" panel: UniverSeg in-context segmentation. A task is a named support set of
//! image–mask pairs, built from the session (MedSAM masks, brush corrections, accepted
//! predictions) or imported (files, a folder, a zip of `NAME_image` / `NAME_mask` pairs).

use super::state::with;
use super::{Ui, storage, web};
use crate::imaging::GrayImage;
use crate::imaging::decode::{decode_image, encode_mask_png};
use crate::pipeline::universeg::{self, Ensemble, SupportItem, UniverSeg, pair_files};
use crate::weights::convert::convert_universeg;
use crate::weights::model_file::{self, Precision};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::io::{Cursor, Write};
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

/// Optional model file placed in `models/` at set-up (see README).
const BUNDLED: &str = "models/universeg.int8.medseg";
/// Written by the build (Trunk.toml's hook): which optional model files it served, so the page
/// asks only for files that exist.
const BUNDLED_LIST: &str = "models/bundled.json";
/// Where a converted model file is kept in the browser's storage.
const STORE_KEY: &str = "universeg-model";
/// Largest archive or checkpoint read into memory.
const MAX_FILE: usize = 512 << 20;

/// One support example with a thumbnail (object URL) for the panel.
#[derive(Clone)]
pub struct SupportEntry {
    pub name: String,
    pub item: SupportItem,
    pub thumb: String,
}

/// Reactive state of the panel.
#[derive(Clone, Copy)]
pub struct TaskUi {
    /// "no-weights", "loading", "ready" or "running" (mirrored in `data-task-phase`).
    phase: RwSignal<&'static str>,
    weights: RwSignal<String>,
    name: RwSignal<String>,
    support: RwSignal<Vec<(String, String)>>,
    members: RwSignal<usize>,
    subset: RwSignal<usize>,
    fp32: RwSignal<bool>,
    /// Size of the wasm heap in MB after the last run: linear memory only grows, so this is
    /// the page's peak (CPU path; GPU buffers are not in it). Shown to tests as data-heap-mb.
    heap_mb: RwSignal<f64>,
}

impl TaskUi {
    pub fn new() -> Self {
        TaskUi {
            phase: RwSignal::new("loading"),
            weights: RwSignal::new("Looking for UniverSeg weights…".into()),
            name: RwSignal::new("Task 1".into()),
            support: RwSignal::new(vec![]),
            members: RwSignal::new(1),
            subset: RwSignal::new(8),
            fp32: RwSignal::new(false),
            heap_mb: RwSignal::new(0.0),
        }
    }

    fn sync(&self) {
        let list = with(|s| {
            s.support
                .iter()
                .map(|e| (e.name.clone(), e.thumb.clone()))
                .collect()
        });
        self.support.set(list);
        super::autosave::schedule();
    }
}

fn wasm_heap_mb() -> f64 {
    let buffer = js_sys::Reflect::get(&wasm_bindgen::memory(), &"buffer".into());
    buffer
        .and_then(|b| js_sys::Reflect::get(&b, &"byteLength".into()))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
        / 1e6
}

/// On the CPU path each chunk runs between two yields to the page: small chunks keep it
/// responsive (about a second per step in wasm); on the GPU larger chunks batch better.
fn tuned(ui: Ui, mut m: UniverSeg) -> UniverSeg {
    if ui.backend.get_untracked().starts_with("CPU") {
        m.chunk = 4;
    }
    m
}

fn describe(m: &UniverSeg, bytes: usize, origin: &str) -> String {
    format!(
        "UniverSeg v1 ready ({:.1} MB, {origin}); input {}×{}.",
        bytes as f64 / 1e6,
        m.size(),
        m.size()
    )
}

/// Whether the build served UniverSeg weights beside the app.
async fn bundled() -> bool {
    let Ok(list) = web::fetch_bytes(BUNDLED_LIST, |_, _| {}).await else {
        return false;
    };
    serde_json::from_slice::<Vec<String>>(&list).is_ok_and(|names| {
        names
            .iter()
            .any(|n| BUNDLED.strip_prefix("models/") == Some(n.as_str()))
    })
}

/// At start: weights kept in this browser, else a model file bundled at set-up, else nothing
/// (the panel says how to add them).
pub async fn find_weights(ui: Ui, t: TaskUi) {
    let Some(device) = wait_for_device().await else {
        return;
    };
    let mut candidates = vec![];
    if let Some(b) = storage::get(STORE_KEY).await {
        candidates.push((b, "kept in this browser"));
    }
    // A missing optional file may come back as the app's index page: only MEDSEGM1 counts.
    if candidates.is_empty() && bundled().await {
        if let Ok(b) = web::fetch_bytes(BUNDLED, |_, _| {}).await {
            if model_file::read_header(&b).is_ok() {
                candidates.push((b, "bundled with the app"));
            }
        }
    }
    for (bytes, origin) in candidates {
        match UniverSeg::from_model_file(&bytes, &device) {
            Ok(m) => {
                t.weights.set(describe(&m, bytes.len(), origin));
                with(|s| s.universeg = Some(tuned(ui, m)));
                t.phase.set("ready");
                return;
            }
            Err(e) => ui.fail(format!(
                "Stored UniverSeg weights are unusable ({e}); add them again."
            )),
        }
    }
    t.weights.set(
        "UniverSeg weights are not installed. Download universeg_v1_nf64_ss64_STA.pt from the \
         official UniverSeg release (github.com/JJGO/UniverSeg, “weights”) and drop it here or \
         on the page: it is converted in this tab and kept in this browser."
            .into(),
    );
    t.phase.set("no-weights");
}

/// The compute device chosen at start-up (MedSAM's loader picks it first).
async fn wait_for_device() -> Option<burn::tensor::Device> {
    for _ in 0..600 {
        if let Some(d) = with(|s| s.device.clone()) {
            return Some(d);
        }
        web::sleep(100).await;
    }
    None
}

/// A dropped or picked `.pt` (official checkpoint) or `.medseg` (our model file).
pub async fn add_weights(ui: Ui, t: TaskUi, file: web_sys::File) {
    ui.error.set(None);
    let name = file.name();
    if file.size() > MAX_FILE as f64 {
        return ui.fail(format!("{name} is too large to be UniverSeg weights."));
    }
    let Some(device) = with(|s| s.device.clone()) else {
        return ui.fail("The app is still starting; try again in a moment.");
    };
    t.phase.set("loading");
    t.weights.set(format!("Reading {name}…"));
    ui.progress.set(Some(-1.0));
    web::yield_now().await;
    let result = async {
        let bytes = web::read_file(&file).await?;
        let file_bytes = if bytes.starts_with(b"PK") {
            t.weights.set(format!("Converting {name}…"));
            web::yield_now().await;
            let p = if t.fp32.get_untracked() {
                Precision::F32
            } else {
                Precision::Int8
            };
            convert_universeg(&bytes, p).map_err(|e| e.to_string())?
        } else {
            bytes
        };
        let m = UniverSeg::from_model_file(&file_bytes, &device).map_err(|e| e.to_string())?;
        let kept = storage::put(STORE_KEY, &file_bytes).await;
        Ok::<_, String>((m, file_bytes.len(), kept))
    }
    .await;
    ui.progress.set(None);
    match result {
        Ok((m, size, kept)) => {
            let origin = match &kept {
                Ok(()) => "kept in this browser",
                Err(_) => "this session only",
            };
            t.weights.set(describe(&m, size, origin));
            with(|s| s.universeg = Some(tuned(ui, m)));
            t.phase.set("ready");
            if let Err(e) = kept {
                ui.fail(format!("UniverSeg works now but could not be kept: {e}"));
            }
        }
        Err(e) => {
            let had = with(|s| s.universeg.is_some());
            t.phase.set(if had { "ready" } else { "no-weights" });
            if !had {
                t.weights
                    .set("No UniverSeg weights yet: drop the official .pt file here.".into());
            }
            ui.fail(format!("{name}: {e}"));
        }
    }
}

/// Removes the weights from this page and from the browser's storage.
pub async fn forget_weights(ui: Ui, t: TaskUi) {
    with(|s| s.universeg = None);
    t.phase.set("no-weights");
    t.weights.set(
        "UniverSeg weights removed from this browser; drop the .pt file to add them again.".into(),
    );
    if let Err(e) = storage::delete(STORE_KEY).await {
        ui.fail(format!("Could not remove the stored weights: {e}"));
    }
}

/// Small RGB preview: the image with the label tinted.
pub(super) fn thumbnail(item: &SupportItem, side: usize) -> Option<String> {
    let n = (item.image.len() as f64).sqrt() as usize;
    let step = (n / side).max(1);
    let side = n / step;
    let mut rgb = Vec::with_capacity(side * side * 3);
    for y in 0..side {
        for x in 0..side {
            let i = y * step * n + x * step;
            let g = (item.image[i] * 255.0).clamp(0.0, 255.0);
            let l = item.label[i];
            let mix = |c: f32| (g * (1.0 - 0.45 * l) + c * 0.45 * l) as u8;
            rgb.extend_from_slice(&[mix(255.0), mix(190.0), mix(0.0)]);
        }
    }
    let img = image::RgbImage::from_raw(side as u32, side as u32, rgb)?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    web::object_url(&png, "image/png").ok()
}

pub(super) fn push_support(t: TaskUi, name: String, item: SupportItem) {
    let thumb = thumbnail(&item, 64).unwrap_or_default();
    with(|s| s.support.push(SupportEntry { name, item, thumb }));
    t.sync();
}

fn require_model(ui: Ui) -> Option<UniverSeg> {
    let m = with(|s| s.universeg.clone());
    if m.is_none() {
        ui.fail("Add the UniverSeg weights first (see the Task panel).");
    }
    m
}

/// The current image with the selected object's mask as a new support example.
pub fn add_current(ui: Ui, t: TaskUi) {
    let pair = with(|s| {
        // The image as the models see it (on a volume: the slice windowed over the volume, not
        // the display preset).
        let img = s.image.as_ref()?.luma();
        let o = s.objects.get(s.selected?)?;
        Some((img, o.mask.clone(), o.name.clone()))
    });
    let Some((img, mask, obj)) = pair else {
        return ui
            .fail("Open an image and select a segmented object to add it to the support set.");
    };
    let mask = GrayImage::new(img.width, img.height, mask);
    match universeg::prepare_pair(&img, &mask, universeg::SIZE) {
        Ok(item) => {
            let name = format!("{} · {obj}", ui.image_name.get_untracked());
            push_support(t, name, item);
            ui.status.set(format!(
                "Added to the support set ({} examples).",
                with(|s| s.support.len())
            ));
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

/// Files from a picker, a folder or a zip → support pairs. Good pairs are added; every bad one
/// is named in one message.
pub async fn import(ui: Ui, t: TaskUi, files: Vec<web_sys::File>) {
    ui.error.set(None);
    ui.progress.set(Some(0.0));
    let mut named: Vec<(String, Vec<u8>)> = vec![];
    let mut problems: Vec<String> = vec![];
    for f in &files {
        let name = f.name();
        if f.size() > MAX_FILE as f64 {
            problems.push(format!("{name}: too large"));
            continue;
        }
        match web::read_file(f).await {
            Ok(b) if name.to_ascii_lowercase().ends_with(".zip") => {
                match crate::archive::read_zip(&b).map_err(|e| e.to_string()) {
                    Ok(entries) => named.extend(entries),
                    Err(e) => problems.push(format!("{name}: {e}")),
                }
            }
            Ok(b) => named.push((name, b)),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let pairs = match pair_files(&names) {
        Ok(p) => p,
        Err(e) => {
            problems.push(e.to_string());
            vec![]
        }
    };
    let bytes_of = |n: &str| {
        named
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, b)| b.as_slice())
    };
    let mut added = 0;
    for (k, (key, img, mask)) in pairs.iter().enumerate() {
        ui.progress.set(Some(k as f64 / pairs.len() as f64));
        let item = (|| {
            let i = decode_image(bytes_of(img).unwrap_or_default())?.luma();
            let mk = decode_image(bytes_of(mask).unwrap_or_default())?.luma();
            universeg::prepare_pair(&i, &mk, universeg::SIZE)
        })();
        match item {
            Ok(item) => {
                push_support(t, key.clone(), item);
                added += 1;
            }
            Err(e) => problems.push(format!("{key}: {e}")),
        }
        if k % 8 == 7 {
            web::yield_now().await;
        }
    }
    ui.progress.set(None);
    ui.status.set(format!(
        "Imported {added} support pairs ({} in the set).",
        with(|s| s.support.len())
    ));
    if !problems.is_empty() {
        ui.fail(format!(
            "Some files were not imported: {}",
            problems.join("; ")
        ));
    }
}

pub fn clear(t: TaskUi) {
    with(|s| {
        for e in s.support.drain(..) {
            let _ = web_sys::Url::revoke_object_url(&e.thumb);
        }
    });
    t.sync();
}

pub fn remove(t: TaskUi, i: usize) {
    with(|s| {
        if i < s.support.len() {
            let e = s.support.remove(i);
            let _ = web_sys::Url::revoke_object_url(&e.thumb);
        }
    });
    t.sync();
}

fn ensemble(t: TaskUi) -> Ensemble {
    Ensemble {
        members: t.members.get_untracked().max(1),
        subset: t.subset.get_untracked().max(1),
        seed: 0,
    }
}

fn ready_support(ui: Ui) -> Option<(UniverSeg, Vec<SupportItem>)> {
    let m = require_model(ui)?;
    let support: Vec<SupportItem> = with(|s| s.support.iter().map(|e| e.item.clone()).collect());
    if support.is_empty() {
        ui.fail("The support set is empty: add the current mask or import image–mask pairs.");
        return None;
    }
    Some((m, support))
}

/// Segments the open image with the task; the result becomes a new object (undoable), which
/// can be corrected with the brush and added back to the support set.
pub async fn run_current(ui: Ui, t: TaskUi) {
    let Some((m, support)) = ready_support(ui) else {
        return;
    };
    let Some(img) = with(|s| s.image.as_ref().map(|i| i.luma())) else {
        return ui.fail("Open an image to segment.");
    };
    t.phase.set("running");
    ui.progress.set(Some(-1.0));
    ui.status
        .set(format!("UniverSeg with {} examples…", support.len()));
    web::yield_now().await;
    let t0 = js_sys::Date::now();
    let mut pace = async |f: f32| {
        ui.progress.set(Some(f as f64));
        web::yield_now().await
    };
    let result = m.segment(&img, &support, &ensemble(t), &mut pace).await;
    ui.progress.set(None);
    t.heap_mb.set(wasm_heap_mb());
    t.phase.set("ready");
    match result {
        Ok(mask) => {
            let task = t.name.get_untracked();
            with(|s| {
                s.checkpoint();
                let i = s.new_object(None, mask);
                s.objects[i].name = format!("{task} {}", s.next_id);
                s.selected = Some(i);
            });
            ui.status.set(format!(
                "UniverSeg mask in {:.0} ms from {} examples.",
                js_sys::Date::now() - t0,
                support.len()
            ));
            ui.sync();
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

/// Segments the marked slices of the open volume (all of them without marks) with the task; the
/// result is one new object spanning those slices.
pub async fn run_volume(ui: Ui, t: TaskUi) {
    let Some((m, support)) = ready_support(ui) else {
        return;
    };
    let Some(slices) = super::volume::slices_to_run() else {
        return ui.fail("Open a volume (.nrrd, .nii, .nii.gz) to run the task on its slices.");
    };
    t.phase.set("running");
    let t0 = js_sys::Date::now();
    let n = slices.len();
    let mut masks = vec![];
    for (k, (z, img)) in slices.iter().enumerate() {
        ui.status
            .set(format!("UniverSeg: slice {} ({} of {n})…", z + 1, k + 1));
        let mut pace = async |f: f32| {
            ui.progress.set(Some((k as f64 + f as f64) / n as f64));
            web::yield_now().await
        };
        match m.segment(img, &support, &ensemble(t), &mut pace).await {
            Ok(mask) => masks.push((*z, mask)),
            Err(e) => {
                ui.progress.set(None);
                t.phase.set("ready");
                return ui.fail(format!("slice {}: {e}", z + 1));
            }
        }
    }
    ui.progress.set(None);
    t.phase.set("ready");
    let task = t.name.get_untracked();
    with(|s| {
        s.checkpoint();
        let i = s.new_object(None, vec![]);
        s.objects[i].name = format!("{task} {}", s.next_id);
        for (z, mask) in masks {
            if let Some(slot) = s.objects[i].slices.get_mut(z) {
                *slot = mask.contains(&1).then(|| std::rc::Rc::new(mask));
            }
        }
        s.selected = Some(i);
        s.load_view();
    });
    ui.status.set(format!(
        "UniverSeg on {n} slices in {:.1} s from {} examples.",
        (js_sys::Date::now() - t0) / 1000.0,
        support.len()
    ));
    ui.sync();
}

/// Segments a batch of image files and offers their masks as one zip download.
pub async fn run_batch(ui: Ui, t: TaskUi, files: Vec<web_sys::File>) {
    let Some((m, support)) = ready_support(ui) else {
        return;
    };
    t.phase.set("running");
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    let mut problems = vec![];
    let mut done = 0;
    for (k, f) in files.iter().enumerate() {
        ui.progress.set(Some(k as f64 / files.len() as f64));
        ui.status
            .set(format!("UniverSeg: image {} of {}…", k + 1, files.len()));
        web::yield_now().await;
        let name = f.name();
        let out = async {
            let bytes = web::read_file(f).await?;
            let img = decode_image(&bytes).map_err(|e| e.to_string())?.luma();
            let n = files.len() as f64;
            let mut pace = async |f: f32| {
                ui.progress.set(Some((k as f64 + f as f64) / n));
                web::yield_now().await
            };
            let mask = m
                .segment(&img, &support, &ensemble(t), &mut pace)
                .await
                .map_err(|e| e.to_string())?;
            encode_mask_png(&mask, img.width, img.height).map_err(|e| e.to_string())
        }
        .await;
        match out {
            Ok(png) => {
                let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
                let ok = zip.start_file(format!("{stem}_mask.png"), opts).is_ok()
                    && zip.write_all(&png).is_ok();
                if ok {
                    done += 1;
                }
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    ui.progress.set(None);
    t.phase.set("ready");
    if done > 0 {
        match zip.finish() {
            Ok(c) => {
                let _ = web::download("universeg_masks.zip", "application/zip", &c.into_inner());
                ui.status
                    .set(format!("{done} masks exported as universeg_masks.zip."));
            }
            Err(e) => problems.push(format!("zip: {e}")),
        }
    }
    if !problems.is_empty() {
        ui.fail(format!("Not segmented: {}", problems.join("; ")));
    }
}

pub(super) fn files_of(ev: &web_sys::Event) -> Vec<web_sys::File> {
    let input: HtmlInputElement = ev.target().unwrap().unchecked_into();
    let list = input.files();
    let files = list
        .map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
        .unwrap_or_default();
    input.set_value("");
    files
}

#[component]
pub fn TaskPanel(ui: Ui, t: TaskUi) -> impl IntoView {
    let ready = move || matches!(t.phase.get(), "ready" | "running");
    // `webkitdirectory` (pick a whole folder) is not among leptos's known attributes.
    let folder = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = folder.get() {
            let _ = el.set_attribute("webkitdirectory", "");
        }
    });
    view! {
        <div class="panel task" data-task-phase=move || t.phase.get() data-heap-mb=move || format!("{:.0}", t.heap_mb.get())>
            <h3>"Task · UniverSeg"</h3>
            <p class="hint" id="task-weights">{move || t.weights.get()}</p>
            <div class="row">
                <label class="button">"Weights…"
                    <input id="universeg-weights" type="file" accept=".pt,.pth,.medseg"
                        on:change=move |ev| {
                            if let Some(f) = files_of(&ev).into_iter().next() {
                                spawn_local(add_weights(ui, t, f));
                            }
                        }/>
                </label>
                <label class="check" title="Keep full-precision weights (4× larger)">
                    <input type="checkbox" prop:checked=move || t.fp32.get()
                        on:change=move |ev| t.fp32.set(event_target_checked(&ev))/>"fp32"</label>
                <Show when=ready fallback=|| ()>
                    <button id="universeg-forget" title="Remove the weights from this browser"
                        on:click=move |_| spawn_local(forget_weights(ui, t))>"Forget"</button>
                </Show>
            </div>
            <input class="task-name" type="text" prop:value=move || t.name.get()
                    on:input=move |ev| t.name.set(event_target_value(&ev)) aria-label="Task name"/>
                <div class="row">
                    <button id="support-add" title="Add the image with the selected mask (A)"
                        on:click=move |_| add_current(ui, t)>"Add current"</button>
                    <label class="button" title="Image–mask pairs: NAME_image.png + NAME_mask.png, or a zip">"Import…"
                        <input id="support-import" type="file" multiple=true accept=".png,.jpg,.jpeg,.zip"
                            on:change=move |ev| spawn_local(import(ui, t, files_of(&ev)))/>
                    </label>
                    <label class="button" title="A folder of image–mask pairs">"Folder…"
                        <input type="file" multiple=true node_ref=folder
                            on:change=move |ev| spawn_local(import(ui, t, files_of(&ev)))/>
                    </label>
                </div>
                <ul class="support" id="support-list">
                    <For each=move || t.support.get().into_iter().enumerate() key=|(i, e)| (*i, e.0.clone()) let:entry>
                        <li title=entry.1.0.clone()>
                            <img src=entry.1.1.clone() alt=entry.1.0.clone()/>
                            <button class="remove" title="Remove" on:click=move |_| remove(t, entry.0)>"×"</button>
                        </li>
                    </For>
                </ul>
                <div class="row between">
                    <span class="hint">{move || format!("{} examples", t.support.get().len())}</span>
                    <button id="support-clear" title="Remove every example" on:click=move |_| clear(t)>"Clear set"</button>
                </div>
                <div class="row settings">
                    <label title="Predictions averaged, each from a random subset">"Ensemble"
                        <input type="number" min="1" max="32" prop:value=move || t.members.get()
                            on:change=move |ev| t.members.set(event_target_value(&ev).parse().unwrap_or(1))/></label>
                    <label title="Examples per prediction when ensembling">"Subset"
                        <input type="number" min="1" max="128" prop:value=move || t.subset.get()
                            on:change=move |ev| t.subset.set(event_target_value(&ev).parse().unwrap_or(8))/></label>
                </div>
                <div class="row">
                    <button id="task-run" class="primary-action" title="Segment the open image (U)"
                        prop:disabled=move || t.phase.get() == "running"
                        on:click=move |_| spawn_local(run_current(ui, t))>"Segment image"</button>
                    <button id="task-run-volume" title="Segment the marked slices of the open volume (all without marks)"
                        prop:disabled=move || t.phase.get() == "running"
                        on:click=move |_| spawn_local(run_volume(ui, t))>"Volume"</button>
                    <label class="button" title="Segment several images; masks download as a zip">"Batch…"
                        <input type="file" multiple=true accept=".png,.jpg,.jpeg"
                            on:change=move |ev| spawn_local(run_batch(ui, t, files_of(&ev)))/>
                    </label>
                </div>
        </div>
    }
}
