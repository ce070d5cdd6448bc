//! Volumes in the page: open a NRRD/NIfTI scan, scroll its axial slices, propagate a box through
//! them with 3D MedSAM, measure, and export the labels as NIfTI aligned with the scan.
//!
//! The model sees each slice windowed over the whole volume as the official preprocessing does
//! (CT soft tissue, MR percentiles); display presets only change what is shown. Slices are
//! embedded on demand (a box drawn, a propagation) and cached.

use super::state::with;
use super::{Ui, canvas, web};
use crate::imaging::GrayImage;
use crate::imaging::decode::encode_gray_png;
use crate::imaging::dicom::read_series;
use crate::imaging::dicom_seg::{SeriesReference, write_seg};
use crate::imaging::volume::{Volume, read_volume, split_labels, write_nifti_labels};
use crate::imaging::window::{self, Window};
use crate::metrics::{ObjectMeasure, area_mm2};
use crate::pipeline::propagate::{
    Box3d, EmbeddingCache, Outcome, Propagation, SliceMasks, SliceStack, planned_slices, propagate,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;
use std::rc::Rc;

/// Embeddings kept per volume (4 MB each for LiteMedSAM).
const CACHE_SLICES: usize = 24;

/// Display presets: (name, window). `None` = the model's own windowing.
const PRESETS: [(&str, Option<Window>); 6] = [
    ("As the model sees it", None),
    ("CT soft tissue", Some(Window::CT_SOFT_TISSUE)),
    (
        "CT lung",
        Some(Window::Ct {
            level: -600.0,
            width: 1500.0,
        }),
    ),
    (
        "CT bone",
        Some(Window::Ct {
            level: 400.0,
            width: 1800.0,
        }),
    ),
    (
        "CT brain",
        Some(Window::Ct {
            level: 40.0,
            width: 80.0,
        }),
    ),
    ("MR auto (percentiles)", Some(Window::MrPercentile)),
];

/// The plane shown beside the axial viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ortho {
    Coronal,
    Sagittal,
}

/// Where the selected object's box is, for the range the panel names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxSlice {
    At(usize),
    Unknown,
    /// Painted or imported: From here runs from its mask on the slice in view.
    Boxless,
}

/// An open volume.
pub struct Loaded {
    /// Raw intensities and geometry.
    pub volume: Volume,
    /// The model's input, windowed over the whole volume.
    pub model_u8: Vec<u8>,
    pub z: usize,
    pub cache: EmbeddingCache,
    /// First/last slice marks for propagation.
    pub marks: [Option<usize>; 2],
    pub preset: usize,
    /// Set by Cancel; read between slices.
    pub cancel: bool,
    pub ortho: Ortho,
    /// For a DICOM series: what a DICOM SEG export refers to (its study, its slices).
    pub reference: Option<SeriesReference>,
}

impl Loaded {
    fn stack(&self) -> SliceStack<'_> {
        SliceStack {
            width: self.volume.size[0],
            height: self.volume.size[1],
            data: &self.model_u8,
        }
    }
    fn depth(&self) -> usize {
        self.volume.size[2]
    }
    /// Slice shown in row `row` of a coronal/sagittal plane: superior on top, as radiology
    /// shows them (LPS: +z is superior). Its own inverse.
    pub fn row_to_z(&self, row: usize) -> usize {
        if self.volume.direction[2][2] >= 0.0 {
            self.depth() - 1 - row
        } else {
            row
        }
    }

    /// Display values of the coronal plane through voxel row `at` (columns along x) or the
    /// sagittal plane through voxel column `at` (columns along y), one row per slice.
    pub fn ortho_plane(&self, plane: Ortho, at: usize) -> GrayImage {
        let [w, h, d] = self.volume.size;
        let cols = if plane == Ortho::Coronal { w } else { h };
        let voxels = (0..d).flat_map(|row| {
            let z = self.row_to_z(row);
            (0..cols).map(move |col| match plane {
                Ortho::Coronal => z * w * h + at * w + col,
                Ortho::Sagittal => z * w * h + col * w + at,
            })
        });
        GrayImage::new(cols, d, self.shown(voxels))
    }

    /// Axial slice `z` as displayed.
    fn display(&self, z: usize) -> GrayImage {
        let [w, h, _] = self.volume.size;
        GrayImage::new(w, h, self.shown(z * w * h..(z + 1) * w * h))
    }

    /// Display values of the given voxels: the model's own windowing, or the preset's window
    /// over their raw values (which may depend on all of them, e.g. MR percentiles).
    fn shown(&self, voxels: impl Iterator<Item = usize>) -> Vec<u8> {
        match PRESETS[self.preset].1 {
            None => voxels.map(|i| self.model_u8[i]).collect(),
            Some(win) => {
                let raw: Vec<f32> = voxels.map(|i| self.volume.data[i]).collect();
                window::apply(&raw, win)
            }
        }
    }
}

