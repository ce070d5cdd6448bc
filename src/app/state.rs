//! The page's working state, kept outside the reactive graph: the model, the open image, its
//! embedding and the annotation objects with their undo history.

use crate::imaging::GrayImage;
use crate::imaging::decode::Planes;
use crate::pipeline::medsam::{ImageEmbedding, MedSam};
use crate::pipeline::propagate::Box3d;
use crate::pipeline::universeg::UniverSeg;
use burn::tensor::Device;
use std::cell::RefCell;
use std::rc::Rc;

pub const PALETTE: [[u8; 3]; 8] = [
    [255, 196, 0],
    [0, 200, 255],
    [255, 64, 129],
    [118, 255, 3],
    [170, 110, 255],
    [255, 120, 40],
    [0, 230, 170],
    [240, 240, 90],
];

/// One segmented structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj {
    pub name: String,
    pub color: [u8; 3],
    /// The box it was segmented from, in image pixels.
    pub bbox: Option<[f32; 4]>,
    /// 0/1 per pixel (on a volume: the slice in view).
    pub mask: Vec<u8>,
    /// On a volume: every slice's mask, shared between undo steps (the slice in view is
    /// `mask`, written back when the view moves). Empty for a 2D image.
    pub slices: Vec<Option<Rc<Vec<u8>>>>,
    /// On a volume: the 3D box it was propagated from.
    pub box3d: Option<Box3d>,
    /// On a volume: the slice its box was drawn on (a propagation's range unless marks say).
    pub box_slice: Option<usize>,
    /// Not drawn (its mask and box); still exported and measured.
    pub hidden: bool,
}

impl Obj {
    /// Whether its box applies to slice `z` (always on a 2D image): the slices of its 3D box,
    /// or the slice it was drawn on.
    pub fn box_on(&self, z: Option<usize>) -> bool {
        match (z, self.box3d, self.box_slice) {
            (None, ..) => true,
            (Some(z), Some(b), _) => (b.z0..=b.z1).contains(&z),
            (Some(z), None, Some(at)) => z == at,
            (Some(_), None, None) => true,
        }
    }

    /// On a volume: this object's mask on slice `z`, where `in_view` is the slice whose mask is
    /// `mask` (the others live in `slices`); `None` where it has none.
    pub fn slice_mask(&self, z: usize, in_view: usize) -> Option<&[u8]> {
        if z == in_view {
            Some(&self.mask)
        } else {
            self.slices
                .get(z)
                .and_then(|m| m.as_deref())
                .map(|m| &m[..])
        }
    }
}

#[derive(Default)]
pub struct State {
    /// The compute device chosen at start-up (WebGPU or the CPU fallback).
    pub device: Option<Device>,
    pub model: Option<MedSam>,
    pub universeg: Option<UniverSeg>,
    /// The task's support set (UniverSeg).
    pub support: Vec<super::task::SupportEntry>,
    /// Trained GenSeg weights and the gallery's synthetic pairs.
    pub genseg: Option<crate::genseg::GenSegModel>,
    pub synthetic: super::generate::Synthetic,
    /// An open volume (its slice in view is `image`).
    pub volume: Option<super::volume::Loaded>,
    /// Set with [`State::set_image`].
    pub image: Option<Planes>,
    /// Changes with every new image or slice in view, so a late embedding is not mistaken for
    /// the current image's.
    pub image_id: u64,
    pub display: Option<GrayImage>,
    pub embedding: Option<ImageEmbedding>,
    pub objects: Vec<Obj>,
    pub selected: Option<usize>,
    pub undo: Vec<(Vec<Obj>, Option<usize>)>,
    pub redo: Vec<(Vec<Obj>, Option<usize>)>,
    /// Reference mask for the evaluation view.
    pub reference: Option<Vec<bool>>,
    /// Display window (level, width) over 8-bit values.
    pub level: f64,
    pub width: f64,
    pub opacity: f64,
    /// Masks drawn as their outlines (the anatomy under them stays visible).
    pub outline: bool,
    /// On a volume: the selected object's long and short axes drawn on the slice in view.
    pub axes: bool,
    /// Display zoom relative to fitting the viewer.
    pub zoom: f64,
    /// How far the image is moved from the viewer's middle, in CSS pixels.
    pub pan: (f64, f64),
    /// Box being dragged, image pixels.
    pub drag_box: Option<[f32; 4]>,
    pub next_id: usize,
}

