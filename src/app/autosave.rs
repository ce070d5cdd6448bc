//! Autosave: the open scan, its annotations, the task's support set and the view settings are
//! kept in the browser's storage as the user works (a short debounce after each change) and
//! restored on the next visit, so a reload or a crash loses nothing. "Clear data" forgets all
//! of it. Everything stays in this browser.
//!
//! Three records, each a zip (masks deflate to almost nothing): the scan's files as they were
//! opened (written once per scan), the annotations with the view settings, and the support set
//! (written only when it changed).

use super::state::{Obj, with};
use super::task::{self, TaskUi};
use super::volume::{self, VolUi};
use super::{Ui, storage, web};
use crate::archive::{read_zip, write_zip};
use crate::pipeline::propagate::Box3d;
use crate::pipeline::universeg::SupportItem;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

const SOURCE: &str = "work-source";
const WORK: &str = "work-annotations";
const SUPPORT: &str = "work-support";
/// Quiet time after a change before it is written.
const DEBOUNCE_MS: i32 = 300;

#[derive(Serialize, Deserialize)]
struct WorkMeta {
    /// The scan these annotations belong to (name and size).
    image: String,
    width: usize,
    height: usize,
    /// Slices of a volume (0 for a 2D image) and the one in view.
    depth: usize,
    z: usize,
    objects: Vec<ObjMeta>,
    selected: Option<usize>,
    next_id: usize,
    level: f64,
    window: f64,
    opacity: f64,
    #[serde(default)]
    outline: bool,
}

#[derive(Serialize, Deserialize)]
struct ObjMeta {
    name: String,
    color: [u8; 3],
    bbox: Option<[f32; 4]>,
    /// A volume object's 3D box: [x0, y0, x1, y1] and z0, z1.
    box3d: Option<([f32; 4], usize, usize)>,
    /// The slice its box was drawn on (absent in records from before it was kept).
    #[serde(default)]
    box_slice: Option<usize>,
    #[serde(default)]
    hidden: bool,
}

#[derive(Default)]
struct Saver {
    ui: Option<Ui>,
    /// Off while restoring (half-restored state must not overwrite the record) and after
    /// "Clear data".
    enabled: bool,
    pending: bool,
    /// Names and count of the support set last written.
    support_written: Option<Vec<String>>,
    /// The last failure shown, so a full disk is reported once, not on every stroke.
    last_error: Option<String>,
}

thread_local! {
    static SAVER: RefCell<Saver> = RefCell::new(Saver::default());
}

fn zip_of(entries: &[(String, &[u8])]) -> Result<Vec<u8>, String> {
    write_zip(entries).map_err(|e| e.to_string())
}

fn unzip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    read_zip(bytes).map_err(|e| e.to_string())
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_slice())
}

async fn write(key: &str, bytes: &[u8]) {
    let result = storage::put(key, bytes).await;
    let ui = SAVER.with_borrow_mut(|s| {
        let report = match &result {
            Ok(()) => None,
            Err(e) if s.last_error.as_ref() != Some(e) => Some(e.clone()),
            Err(_) => None,
        };
        s.last_error = result.as_ref().err().cloned();
        report.and_then(|e| s.ui.map(|ui| (ui, e)))
    });
    if let Some((ui, e)) = ui {
        ui.fail(format!(
            "Autosave failed: {e}. Your work is still open in this tab; export it to keep it."
        ));
    }
}

/// Keeps a newly opened scan's files (its annotations follow with the next save).
pub async fn keep_source(files: &[(String, Vec<u8>)]) {
    if !SAVER.with_borrow(|s| s.enabled) {
        return;
    }
    // Entries keep the files' order; the index prefix keeps equal names apart.
    let entries: Vec<(String, &[u8])> = files
        .iter()
        .enumerate()
        .map(|(i, (name, b))| (format!("{i:05}/{name}"), b.as_slice()))
        .collect();
    match zip_of(&entries) {
        Ok(z) => write(SOURCE, &z).await,
        Err(e) => web_sys::console::error_1(&e.into()),
    }
    schedule();
}

/// Asks for a save soon; called after every change to annotations or the support set.
pub fn schedule() {
    let go = SAVER.with_borrow_mut(|s| {
        let go = s.enabled && !s.pending;
        s.pending |= go;
        go
    });
    if go {
        leptos::task::spawn_local(async {
            web::sleep(DEBOUNCE_MS).await;
            SAVER.with_borrow_mut(|s| s.pending = false);
            if SAVER.with_borrow(|s| s.enabled) {
                save().await;
            }
        });
    }
}