/// Reactive view of the volume (small values only).
#[derive(Clone, Copy)]
pub struct VolUi {
    pub open: RwSignal<bool>,
    pub slice: RwSignal<(usize, usize, f64)>,
    pub marks: RwSignal<[Option<usize>; 2]>,
    pub beyond: RwSignal<bool>,
    pub running: RwSignal<bool>,
    /// The selected object's area on the slice in view (mm²) and its measurements.
    pub measure: RwSignal<Option<(f64, ObjectMeasure)>>,
    pub ortho: RwSignal<Ortho>,
    /// The slice the selected object's box was drawn on (the range where no mark is set).
    pub box_slice: RwSignal<BoxSlice>,
    /// The selected object's axes drawn on the viewer.
    pub axes: RwSignal<bool>,
}

impl VolUi {
    pub fn new() -> Self {
        VolUi {
            open: RwSignal::new(false),
            slice: RwSignal::new((0, 0, 0.0)),
            marks: RwSignal::new([None, None]),
            beyond: RwSignal::new(true),
            running: RwSignal::new(false),
            measure: RwSignal::new(None),
            ortho: RwSignal::new(Ortho::Coronal),
            box_slice: RwSignal::new(BoxSlice::Unknown),
            axes: RwSignal::new(false),
        }
    }

    /// Refreshes the slice readout and the measurements.
    pub fn sync(&self) {
        let info = with(|s| {
            let v = s.volume.as_ref()?;
            let [sx, sy, _] = v.volume.spacing;
            let pos =
                v.volume.origin[2] + v.z as f64 * v.volume.spacing[2] * v.volume.direction[2][2];
            let measure = s.selected.and_then(|i| {
                Some((
                    area_mm2(&s.objects.get(i)?.mask, [sx, sy]),
                    super::measure::object(s, i)?,
                ))
            });
            let selected = s.selected.and_then(|i| s.objects.get(i));
            // Where its box is: the slice it was drawn on, unknown, or none (painted, imported).
            let box_slice = match selected {
                Some(o) if o.bbox.is_none() && o.box3d.is_none() => BoxSlice::Boxless,
                Some(o) => o.box_slice.map_or(BoxSlice::Unknown, BoxSlice::At),
                None => BoxSlice::Unknown,
            };
            Some(((v.z, v.depth(), pos), v.marks, measure, v.ortho, box_slice))
        });
        match info {
            Some((slice, marks, measure, ortho, box_slice)) => {
                self.box_slice.set(box_slice);
                self.open.set(true);
                self.slice.set(slice);
                self.marks.set(marks);
                self.measure.set(measure);
                self.ortho.set(ortho);
            }
            None => self.open.set(false),
        }
    }
}

/// Opens a NRRD/NIfTI scan, replacing the current image or volume; false when it cannot be read.
pub async fn open(ui: Ui, v: VolUi, name: String, bytes: &[u8]) -> bool {
    ui.status.set(format!("Reading {name}…"));
    ui.progress.set(Some(-1.0));
    web::yield_now().await;
    match read_volume(bytes) {
        Ok(vol) => {
            show_new(ui, v, name, vol, None);
            true
        }
        Err(e) => {
            ui.fail(format!(
                "{name}: {e}. The current image and masks are unchanged."
            ));
            false
        }
    }
}

