//! The "Generate" panel: GenSeg in the tab. The labelled pairs are the task's support set
//! (MedSAM masks, brush corrections, imports); training runs in a worker (`genseg_worker`) with
//! live losses, pause/resume/cancel and a time budget; then a gallery of synthetic pairs from
//! new masks, their export, their addition to the support set, and segmentation with the
//! trained segmenter.

use super::genseg_worker::{self, FromWorker, ToWorker};
use super::state::with;
use super::task::{self, TaskUi};
use super::{Ui, storage, web};
use crate::archive::write_zip;
use crate::genseg::nets::NetConfig;
use crate::genseg::{GenSegModel, Losses, Pair, TrainConfig, pairs};
use crate::imaging::decode::{encode_gray_png, encode_mask_png};
use crate::pipeline::universeg::{self, SupportItem};
use crate::random::SplitMix;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Where trained weights are kept in the browser's storage.
const STORE_KEY: &str = "genseg-model";
/// Synthetic pairs shown in the gallery.
const GALLERY: usize = 8;

/// Reactive state of the panel (the model and gallery pairs live in `State`).
#[derive(Clone, Copy)]
pub struct GenUi {
    /// "idle", "training", "paused" or "trained" (mirrored in `data-genseg-phase`).
    phase: RwSignal<&'static str>,
    size: RwSignal<usize>,
    width: RwSignal<usize>,
    iterations: RwSignal<usize>,
    /// Time budget in minutes (0: none).
    minutes: RwSignal<f64>,
    history: RwSignal<Vec<Losses>>,
    gallery: RwSignal<Vec<String>>,
    info: RwSignal<String>,
}

impl GenUi {
    pub fn new() -> Self {
        GenUi {
            phase: RwSignal::new("idle"),
            size: RwSignal::new(128),
            width: RwSignal::new(8),
            iterations: RwSignal::new(200),
            minutes: RwSignal::new(15.0),
            history: RwSignal::new(vec![]),
            gallery: RwSignal::new(vec![]),
            info: RwSignal::new("Train on the task's examples (at least 2).".into()),
        }
    }
}

/// Synthetic pairs of the gallery, at the model's size.
pub type Synthetic = Vec<Pair>;

fn set_model(g: GenUi, m: GenSegModel, origin: &str) {
    let c = m.config;
    g.info.set(format!(
        "Trained GenSeg ready ({}², width {}, {origin}).",
        c.net.size, c.net.ngf
    ));
    with(|s| s.genseg = Some(m));
    g.phase.set("trained");
}

/// At start: weights kept in this browser, if any.
pub async fn restore(g: GenUi) {
    let Some(bytes) = storage::get(STORE_KEY).await else {
        return;
    };
    for _ in 0..600 {
        if let Some(dev) = with(|s| s.device.clone()) {
            if let Ok(m) = GenSegModel::from_bytes(&bytes, &dev) {
                set_model(g, m, "kept in this browser");
            }
            return;
        }
        web::sleep(100).await;
    }
}