fn encode_work() -> Option<Result<Vec<u8>, String>> {
    let image = SAVER.with_borrow(|s| s.ui)?.image_name.get_untracked();
    let (meta, masks) = with(|s| {
        let d = s.display.as_ref()?;
        let (width, height) = (d.width, d.height);
        s.store_view();
        let (depth, z) = s
            .volume
            .as_ref()
            .map_or((0, 0), |v| (v.volume.size[2], v.z));
        let meta = WorkMeta {
            image,
            width,
            height,
            depth,
            z,
            objects: s
                .objects
                .iter()
                .map(|o| ObjMeta {
                    name: o.name.clone(),
                    color: o.color,
                    bbox: o.bbox,
                    box3d: o.box3d.map(|b| (b.rect, b.z0, b.z1)),
                    box_slice: o.box_slice,
                    hidden: o.hidden,
                })
                .collect(),
            selected: s.selected,
            next_id: s.next_id,
            level: s.level,
            window: s.width,
            opacity: s.opacity,
            outline: s.outline,
        };
        let mut masks: Vec<(String, Vec<u8>)> = vec![];
        for (k, o) in s.objects.iter().enumerate() {
            if depth == 0 {
                masks.push((format!("mask_{k}"), o.mask.clone()));
            }
            for (zi, m) in o.slices.iter().enumerate() {
                if let Some(m) = m {
                    masks.push((format!("mask_{k}_{zi}"), m.to_vec()));
                }
            }
        }
        Some((meta, masks))
    })?;
    let zipped = serde_json::to_vec(&meta)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            let mut entries: Vec<(String, &[u8])> = vec![("work.json".into(), &json)];
            entries.extend(masks.iter().map(|(n, m)| (n.clone(), m.as_slice())));
            zip_of(&entries)
        });
    Some(zipped)
}

fn encode_support() -> Option<Result<Vec<u8>, String>> {
    let (names, items): (Vec<String>, Vec<SupportItem>) = with(|s| {
        s.support
            .iter()
            .map(|e| (e.name.clone(), e.item.clone()))
            .unzip()
    });
    if SAVER.with_borrow(|s| s.support_written.as_ref() == Some(&names)) {
        return None;
    }
    SAVER.with_borrow_mut(|s| s.support_written = Some(names.clone()));
    let json = match serde_json::to_vec(&names) {
        Ok(j) => j,
        Err(e) => return Some(Err(e.to_string())),
    };
    let data: Vec<(String, Vec<u8>)> = items
        .iter()
        .enumerate()
        .flat_map(|(k, it)| {
            [
                (format!("image_{k}"), web::f32_bytes(&it.image)),
                (format!("label_{k}"), web::f32_bytes(&it.label)),
            ]
        })
        .collect();
    let mut entries: Vec<(String, &[u8])> = vec![("support.json".into(), &json)];
    entries.extend(data.iter().map(|(n, b)| (n.clone(), b.as_slice())));
    Some(zip_of(&entries))
}

async fn save() {
    match encode_work() {
        Some(Ok(z)) => write(WORK, &z).await,
        Some(Err(e)) => web_sys::console::error_1(&e.into()),
        None => {}
    }
    match encode_support() {
        Some(Ok(z)) => write(SUPPORT, &z).await,
        Some(Err(e)) => web_sys::console::error_1(&e.into()),
        None => {}
    }
}

/// At start: reopens the last scan with its annotations, and the support set; then saves on.
/// A record that cannot be read is skipped with a message, never half applied.
pub async fn restore(ui: Ui, v: VolUi, t: TaskUi) {
    SAVER.with_borrow_mut(|s| s.ui = Some(ui));
    let mut problems = vec![];
    if let Some(bytes) = storage::get(SUPPORT).await {
        match restore_support(&bytes) {
            Ok(items) => {
                SAVER.with_borrow_mut(|s| {
                    s.support_written = Some(items.iter().map(|(n, _)| n.clone()).collect())
                });
                for (name, item) in items {
                    task::push_support(t, name, item);
                }
            }
            Err(e) => problems.push(format!("the support set ({e})")),
        }
    }
    if let Some(bytes) = storage::get(SOURCE).await {
        if let Err(e) = restore_scan(ui, v, &bytes).await {
            problems.push(format!("the last scan ({e})"));
        }
    }
    SAVER.with_borrow_mut(|s| s.enabled = true);
    if !problems.is_empty() {
        ui.fail(format!("Could not restore {}.", problems.join(" and ")));
    }
}