/// Opens DICOM files (one image, a multi-frame file or a series) as a volume; what was left
/// out of the series (other series, unreadable files) and gaps are reported, not fatal.
pub async fn open_dicom(ui: Ui, v: VolUi, files: &[(String, Vec<u8>)]) -> bool {
    let name = match files {
        [(one, _)] => one.clone(),
        _ => format!(
            "{} … ({} DICOM files)",
            files.iter().map(|(n, _)| n.as_str()).min().unwrap_or(""),
            files.len()
        ),
    };
    ui.status.set(format!("Reading {name}…"));
    ui.progress.set(Some(-1.0));
    web::yield_now().await;
    match read_series(files) {
        Ok(series) => {
            show_new(ui, v, name.clone(), series.volume, Some(series.reference));
            if !series.notes.is_empty() {
                ui.error.set(Some(format!(
                    "{name} opened, but: {}.",
                    series.notes.join("; ")
                )));
            }
            true
        }
        Err(e) => {
            ui.fail(format!("{e}. The current image and masks are unchanged."));
            false
        }
    }
}

fn show_new(ui: Ui, v: VolUi, name: String, vol: Volume, reference: Option<SeriesReference>) {
    let model_window = Window::official_for(&vol.data);
    let model_u8 = window::apply(&vol.data, model_window);
    let depth = vol.size[2];
    with(|s| {
        s.volume = Some(Loaded {
            volume: vol,
            model_u8,
            z: depth / 2,
            cache: EmbeddingCache::new(CACHE_SLICES),
            marks: [None, None],
            preset: 0,
            cancel: false,
            ortho: v.ortho.get_untracked(),
            reference,
        });
        s.clear_work();
    });
    // Propagation will want the encoder pool: its workers load their model while the user looks.
    super::encoder::widen();
    ui.progress.set(None);
    ui.image_name.set(name.clone());
    show(ui, v, depth / 2);
    ui.phase.set("ready");
    ui.status.set(format!(
        "{name}: {depth} slices. Scroll with the wheel or ↑/↓, draw a box, then Propagate (P)."
    ));
}

/// Moves the view to slice `z` (clamped).
pub fn show(ui: Ui, v: VolUi, z: usize) {
    with(|s| {
        if s.volume.is_none() {
            return;
        }
        s.store_view();
        let vol = s.volume.as_mut().expect("checked");
        let z = z.min(vol.depth() - 1);
        vol.z = z;
        let planes = vol.stack().slice(z);
        s.display = Some(vol.display(z));
        s.embedding = vol.cache.get(z);
        s.set_image(planes);
        s.load_view();
    });
    ui.sync();
    v.sync();
}

pub fn step(ui: Ui, v: VolUi, delta: isize) {
    if let Some(z) = with(|s| s.volume.as_ref().map(|v| v.z)) {
        show(ui, v, z.saturating_add_signed(delta));
    }
}

/// The marked slice range (a missing mark = the volume's end), or every slice; with the
/// model's view of each slice.
pub fn slices_to_run() -> Option<Vec<(usize, GrayImage)>> {
    with(|s| {
        let v = s.volume.as_ref()?;
        let last = v.depth() - 1;
        let (z0, z1) = match v.marks {
            [None, None] => (0, last),
            [a, b] => {
                let (a, b) = (a.unwrap_or(0), b.unwrap_or(last));
                (a.min(b), a.max(b))
            }
        };
        Some((z0..=z1).map(|z| (z, v.stack().slice(z).luma())).collect())
    })
}

pub fn is_open() -> bool {
    with(|s| s.volume.is_some())
}

/// Marks the slice in view as the first (0) or last (1) of the propagation range.
pub fn mark(v: VolUi, which: usize) {
    with(|s| {
        if let Some(vol) = s.volume.as_mut() {
            let z = vol.z;
            vol.marks[which] = if vol.marks[which] == Some(z) {
                None
            } else {
                Some(z)
            };
        }
    });
    v.sync();
}