impl State {
    /// On a volume: writes the masks in view back to their slice lists.
    pub fn store_view(&mut self) {
        let Some((z, depth)) = self.volume.as_ref().map(|v| (v.z, v.volume.size[2])) else {
            return;
        };
        for o in &mut self.objects {
            o.slices.resize(depth, None);
            if o.slices[z].as_deref() != Some(&o.mask) {
                o.slices[z] = o.mask.contains(&1).then(|| Rc::new(o.mask.clone()));
            }
        }
    }

    /// On a volume: shows each object's mask of the slice in view.
    pub fn load_view(&mut self) {
        let Some((z, n)) = self
            .volume
            .as_ref()
            .map(|v| (v.z, v.volume.size[0] * v.volume.size[1]))
        else {
            return;
        };
        for o in &mut self.objects {
            o.mask = o
                .slices
                .get(z)
                .and_then(|m| m.as_deref().cloned())
                .unwrap_or_else(|| vec![0; n]);
        }
    }

    pub fn set_image(&mut self, img: Planes) {
        self.image = Some(img);
        self.image_id += 1;
    }

    /// Forgets the annotations and view settings of the previous image or volume.
    pub fn clear_work(&mut self) {
        self.objects.clear();
        // A new scan's objects are numbered (and coloured) from the first again.
        self.next_id = 0;
        self.undo.clear();
        self.redo.clear();
        self.selected = None;
        self.reference = None;
        self.level = 127.5;
        self.width = 255.0;
        self.zoom = 1.0;
        self.pan = (0.0, 0.0);
    }

    /// Records the current objects so the next change can be undone.
    pub fn checkpoint(&mut self) {
        self.store_view();
        self.undo.push((self.objects.clone(), self.selected));
        if self.undo.len() > 100 {
            self.undo.remove(0);
        }
        self.redo.clear();
    }
    pub fn undo(&mut self) -> bool {
        self.store_view();
        match self.undo.pop() {
            Some(prev) => {
                let cur = (std::mem::take(&mut self.objects), self.selected);
                self.redo.push(cur);
                (self.objects, self.selected) = prev;
                self.load_view();
                true
            }
            None => false,
        }
    }
    pub fn redo(&mut self) -> bool {
        self.store_view();
        match self.redo.pop() {
            Some(next) => {
                let cur = (std::mem::take(&mut self.objects), self.selected);
                self.undo.push(cur);
                (self.objects, self.selected) = next;
                self.load_view();
                true
            }
            None => false,
        }
    }
    /// The objects drawn on the viewer, with their indices.
    pub fn shown(&self) -> impl Iterator<Item = (usize, &Obj)> {
        self.objects.iter().enumerate().filter(|(_, o)| !o.hidden)
    }

    pub fn new_object(&mut self, bbox: Option<[f32; 4]>, mask: Vec<u8>) -> usize {
        self.next_id += 1;
        let color = PALETTE[(self.next_id - 1) % PALETTE.len()];
        self.objects.push(Obj {
            name: format!("Object {}", self.next_id),
            color,
            bbox,
            mask,
            slices: vec![None; self.volume.as_ref().map_or(0, |v| v.volume.size[2])],
            box3d: None,
            box_slice: self.volume.as_ref().map(|v| v.z),
            hidden: false,
        });
        self.objects.len() - 1
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State { level: 127.5, width: 255.0, opacity: 0.45, zoom: 1.0, ..Default::default() });
}

/// Runs `f` on the page state. Never hold it across an `.await`.
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}