fn restore_support(bytes: &[u8]) -> Result<Vec<(String, SupportItem)>, String> {
    let entries = unzip(bytes)?;
    let names: Vec<String> =
        serde_json::from_slice(entry(&entries, "support.json").ok_or("no index")?)
            .map_err(|e| e.to_string())?;
    names
        .into_iter()
        .enumerate()
        .map(|(k, name)| {
            let image = web::f32s(entry(&entries, &format!("image_{k}")).ok_or("missing image")?);
            let label = web::f32s(entry(&entries, &format!("label_{k}")).ok_or("missing label")?);
            if image.len() != label.len() || image.is_empty() {
                return Err(format!("{name} is damaged"));
            }
            Ok((name, SupportItem { image, label }))
        })
        .collect()
}

async fn restore_scan(ui: Ui, v: VolUi, bytes: &[u8]) -> Result<(), String> {
    let files: Vec<(String, Vec<u8>)> = unzip(bytes)?
        .into_iter()
        .map(|(n, b)| {
            (
                n.split_once('/').map_or(n.clone(), |(_, f)| f.to_string()),
                b,
            )
        })
        .collect();
    if !super::open_bytes(ui, v, &files).await {
        return Err("it no longer opens".into());
    }
    let name = ui.image_name.get_untracked();
    let Some(work) = storage::get(WORK).await else {
        return Ok(());
    };
    let entries = unzip(&work)?;
    let meta: WorkMeta = serde_json::from_slice(entry(&entries, "work.json").ok_or("no index")?)
        .map_err(|e| e.to_string())?;
    let fits = with(|s| {
        let d = s.display.as_ref();
        let depth = s.volume.as_ref().map_or(0, |v| v.volume.size[2]);
        meta.image == name
            && d.map(|d| (d.width, d.height)) == Some((meta.width, meta.height))
            && depth == meta.depth
    });
    if !fits {
        return Ok(());
    }
    let n = meta.width * meta.height;
    let mut objects = vec![];
    for (k, o) in meta.objects.iter().enumerate() {
        let mut slices = vec![None; meta.depth];
        let mask = if meta.depth == 0 {
            entry(&entries, &format!("mask_{k}"))
                .ok_or("a mask is missing")?
                .to_vec()
        } else {
            for (z, slot) in slices.iter_mut().enumerate() {
                *slot = entry(&entries, &format!("mask_{k}_{z}")).map(|m| Rc::new(m.to_vec()));
            }
            vec![0; n]
        };
        if mask.len() != n || slices.iter().flatten().any(|m| m.len() != n) {
            return Err("a mask has the wrong size".into());
        }
        objects.push(Obj {
            name: o.name.clone(),
            color: o.color,
            bbox: o.bbox,
            mask,
            slices,
            box3d: o.box3d.map(|(rect, z0, z1)| Box3d { rect, z0, z1 }),
            box_slice: o.box_slice,
            hidden: o.hidden,
        });
    }
    with(|s| {
        s.objects = objects;
        // A volume's masks in view come from their slices (before the view moves).
        s.load_view();
        s.selected = meta.selected.filter(|&i| i < s.objects.len());
        s.next_id = meta.next_id;
        s.level = meta.level;
        s.width = meta.window;
        s.opacity = meta.opacity;
        s.outline = meta.outline;
    });
    if meta.depth > 0 {
        volume::show(ui, v, meta.z);
    }
    ui.opacity.set(meta.opacity);
    ui.outline.set(meta.outline);
    ui.sync();
    ui.status.set(format!(
        "Restored {name} with {} objects from this browser.",
        meta.objects.len()
    ));
    Ok(())
}

/// Forgets everything this app keeps in the browser, then reloads the page empty.
pub async fn clear_all(ui: Ui) {
    let ok = web_sys::window()
        .and_then(|w| {
            w.confirm_with_message(
                "Delete everything medseg keeps in this browser: the open scan and its masks, \
                 the support set, trained GenSeg weights and added UniverSeg weights? \
                 Files you exported are not affected.",
            )
            .ok()
        })
        .unwrap_or(false);
    if !ok {
        return;
    }
    SAVER.with_borrow_mut(|s| s.enabled = false);
    match storage::clear_all().await {
        Ok(()) => {
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        }
        Err(e) => {
            SAVER.with_borrow_mut(|s| s.enabled = true);
            ui.fail(format!("Could not clear the data: {e}"));
        }
    }
}