/// Called after an embedding of the slice in view was computed.
pub fn remember_embedding(emb: &crate::pipeline::medsam::ImageEmbedding) {
    with(|s| {
        if let Some(vol) = s.volume.as_mut() {
            let z = vol.z;
            vol.cache.insert(z, emb.clone());
        }
    });
}

/// Propagates the selected object through the volume (or again from the slice in view).
pub async fn run(ui: Ui, v: VolUi, from_here: bool) {
    let job = with(|s| {
        s.store_view();
        let model = s.model.clone()?;
        let i = s.selected?;
        let vol = s.volume.as_mut()?;
        vol.cancel = false;
        let o = &s.objects[i];
        let z = vol.z;
        let mut open_ended = false;
        let box3d = match (from_here, o.box3d, o.bbox) {
            (true, Some(b), _) => b,
            (_, _, Some(rect)) => {
                // Without marks the range is the slice the box was drawn on, wherever the view is.
                let z = o.box_slice.unwrap_or(z);
                let [first, last] = vol.marks;
                let (z0, z1) = (
                    first.unwrap_or(z).min(last.unwrap_or(z)),
                    first.unwrap_or(z).max(last.unwrap_or(z)),
                );
                Box3d { rect, z0, z1 }
            }
            // A painted or imported mask has no box: its extent on this slice stands for one,
            // and the run goes outwards until the mask vanishes (or over marks around it).
            (true, None, None) => {
                let rect = extent(&o.mask, vol.volume.size[0])?;
                match vol.marks {
                    [Some(a), Some(b)] if (a.min(b)..=a.max(b)).contains(&z) => Box3d {
                        rect,
                        z0: a.min(b),
                        z1: a.max(b),
                    },
                    _ => {
                        open_ended = true;
                        Box3d { rect, z0: z, z1: z }
                    }
                }
            }
            (false, _, None) => return None,
        };
        let masks: SliceMasks = (0..vol.depth())
            .map(|k| o.slices.get(k).and_then(|m| m.as_deref().cloned()))
            .collect();
        Some((model, i, box3d, masks, z, open_ended))
    });
    let Some((model, i, box3d, mut masks, z, open_ended)) = job else {
        return ui.fail(if from_here {
            "Select an object with a mask on this slice (propagated, painted or imported) first."
        } else {
            "Draw a box on a slice first (it selects the new object), then Propagate."
        });
    };
    if from_here && masks[z].is_none() {
        return ui.fail("This slice has no mask to propagate from; paint or draw one first.");
    }
    let opts = Propagation {
        beyond: v.beyond.get_untracked() || open_ended,
        from_edited: from_here.then_some(z),
    };
    ui.phase.set("propagating");
    v.running.set(true);
    ui.progress.set(Some(0.0));
    ui.status.set("Propagating through the volume…".into());
    web::yield_now().await;
    let t0 = js_sys::Date::now();
    // The run works on a copy of the model's slices and on the cache taken out of the state,
    // so the page stays usable (scrolling, viewing) meanwhile.
    let Some((stack_data, (w, h), mut cache)) = with(|s| {
        let vol = s.volume.as_mut()?;
        let cache = std::mem::replace(&mut vol.cache, EmbeddingCache::new(1));
        Some((
            vol.model_u8.clone(),
            (vol.volume.size[0], vol.volume.size[1]),
            cache,
        ))
    }) else {
        return;
    };
    // Past the range the total is an upper bound (the volume's ends), lowered as the mask vanishes.
    let most = if opts.beyond { " at most" } else { "" };
    let mut progress = async |done: usize, planned: usize| {
        ui.progress.set(Some(done as f64 / planned.max(1) as f64));
        ui.status
            .set(format!("Propagating: slice {done} of{most} {planned}…"));
        web::yield_now().await;
        !with(|s| s.volume.as_ref().is_some_and(|v| v.cancel))
    };
    let stack = SliceStack {
        width: w,
        height: h,
        data: &stack_data,
    };
    // The slices the walk will need, in its order, that are not cached: while one is decoded the
    // next ones are encoded by the other workers.
    let workers = super::encoder::widen();
    let ahead: Vec<usize> = planned_slices(&box3d, opts.from_edited)
        .into_iter()
        .filter(|&z| !cache.contains(z))
        .collect();
    let mut started: HashMap<usize, super::encoder::Pending> = HashMap::new();
    let mut embed = async |z: usize, planes: &crate::imaging::decode::Planes| {
        let pending = match started.remove(&z) {
            Some(p) => p,
            None => super::encoder::request(planes).await,
        };
        let next = ahead.iter().position(|&k| k == z).map_or(0, |i| i + 1);
        for &k in ahead[next.min(ahead.len())..]
            .iter()
            .take(workers.saturating_sub(1))
        {
            if !started.contains_key(&k) {
                let p = super::encoder::request(&stack.slice(k)).await;
                started.insert(k, p);
            }
        }
        super::encoder::finish(&model, planes, pending).await
    };
    let result = propagate(
        &model,
        &mut embed,
        &stack,
        &box3d,
        opts,
        &mut cache,
        &mut masks,
        &mut progress,
    )
    .await;
    with(|s| {
        if let Some(vol) = s.volume.as_mut() {
            vol.cache = cache;
        }
    });
    v.running.set(false);
    ui.progress.set(None);
    ui.phase.set("ready");
    let outcome = match result {
        Ok(o) => o,
        Err(e) => return ui.fail(format!("Propagation failed: {e}")),
    };
    with(|s| {
        s.checkpoint();
        if let Some(o) = s.objects.get_mut(i) {
            o.slices = masks.into_iter().map(|m| m.map(Rc::new)).collect();
            // A run from a boxless mask leaves it boxless: From here stays open-ended.
            if !open_ended {
                o.box3d = Some(box3d);
            }
        }
        s.load_view();
    });
    let cur = with(|s| s.volume.as_ref().map_or(0, |v| v.z));
    show(ui, v, cur);
    let segmented = with(|s| {
        s.objects.get(i).map_or(0, |o| {
            o.slices
                .iter()
                .filter(|m| m.as_ref().is_some_and(|m| m.contains(&1)))
                .count()
        })
    });
    ui.status.set(format!(
        "{} {segmented} slice{} in {:.1} s.",
        if outcome == Outcome::Cancelled {
            "Cancelled after"
        } else {
            "Propagated:"
        },
        if segmented == 1 { "" } else { "s" },
        (js_sys::Date::now() - t0) / 1000.0
    ));
}