/// The task's examples as training pairs at `size`; every unusable one is named.
fn training_pairs(size: usize) -> Result<Vec<Pair>, String> {
    let items: Vec<(String, SupportItem)> = with(|s| {
        s.support
            .iter()
            .map(|e| (e.name.clone(), e.item.clone()))
            .collect()
    });
    let mut out = vec![];
    let mut problems = vec![];
    for (name, item) in items {
        let (img, mask) = Pair {
            image: item.image,
            mask: item.label,
        }
        .to_gray();
        match pairs::prepare(&name, &img, &mask, size) {
            Ok(p) => out.push(p),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

pub fn train(ui: Ui, g: GenUi) {
    if matches!(g.phase.get_untracked(), "training" | "paused") {
        return;
    }
    ui.error.set(None);
    if with(|s| s.device.is_none()) {
        return ui.fail("The app is still starting; try again in a moment.");
    }
    let size = g.size.get_untracked();
    let net = NetConfig::with_width(size, g.width.get_untracked().clamp(1, 64));
    let prepared = net.check().and_then(|()| {
        training_pairs(size).and_then(|p| pairs::split(p, 0).map_err(|e| e.to_string()))
    });
    let (train, val) = match prepared {
        Ok(v) => v,
        Err(e) => return ui.fail(format!("GenSeg cannot train: {e}")),
    };
    let total = g.iterations.get_untracked().max(1);
    let job = ToWorker::Train {
        config: TrainConfig::new(net),
        iterations: total,
        minutes: g.minutes.get_untracked().max(0.0),
        webgpu: ui.on_webgpu(),
        n_train: train.len(),
        n_val: val.len(),
    };
    g.history.set(vec![]);
    g.phase.set("training");
    ui.progress.set(Some(0.0));
    ui.status
        .set("GenSeg: starting the training worker…".into());
    let started =
        genseg_worker::start(
            job,
            genseg_worker::bulk(&train, &val),
            move |msg, bulk| match msg {
                FromWorker::Ready => {}
                FromWorker::Started { backend } => {
                    ui.status.set(format!("GenSeg: training on {backend}…"))
                }
                FromWorker::Progress {
                    iteration,
                    losses,
                    ms_per_iteration,
                } => {
                    g.history.update(|h| h.push(losses));
                    ui.progress.set(Some(iteration as f64 / total as f64));
                    ui.status.set(format!(
                        "GenSeg: iteration {iteration} of {total} ({ms_per_iteration:.0} ms each)"
                    ));
                }
                FromWorker::Done {
                    iterations,
                    seconds,
                    stopped,
                } => {
                    genseg_worker::stop();
                    spawn_local(finish(ui, g, bulk, iterations, seconds, stopped));
                }
                FromWorker::Failed { message } => {
                    genseg_worker::stop();
                    g.phase.set("idle");
                    ui.fail(format!("GenSeg training stopped: {message}"));
                }
            },
        );
    if let Err(e) = started {
        g.phase.set("idle");
        ui.fail(format!("GenSeg could not start its training worker: {e}"));
    }
}

/// The worker's weights become the page's model; then a gallery and a copy in this browser.
async fn finish(
    ui: Ui,
    g: GenUi,
    weights: Vec<u8>,
    iterations: usize,
    seconds: f64,
    stopped: Option<String>,
) {
    ui.progress.set(None);
    let Some(device) = with(|s| s.device.clone()) else {
        return;
    };
    match GenSegModel::from_bytes(&weights, &device) {
        Ok(m) => set_model(g, m, "this session"),
        Err(e) => {
            g.phase.set("idle");
            return ui.fail(format!("The trained weights could not be loaded: {e}"));
        }
    }
    ui.status.set(match stopped {
        Some(why) => format!(
            "GenSeg stopped ({why}) after {iterations} iterations in {seconds:.1} s; kept what it learnt."
        ),
        None => format!("GenSeg trained: {iterations} iterations in {seconds:.1} s."),
    });
    sample(ui, g).await;
    save(ui, g, weights).await;
}

pub fn pause(g: GenUi) {
    match g.phase.get_untracked() {
        "training" => {
            g.phase.set("paused");
            genseg_worker::control(ToWorker::Pause);
        }
        "paused" => {
            g.phase.set("training");
            genseg_worker::control(ToWorker::Resume);
        }
        _ => {}
    }
}

fn require(ui: Ui) -> Option<GenSegModel> {
    let m = with(|s| s.genseg.clone());
    if m.is_none() {
        ui.fail("Train GenSeg first (or load trained weights).");
    }
    m
}

/// New masks (augmented from the task's examples) and their generated images.
pub async fn sample(ui: Ui, g: GenUi) {
    let Some(m) = require(ui) else { return };
    let size = m.config.net.size;
    let masks: Vec<Vec<f32>> = match training_pairs(size) {
        Ok(p) if !p.is_empty() => p.into_iter().map(|p| p.mask).collect(),
        _ => return ui.fail("The task has no usable examples to draw new masks from."),
    };
    let mut rng = SplitMix(js_sys::Date::now() as u64);
    let mut out: Synthetic = vec![];
    for _ in 0..GALLERY {
        match m.synthetic_pair(&masks, &mut rng).await {
            Ok(p) => out.push(p),
            Err(e) => return ui.fail(format!("GenSeg could not generate: {e}")),
        }
        web::yield_now().await;
    }
    let thumbs = out
        .iter()
        .map(|p| {
            task::thumbnail(
                &SupportItem {
                    image: p.image.clone(),
                    label: p.mask.clone(),
                },
                96,
            )
            .unwrap_or_default()
        })
        .collect();
    for u in g.gallery.get_untracked() {
        let _ = web_sys::Url::revoke_object_url(&u);
    }
    g.gallery.set(thumbs);
    with(|s| s.synthetic = out);
}

/// The gallery as a zip of `synth_NNN_image.png` + `synth_NNN_mask.png`.
pub fn export(ui: Ui) {
    let pairs = with(|s| s.synthetic.clone());
    if pairs.is_empty() {
        return ui.fail("No synthetic pairs yet: train or press New samples.");
    }
    let result = (|| -> Result<Vec<u8>, String> {
        let mut files = vec![];
        for (k, p) in pairs.iter().enumerate() {
            let (img, mask) = p.to_gray();
            let im = encode_gray_png(&img).map_err(|e| e.to_string())?;
            let mk =
                encode_mask_png(&mask.data, mask.width, mask.height).map_err(|e| e.to_string())?;
            files.push((format!("synth_{k:03}_image.png"), im));
            files.push((format!("synth_{k:03}_mask.png"), mk));
        }
        let entries: Vec<(String, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.clone(), b.as_slice()))
            .collect();
        write_zip(&entries).map_err(|e| e.to_string())
    })();
    match result.and_then(|b| web::download("genseg_pairs.zip", "application/zip", &b)) {
        Ok(()) => ui.status.set(format!(
            "{} synthetic pairs exported as genseg_pairs.zip.",
            pairs.len()
        )),
        Err(e) => ui.fail(format!("Export failed: {e}")),
    }
}

/// Adds the gallery's pairs to the task's support set (UniverSeg).
pub fn add_to_support(ui: Ui, t: TaskUi) {
    let pairs = with(|s| s.synthetic.clone());
    if pairs.is_empty() {
        return ui.fail("No synthetic pairs yet: train or press New samples.");
    }
    for (k, p) in pairs.iter().enumerate() {
        let (im, mk) = p.to_gray();
        match universeg::prepare_pair(&im, &mk, universeg::SIZE) {
            Ok(item) => task::push_support(t, format!("GenSeg synthetic {}", k + 1), item),
            Err(e) => return ui.fail(e.to_string()),
        }
    }
    ui.status.set(format!(
        "Added {} synthetic pairs to the support set ({} examples).",
        pairs.len(),
        with(|s| s.support.len())
    ));
}

/// Segments the open image with the trained segmenter; the result is a new object.
pub async fn segment(ui: Ui) {
    let Some(m) = require(ui) else { return };
    let Some(img) = with(|s| s.image.as_ref().map(|i| i.luma())) else {
        return ui.fail("Open an image to segment.");
    };
    let t0 = js_sys::Date::now();
    match m.segment_image(&img).await {
        Ok(mask) => {
            with(|s| {
                s.checkpoint();
                let i = s.new_object(None, mask);
                s.objects[i].name = format!("GenSeg {}", s.next_id);
                s.selected = Some(i);
            });
            ui.status.set(format!(
                "GenSeg segmenter mask in {:.0} ms.",
                js_sys::Date::now() - t0
            ));
            ui.sync();
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

/// Keeps the trained weights in this browser.
async fn save(ui: Ui, g: GenUi, weights: Vec<u8>) {
    match storage::put(STORE_KEY, &weights).await {
        Ok(()) => g
            .info
            .update(|i| *i = i.replace("this session", "kept in this browser")),
        Err(e) => ui.fail(format!(
            "GenSeg works now but its weights could not be kept: {e}"
        )),
    }
}

/// Downloads the trained weights as a model file.
pub async fn download(ui: Ui) {
    let Some(m) = require(ui) else { return };
    match m.to_bytes().await {
        Ok(b) => {
            if let Err(e) = web::download("genseg.medseg", "application/octet-stream", &b) {
                ui.fail(e);
            }
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

/// Loads weights from a file written by Save (or `medseg genseg train`).
pub async fn load(ui: Ui, g: GenUi, file: web_sys::File) {
    let Some(dev) = with(|s| s.device.clone()) else {
        return ui.fail("The app is still starting; try again in a moment.");
    };
    let name = file.name();
    let result = async {
        let b = web::read_file(&file).await?;
        let m = GenSegModel::from_bytes(&b, &dev).map_err(|e| e.to_string())?;
        Ok::<_, String>((m, b))
    }
    .await;
    match result {
        Ok((m, b)) => {
            set_model(g, m, &name);
            if let Err(e) = storage::put(STORE_KEY, &b).await {
                ui.fail(format!(
                    "Loaded, but could not be kept in this browser: {e}"
                ));
            }
        }
        Err(e) => ui.fail(format!("{name}: {e}")),
    }
}

/// Loss curves as SVG polylines, each series scaled to its own maximum.
fn plot(history: &[Losses]) -> Vec<(&'static str, &'static str, String)> {
    type Pick = fn(&Losses) -> f32;
    let series: [(&str, &str, Pick); 4] = [
        ("segmenter (real)", "#2f7de1", |l| l.seg_real),
        ("segmenter (synthetic)", "#e0a100", |l| l.seg_synth),
        ("held-out", "#2bb673", |l| l.seg_val),
        ("generator L1", "#d9534f", |l| l.g_l1),
    ];
    let n = history.len().max(2) - 1;
    series
        .iter()
        .filter_map(|(name, color, pick)| {
            let v: Vec<f32> = history.iter().map(pick).collect();
            let max = v
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold(0.0f32, f32::max);
            (max > 0.0).then(|| {
                let pts = v
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.is_finite())
                    .map(|(i, x)| {
                        format!(
                            "{:.1},{:.1}",
                            i as f32 * 300.0 / n as f32,
                            90.0 - 85.0 * x / max
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                (*name, *color, pts)
            })
        })
        .collect()
}

#[component]
pub fn GeneratePanel(ui: Ui, g: GenUi, t: TaskUi) -> impl IntoView {
    let busy = move || matches!(g.phase.get(), "training" | "paused");
    let trained = move || g.phase.get() == "trained";
    let num = |sig: RwSignal<usize>, default: usize| {
        move |ev: web_sys::Event| sig.set(event_target_value(&ev).parse().unwrap_or(default))
    };
    view! {
        <div class="panel generate" data-genseg-phase=move || g.phase.get()
            data-genseg-iterations=move || g.history.get().len()>
            <h3>"Generate · GenSeg"</h3>
            <p class="hint" id="genseg-info">{move || g.info.get()}</p>
            <div class="row settings">
                <label title="Training size in pixels">"Size"
                    <select id="genseg-size" prop:disabled=busy on:change=num(g.size, 128)>
                        {[32usize, 64, 128, 256].into_iter().map(|v| view! {
                            <option value=v.to_string() selected=move || g.size.get() == v>{format!("{v}²")}</option>
                        }).collect_view()}
                    </select></label>
                <label title="Network width (GenSeg: 64; smaller is faster)">"Width"
                    <input id="genseg-width" type="number" min="1" max="64" prop:disabled=busy
                        prop:value=move || g.width.get() on:change=num(g.width, 8)/></label>
                <label title="Training iterations">"Iterations"
                    <input id="genseg-iterations" type="number" min="1" max="100000" prop:disabled=busy
                        prop:value=move || g.iterations.get() on:change=num(g.iterations, 200)/></label>
                <label title="Stop after this many minutes (0: no limit), whichever comes first">"Minutes"
                    <input id="genseg-minutes" type="number" min="0" step="any" prop:disabled=busy
                        prop:value=move || g.minutes.get()
                        on:change=move |ev| g.minutes.set(event_target_value(&ev).parse().unwrap_or(15.0))/></label>
            </div>
            <div class="row">
                <button id="genseg-train" class="primary-action" prop:disabled=busy
                    title="Train on the task's examples" on:click=move |_| train(ui, g)>"Train"</button>
                <button id="genseg-pause" prop:disabled=move || !busy()
                    on:click=move |_| pause(g)>{move || if g.phase.get() == "paused" { "Resume" } else { "Pause" }}</button>
                <button id="genseg-cancel" prop:disabled=move || !busy()
                    title="Stop and keep what it learnt" on:click=move |_| genseg_worker::control(ToWorker::Cancel)>"Cancel"</button>
            </div>
            <Show when=move || !g.history.get().is_empty() fallback=|| ()>
                <svg class="plot" id="genseg-plot" viewBox="0 0 300 92" preserveAspectRatio="none">
                    {move || plot(&g.history.get()).into_iter().map(|(_, color, pts)| view! {
                        <polyline points=pts fill="none" stroke=color stroke-width="1.5" vector-effect="non-scaling-stroke"/>
                    }).collect_view()}
                </svg>
                <div class="legend">
                    {move || plot(&g.history.get()).into_iter().map(|(name, color, _)| view! {
                        <span><i style:background=color></i>{name}</span>
                    }).collect_view()}
                </div>
            </Show>
            <Show when=trained fallback=|| ()>
                <ul class="gallery" id="genseg-gallery">
                    <For each=move || g.gallery.get().into_iter().enumerate() key=|(i, u)| (*i, u.clone()) let:item>
                        <li><img src=item.1 alt=format!("synthetic pair {}", item.0 + 1)/></li>
                    </For>
                </ul>
                <div class="row">
                    <button id="genseg-sample" title="Generate new pairs from new masks"
                        on:click=move |_| spawn_local(sample(ui, g))>"New samples"</button>
                    <button id="genseg-export" on:click=move |_| export(ui)>"Export pairs"</button>
                    <button id="genseg-to-support" title="Add these pairs to the UniverSeg support set"
                        on:click=move |_| add_to_support(ui, t)>"Add to task"</button>
                </div>
                <div class="row">
                    <button id="genseg-segment" title="Segment the open image with the trained segmenter"
                        on:click=move |_| spawn_local(segment(ui))>"Segment image"</button>
                    <button id="genseg-save" title="Download the trained weights"
                        on:click=move |_| spawn_local(download(ui))>"Save…"</button>
                </div>
            </Show>
            <div class="row">
                <label class="button" title="Load weights saved earlier">"Load weights…"
                    <input id="genseg-load" type="file" accept=".medseg"
                        on:change=move |ev| {
                            if let Some(f) = task::files_of(&ev).into_iter().next() {
                                spawn_local(load(ui, g, f));
                            }
                        }/>
                </label>
            </div>
        </div>
    }
}