pub fn cancel() {
    with(|s| {
        if let Some(v) = s.volume.as_mut() {
            v.cancel = true;
        }
    });
}

/// Every object as one label volume (object k = label k), and the volume's geometry.
fn label_volume() -> Option<(Volume, Vec<u8>)> {
    with(|s| {
        s.store_view();
        let vol = s.volume.as_ref()?;
        let [w, h, d] = vol.volume.size;
        let n = w * h;
        let mut labels = vec![0u8; n * d];
        for (k, o) in s.objects.iter().enumerate() {
            for (z, m) in o.slices.iter().enumerate() {
                if let Some(m) = m {
                    for (l, &x) in labels[z * n..(z + 1) * n].iter_mut().zip(m.iter()) {
                        if x > 0 {
                            *l = (k + 1).min(255) as u8;
                        }
                    }
                }
            }
        }
        let v = &vol.volume;
        let geometry = Volume {
            size: v.size,
            spacing: v.spacing,
            origin: v.origin,
            direction: v.direction,
            data: vec![],
        };
        Some((geometry, labels))
    })
}

/// The bounding box [x0, y0, x1, y1] (image pixels, ends included) of a mask `w` wide; None
/// when it is empty.
fn extent(mask: &[u8], w: usize) -> Option<[f32; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, v)| **v > 0) {
        let (x, y) = (i % w, i / w);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    (x0 != usize::MAX).then(|| [x0, y0, x1, y1].map(|v| v as f32))
}

/// Shows or hides the selected object's axes on the viewer (M).
pub fn show_axes(v: VolUi, on: bool) {
    v.axes.set(on);
    with(|s| {
        s.axes = on;
        canvas::redraw(s);
    });
}

/// Opens a label volume of the open scan (NIfTI or NRRD, e.g. an earlier export or another
/// tool's) as objects, one per label, added to the list in one undo step.
pub async fn import_labels(ui: Ui, v: VolUi, file: web_sys::File) {
    let name = file.name();
    if !is_open() {
        return ui.fail("Open the scan first, then its labels.");
    }
    ui.status.set(format!("Reading {name}…"));
    ui.progress.set(Some(-1.0));
    web::yield_now().await;
    let split = match web::read_file(&file).await {
        Ok(bytes) => read_volume(&bytes).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    }
    .and_then(|labels| {
        with(|s| {
            let scan = &s.volume.as_ref().ok_or("the scan was closed")?.volume;
            // Its reasons read as sentences of their own (no "input:" in front).
            split_labels(&labels, scan).map_err(|e| match e {
                crate::error::Error::Input(m) => m,
                e => e.to_string(),
            })
        })
    });
    ui.progress.set(None);
    let labels = match split {
        Ok(l) if l.is_empty() => return ui.fail(format!("{name} holds no labelled voxel.")),
        Ok(l) => l,
        Err(e) => return ui.fail(format!("{name}: {e}. Nothing was added.")),
    };
    let count = labels.len();
    with(|s| {
        s.checkpoint();
        let first = s.objects.len();
        for (label, slices) in labels {
            let i = s.new_object(None, vec![]);
            let o = &mut s.objects[i];
            o.name = format!("Label {label}");
            o.box_slice = None;
            o.slices = slices.into_iter().map(|m| m.map(Rc::new)).collect();
        }
        s.selected = Some(first);
        s.load_view();
    });
    let cur = with(|s| s.volume.as_ref().map_or(0, |v| v.z));
    show(ui, v, cur);
    ui.status.set(format!(
        "{name}: {count} label{} added as objects.",
        if count == 1 { "" } else { "s" }
    ));
}

/// Downloads the label volume as NIfTI in the scan's geometry.
pub fn export(ui: Ui) {
    let out = label_volume().map(|(g, labels)| write_nifti_labels(&g, &labels, true));
    match out {
        Some(Ok(bytes)) => {
            if let Err(e) = web::download("labels.nii.gz", "application/gzip", &bytes) {
                ui.fail(e);
            }
        }
        Some(Err(e)) => ui.fail(e.to_string()),
        None => ui.fail("Open a volume first."),
    }
}

/// Downloads every object as one DICOM SEG (object k = segment k, named as in the list), in
/// the scan's study when it came from DICOM.
pub fn export_seg(ui: Ui) {
    let Some((g, labels)) = label_volume() else {
        return ui.fail("Open a volume first.");
    };
    let (names, reference) = with(|s| {
        (
            s.objects.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
            s.volume.as_ref().and_then(|v| v.reference.clone()),
        )
    });
    match write_seg(&g, &labels, &names, reference.as_ref()) {
        Ok(bytes) => {
            if let Err(e) = web::download("segmentation.dcm", "application/dicom", &bytes) {
                ui.fail(e);
            }
        }
        Err(e) => ui.fail(e.to_string()),
    }
}

/// Downloads the label map of every segmented slice as PNG (`slice_012.png`, 0-based, pixel =
/// object number), in one zip.
pub fn export_slices(ui: Ui) {
    let Some((g, labels)) = label_volume() else {
        return ui.fail("Open a volume first.");
    };
    let [w, h, _] = g.size;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    let mut written = 0;
    for (z, slice) in labels.chunks(w * h).enumerate() {
        if !slice.iter().any(|&l| l > 0) {
            continue;
        }
        let png = match encode_gray_png(&GrayImage::new(w, h, slice.to_vec())) {
            Ok(p) => p,
            Err(e) => return ui.fail(e.to_string()),
        };
        let ok = zip.start_file(format!("slice_{z:03}.png"), opts).is_ok()
            && std::io::Write::write_all(&mut zip, &png).is_ok();
        if !ok {
            return ui.fail("Could not write the zip of slices.");
        }
        written += 1;
    }
    if written == 0 {
        return ui.fail("No slice is segmented yet.");
    }
    match zip.finish() {
        Ok(c) => {
            if let Err(e) = web::download("slices.zip", "application/zip", &c.into_inner()) {
                ui.fail(e);
            }
        }
        Err(e) => ui.fail(format!("zip: {e}")),
    }
}

#[component]
pub fn VolumePanel(ui: Ui, v: VolUi) -> impl IntoView {
    let set_preset = move |ev| {
        let p: usize = event_target_value(&ev).parse().unwrap_or(0);
        with(|s| {
            if let Some(vol) = s.volume.as_mut() {
                vol.preset = p.min(PRESETS.len() - 1);
                s.display = Some(vol.display(vol.z));
                canvas::redraw(s);
            }
        });
    };
    let set_ortho = move |o: Ortho| {
        with(|s| {
            if let Some(vol) = s.volume.as_mut() {
                vol.ortho = o;
            }
            canvas::draw_ortho(s);
        });
        v.sync();
    };
    // Clicking a row of the plane goes to that slice.
    let ortho_click = move |ev: web_sys::MouseEvent| {
        let z = with(|s| {
            let (c, vol) = (canvas::ortho_canvas()?, s.volume.as_ref()?);
            let row = ev.offset_y() as f64 * c.height() as f64 / c.client_height().max(1) as f64;
            Some(vol.row_to_z((row as usize).min(vol.depth() - 1)))
        });
        if let Some(z) = z {
            show(ui, v, z);
        }
    };
    // Drawn whenever the panel's canvas is (re)created; the viewer's redraws keep it current.
    let ortho_ref = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        if ortho_ref.get().is_some() {
            with(|s| canvas::draw_ortho(s));
        }
    });
    view! {
        <Show when=move || v.open.get() fallback=|| ()>
            <div class="panel" id="volume-panel">
                <h3>"Volume"</h3>
                <div id="slice-info">{move || {
                    let (z, d, pos) = v.slice.get();
                    format!("Slice {} / {d} · z = {pos:.1} mm", z + 1)
                }}</div>
                <div class="row">
                    <button title="Previous slice (↓)" on:click=move |_| step(ui, v, -1)>"▼"</button>
                    <button title="Next slice (↑)" on:click=move |_| step(ui, v, 1)>"▲"</button>
                    <select id="preset" title="Display window" on:change=set_preset>
                        {PRESETS.iter().enumerate().map(|(i, p)| view! { <option value=i.to_string()>{p.0}</option> }).collect_view()}
                    </select>
                </div>
                <div class="row">
                    <button id="mark-first" title="First slice of the range ([)" on:click=move |_| mark(v, 0)>"Mark first"</button>
                    <button id="mark-last" title="Last slice of the range (])" on:click=move |_| mark(v, 1)>"Mark last"</button>
                </div>
                <div class="hint" id="range">{move || {
                    // Slices are numbered from 1 on the page; an unmarked end is the box's slice.
                    let box_at = match v.box_slice.get() {
                        BoxSlice::At(z) => Some(z + 1),
                        _ => None,
                    };
                    let end = |m: Option<usize>| match (m, box_at) {
                        (Some(z), _) => (z + 1).to_string(),
                        (None, Some(n)) => n.to_string(),
                        (None, None) => "the box's slice".to_string(),
                    };
                    match (v.marks.get(), box_at, v.box_slice.get()) {
                        ([Some(a), Some(b)], ..) => format!("Range: slices {} – {}", a.min(b) + 1, a.max(b) + 1),
                        (_, _, BoxSlice::Boxless) => "Range: From here, outwards until the mask vanishes".to_string(),
                        ([None, None], Some(n), _) => format!("Range: slice {n} (the box's)"),
                        ([None, None], None, _) => "Range: the box's slice".to_string(),
                        ([a, b], ..) => format!("Range: slices {} – {}", end(a), end(b)),
                    }
                }}</div>
                <label class="check"><input id="beyond" type="checkbox" prop:checked=move || v.beyond.get()
                    on:change=move |ev| v.beyond.set(event_target_checked(&ev))/>"Continue past the range until the mask vanishes"</label>
                <div class="row">
                    <button id="propagate" class="primary" title="Propagate the selected box (P)" disabled=move || v.running.get()
                        on:click=move |_| spawn_local(run(ui, v, false))>"Propagate"</button>
                    <button id="repropagate" title="Propagate outwards from this slice's mask (corrected, painted or imported)" disabled=move || v.running.get()
                        on:click=move |_| spawn_local(run(ui, v, true))>"From here"</button>
                    <button id="cancel" disabled=move || !v.running.get() on:click=move |_| cancel()>"Cancel"</button>
                </div>
                <div class="row">
                    {
                        let (label, key, what) = super::refine::Op::Between.label();
                        view! {
                            <button id="fill-between" title=format!("{what} ({key})") disabled=move || v.running.get()
                                on:click=move |_| super::refine_selected(ui, v, super::refine::Op::Between)>{label}</button>
                        }
                    }
                </div>
                <div class="row">
                    <button id="ortho-coronal" class:active=move || v.ortho.get() == Ortho::Coronal
                        on:click=move |_| set_ortho(Ortho::Coronal)>"Coronal"</button>
                    <button id="ortho-sagittal" class:active=move || v.ortho.get() == Ortho::Sagittal
                        on:click=move |_| set_ortho(Ortho::Sagittal)>"Sagittal"</button>
                </div>
                <canvas id="ortho" node_ref=ortho_ref title="Through the selected object's centre; click a row to go to that slice"
                    on:click=ortho_click></canvas>
                <label class="check"><input id="show-axes" type="checkbox" prop:checked=move || v.axes.get()
                    on:change=move |ev| show_axes(v, event_target_checked(&ev))/>"Show the selected object's axes (M)"</label>
                <div id="measure" title="Axes: the longest diameter on any slice and the longest chord across it (RECIST, WHO); values: the scan's own under the mask, all slices (HU on CT)">{move || match v.measure.get() {
                    Some((a, m)) => {
                        let ml = m.extent.map_or(0.0, |e| e.ml);
                        let axes = m.extent.map(|e| {
                            let z = e.axis_slice;
                            view! {
                                {format!(" · axes {:.1} × {:.1} mm (", e.long_axis_mm, e.short_axis_mm)}
                                <button class="link" id="goto-axis" title="Go to that slice"
                                    on:click=move |_| show(ui, v, z - 1)>{format!("slice {z}")}</button>
                                ")"
                            }
                        });
                        let values = m.intensity.map_or(String::new(), |i| {
                            format!(" · values {:.1} ± {:.1}", i.mean, i.sd)
                        });
                        view! { {format!("Selected: {a:.1} mm² here · {ml:.2} mL in all")} {axes} {values} }.into_any()
                    }
                    None => "Select an object to measure it.".into_any(),
                }}</div>
                <div class="row">
                    <label class="button" title="A label volume of this scan (NIfTI or NRRD), one object per label">"Import labels…"
                        <input id="import-labels" type="file" accept=".nii,.gz,.nrrd" on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            if let Some(f) = input.files().and_then(|l| l.get(0)) {
                                spawn_local(import_labels(ui, v, f));
                            }
                            input.set_value("");
                        }/></label>
                    <button id="export-nifti" on:click=move |_| export(ui)>"Export labels (NIfTI)"</button>
                    <button id="export-seg" title="One DICOM SEG object: a segment per object, in the scan's study when the scan is DICOM" on:click=move |_| export_seg(ui)>"DICOM SEG"</button>
                    <button id="export-slices" title="Label PNG of each segmented slice, zipped" on:click=move |_| export_slices(ui)>"Slices (PNG)"</button>
                </div>
            </div>
        </Show>
    }
}
