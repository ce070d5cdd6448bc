//! 3D MedSAM: one box propagated through a volume slice by slice, as the official LiteMedSAM 3D
//! procedure does it (CVPR24_LiteMedSAM_infer.py, `MedSAM_infer_npz_3D`):
//! - the middle slice `z0 + (z1 − z0) / 2` is decoded with the user's box;
//! - each next slice, upwards to `z1` and then downwards to `z0`, takes its box from its
//!   neighbour's mask: INTER_AREA longest-side resize to 256, padded, bounding box widened by 3
//!   and clipped to [0, 256]; an empty neighbour falls back to the middle box.
//!
//! Beyond the official procedure: the sweep may continue past `z0`/`z1` while masks keep
//! appearing (never with the fallback box there), a slice corrected by the user can be
//! re-propagated from, progress is reported and can cancel, and embeddings are cached.

use super::medsam::{ImageEmbedding, MedSam, UserPrompt};
use crate::error::{Error, Result};
use crate::imaging::GrayImage;
use crate::imaging::decode::Planes;
use crate::imaging::resize::{longest_side_size, resize_area};
use crate::models::sam::Prompt;
use std::collections::VecDeque;

/// The official widening of a neighbour mask's box, in 256-pixels.
const BOX_SHIFT: f32 = 3.0;

/// A box on the axial slices `z0..=z1`, in voxels: `rect` = [x0, y0, x1, y1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Box3d {
    pub rect: [f32; 4],
    pub z0: usize,
    pub z1: usize,
}

impl Box3d {
    /// From the official `[x0, y0, z0, x1, y1, z1]` layout.
    pub fn from_official(b: [f32; 6]) -> Result<Self> {
        if b.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::Prompt(format!(
                "the 3D box {b:?} must hold non-negative numbers"
            )));
        }
        Ok(Box3d {
            rect: [b[0], b[1], b[3], b[4]],
            z0: b[2] as usize,
            z1: b[5] as usize,
        })
    }

    /// The slice propagation starts from: int((z1 − z0)/2 + z0).
    pub fn middle(&self) -> usize {
        self.z0 + (self.z1 - self.z0) / 2
    }
}

/// A windowed volume as the model sees it: `depth` slices of `width`×`height` u8, z-major.
#[derive(Debug, Clone, Copy)]
pub struct SliceStack<'a> {
    pub width: usize,
    pub height: usize,
    pub data: &'a [u8],
}

impl SliceStack<'_> {
    pub fn depth(&self) -> usize {
        self.data.len() / (self.width * self.height).max(1)
    }

    /// Slice `z` as the model sees it.
    pub fn slice(&self, z: usize) -> Planes {
        let n = self.width * self.height;
        Planes::gray(GrayImage::new(
            self.width,
            self.height,
            self.data[z * n..(z + 1) * n].to_vec(),
        ))
    }
}

/// Image embeddings of recently used slices (each is 4 MB for LiteMedSAM), oldest dropped first.
#[derive(Debug)]
pub struct EmbeddingCache {
    capacity: usize,
    entries: VecDeque<(usize, ImageEmbedding)>,
}

impl EmbeddingCache {
    pub fn new(capacity: usize) -> Self {
        EmbeddingCache {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, z: usize) -> bool {
        self.entries.iter().any(|(k, _)| *k == z)
    }

    /// Forgets everything (a new volume or a new window).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Slice `z`'s embedding if cached (it becomes the most recently used).
    pub fn get(&mut self, z: usize) -> Option<ImageEmbedding> {
        let i = self.entries.iter().position(|(k, _)| *k == z)?;
        let hit = self.entries.remove(i).expect("index from position");
        self.entries.push_back(hit.clone());
        Some(hit.1)
    }

    pub fn insert(&mut self, z: usize, emb: ImageEmbedding) {
        self.entries.retain(|(k, _)| *k != z);
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((z, emb));
    }
}

/// Options of a propagation run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Propagation {
    /// Continue past `z0`/`z1` until a slice's mask comes out empty.
    pub beyond: bool,
    /// Re-propagate after the user corrected this slice: segment again only the slices further
    /// from the middle on its side (both sides for the middle itself), from the corrected mask.
    /// `None`: the whole run from the middle box.
    pub from_edited: Option<usize>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Stopped by the progress callback; the slices done so far are kept.
    Cancelled,
}

/// One 0/1 mask per axial slice; `None` where no slice was segmented.
pub type SliceMasks = Vec<Option<Vec<u8>>>;

/// One direction of travel from a slice whose mask is known (or from the middle box).
struct Sweep {
    step: isize,
    /// First slice to segment.
    from: usize,
}

/// Segments `box3d` through the volume, filling `masks` (length = depth).
/// `embed` computes a slice's embedding when the cache lacks it (the app does it off the page's
/// thread; natively it is `MedSam::embed`). `progress(done, planned)` is awaited after each
/// slice; returning false cancels.
#[allow(clippy::too_many_arguments)]
pub async fn propagate(
    model: &MedSam,
    embed: &mut impl AsyncFnMut(usize, &Planes) -> Result<ImageEmbedding>,
    stack: &SliceStack<'_>,
    box3d: &Box3d,
    opts: Propagation,
    cache: &mut EmbeddingCache,
    masks: &mut SliceMasks,
    progress: &mut impl AsyncFnMut(usize, usize) -> bool,
) -> Result<Outcome> {
    check(stack, box3d, masks)?;
    match opts.from_edited {
        // The middle slice's mask is the middle box's result, whatever was there before.
        None => masks[box3d.middle()] = None,
        Some(edited) => {
            if masks.get(edited).is_none_or(Option::is_none) {
                return Err(Error::Input(format!(
                    "slice {edited} has no mask to propagate from"
                )));
            }
        }
    }
    let sweeps = sweeps(box3d, opts.from_edited);
    let mid_box = model
        .model_prompt_for_size(stack.width, stack.height, &UserPrompt::from_box(box3d.rect))?
        .bbox
        .expect("a box prompt has a box");
    let geometry = (stack.width, stack.height, stack.depth());
    let mut segment = async |z: usize, bbox: [f32; 4]| -> Result<Vec<u8>> {
        let emb = match cache.get(z) {
            Some(hit) => hit,
            None => {
                let emb = embed(z, &stack.slice(z)).await?;
                cache.insert(z, emb.clone());
                emb
            }
        };
        let prompt = Prompt {
            points: vec![],
            bbox: Some(bbox),
        };
        Ok(model.predict_model_prompt(&emb, &prompt).await?.mask)
    };
    sweep(
        geometry,
        box3d,
        mid_box,
        opts,
        masks,
        &sweeps,
        &mut segment,
        progress,
    )
    .await
}

fn check(stack: &SliceStack, box3d: &Box3d, masks: &SliceMasks) -> Result<()> {
    let depth = stack.depth();
    if stack.width == 0
        || stack.height == 0
        || stack.data.len() != depth * stack.width * stack.height
    {
        return Err(Error::Input(
            "the volume's size does not match its data".into(),
        ));
    }
    if box3d.z0 > box3d.z1 || box3d.z1 >= depth {
        return Err(Error::Prompt(format!(
            "the slice range {}–{} is not inside the volume's {depth} slices",
            box3d.z0, box3d.z1
        )));
    }
    if masks.len() != depth {
        return Err(Error::Input(format!(
            "{} slice masks for a volume of {depth} slices",
            masks.len()
        )));
    }
    Ok(())
}

/// The directions a run travels: from the middle up then down, or outwards from a corrected
/// slice on its side (both sides for the middle itself).
fn sweeps(box3d: &Box3d, from_edited: Option<usize>) -> Vec<Sweep> {
    let mid = box3d.middle();
    let up = |from| Sweep { step: 1, from };
    let down = |from: usize| Sweep {
        step: -1,
        from: from.wrapping_sub(1),
    };
    match from_edited {
        None => vec![up(mid), down(mid)],
        Some(edited) => match edited.cmp(&mid) {
            std::cmp::Ordering::Greater => vec![up(edited + 1)],
            std::cmp::Ordering::Less => vec![down(edited)],
            std::cmp::Ordering::Equal => vec![up(edited + 1), down(edited)],
        },
    }
}

/// The slices inside `z0..=z1` a run will segment, in the order it visits them (slices past the
/// range, with `beyond`, follow only as masks keep appearing). Lets the app encode ahead.
pub fn planned_slices(box3d: &Box3d, from_edited: Option<usize>) -> Vec<usize> {
    let (z0, z1) = (box3d.z0 as isize, box3d.z1 as isize);
    let mut order = vec![];
    for s in sweeps(box3d, from_edited) {
        let mut z = s.from as isize;
        while (z0..=z1).contains(&z) {
            order.push(z as usize);
            z += s.step;
        }
    }
    order
}

/// The propagation walk itself, with `segment(z, box in model pixels)` doing the model's part.
#[allow(clippy::too_many_arguments)]
async fn sweep(
    (width, height, depth): (usize, usize, usize),
    box3d: &Box3d,
    mid_box: [f32; 4],
    opts: Propagation,
    masks: &mut SliceMasks,
    sweeps: &[Sweep],
    segment: &mut impl AsyncFnMut(usize, [f32; 4]) -> Result<Vec<u8>>,
    progress: &mut impl AsyncFnMut(usize, usize) -> bool,
) -> Result<Outcome> {
    let depth = depth as isize;
    let (z0, z1) = (box3d.z0 as isize, box3d.z1 as isize);
    let mid = box3d.middle();
    // Planned = the most slices the run can still segment: inside the range, or with `beyond`
    // up to the volume's ends; a sweep that stops early gives back what it left. So the
    // progress only moves forward and ends at 1.
    let reach = |s: &Sweep| {
        let from = s.from as isize;
        let (lo, hi) = if opts.beyond {
            (0, depth - 1)
        } else {
            (z0, z1)
        };
        if s.step > 0 {
            (hi - from + 1).max(0) as usize
        } else {
            (from - lo + 1).max(0) as usize
        }
    };
    let mut planned: usize = sweeps.iter().map(reach).sum();
    let mut done = 0;
    for sweep in sweeps {
        let mut z = sweep.from as isize;
        let mut left = reach(sweep);
        // Slices of this sweep left unvisited (after a stop) must not keep stale masks.
        let mut stopped_at = None;
        while (0..depth).contains(&z) {
            let inside = (z0..=z1).contains(&z);
            if !inside && !opts.beyond {
                stopped_at = Some(z);
                break;
            }
            let zu = z as usize;
            let neighbour = if zu == mid {
                None
            } else {
                masks[(z - sweep.step) as usize].as_deref()
            };
            let bbox = match neighbour.and_then(|m| neighbour_box(m, width, height)) {
                Some(b) => b,
                None if inside => mid_box,
                // Past the range the mask has vanished: stop.
                None => {
                    stopped_at = Some(z);
                    break;
                }
            };
            let mask = segment(zu, bbox).await?;
            let empty = !mask.contains(&1);
            masks[zu] = Some(mask);
            done += 1;
            left = left.saturating_sub(1);
            if !inside && empty {
                planned -= std::mem::take(&mut left);
            }
            if !progress(done, planned).await {
                return Ok(Outcome::Cancelled);
            }
            if !inside && empty {
                stopped_at = Some(z + sweep.step);
                break;
            }
            z += sweep.step;
        }
        planned -= left;
        if let Some(mut z) = stopped_at {
            while (0..depth).contains(&z) && !(z0..=z1).contains(&z) {
                masks[z as usize] = None;
                z += sweep.step;
            }
        }
    }
    Ok(Outcome::Done)
}

/// The official `get_bbox256` on the neighbour's mask: None when the resized mask is empty.
fn neighbour_box(mask: &[u8], w: usize, h: usize) -> Option<[f32; 4]> {
    if !mask.iter().any(|&v| v > 0) {
        return None;
    }
    let (nw, nh) = longest_side_size(w, h, 256);
    let small = resize_area(&GrayImage::new(w, h, mask.to_vec()), nw, nh);
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..nh {
        for x in 0..nw {
            if small.data[y * nw + x] > 0 {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    if x0 == usize::MAX {
        return None;
    }
    let lo = |v: usize| (v as f32 - BOX_SHIFT).max(0.0);
    let hi = |v: usize| (v as f32 + BOX_SHIFT).min(256.0);
    Some([lo(x0), lo(y0), hi(x1), hi(y1)])
}

/// Axial slices `z0..=z1` that hold any voxel of `masks`.
pub fn segmented_range(masks: &SliceMasks) -> Option<(usize, usize)> {
    let nonempty = |m: &Option<Vec<u8>>| m.as_ref().is_some_and(|m| m.contains(&1));
    let first = masks.iter().position(nonempty)?;
    let last = masks.iter().rposition(nonempty)?;
    Some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_box_is_widened_by_three_and_clipped() {
        // 512×512 → 256: a 2×2 block at (100, 200) becomes one pixel at (50, 100).
        let (w, h) = (512, 512);
        let mut m = vec![0u8; w * h];
        for y in 200..202 {
            for x in 100..102 {
                m[y * w + x] = 1;
            }
        }
        assert_eq!(neighbour_box(&m, w, h), Some([47.0, 97.0, 53.0, 103.0]));
        // At the corner the box is clipped to the 256 frame, upper edge included.
        let mut c = vec![0u8; w * h];
        for y in 510..512 {
            for x in 0..2 {
                c[y * w + x] = 1;
            }
        }
        assert_eq!(neighbour_box(&c, w, h), Some([0.0, 252.0, 3.0, 256.0]));
        // A lone voxel averages below ½ and vanishes at 256: no box (fallback).
        let mut one = vec![0u8; w * h];
        one[300 * w + 300] = 1;
        assert_eq!(neighbour_box(&one, w, h), None);
        assert_eq!(neighbour_box(&vec![0; w * h], w, h), None);
    }

    /// A synthetic model on 256² slices: a square of half-size `r(z)` at the centre, cut to the
    /// box; it records the boxes it was given.
    fn fake_run(
        box3d: Box3d,
        opts: Propagation,
        masks: &mut SliceMasks,
        r: impl Fn(usize) -> i32,
        stop_after: usize,
    ) -> (Outcome, Vec<(usize, [f32; 4])>, Vec<(usize, usize)>) {
        let mut calls = vec![];
        // What the progress said after each slice: (done, planned), also returned.
        let mut said: Vec<(usize, usize)> = vec![];
        let mut segment = async |z: usize, b: [f32; 4]| -> Result<Vec<u8>> {
            calls.push((z, b));
            let r = r(z);
            let inside = |v: usize, lo: f32, hi: f32| {
                (v as i32 - 128).abs() < r && v as f32 >= lo && v as f32 <= hi
            };
            Ok((0..256 * 256)
                .map(|i| (inside(i % 256, b[0], b[2]) && inside(i / 256, b[1], b[3])) as u8)
                .collect())
        };
        let sweeps = sweeps(&box3d, opts.from_edited);
        let out = pollster::block_on(sweep(
            (256, 256, masks.len()),
            &box3d,
            [0.0, 0.0, 256.0, 256.0],
            opts,
            masks,
            &sweeps,
            &mut segment,
            &mut async |done, planned| {
                said.push((done, planned));
                done < stop_after
            },
        ))
        .unwrap();
        // The progress only moves forward, never past the end, and ends there.
        for (i, &(done, planned)) in said.iter().enumerate() {
            assert!(done == i + 1 && done <= planned, "progress {said:?}");
            if i > 0 {
                assert!(planned <= said[i - 1].1, "the total grew: {said:?}");
            }
        }
        (out, calls, said)
    }

    #[test]
    fn sweep_walks_up_then_down_with_neighbour_boxes() {
        let b = Box3d {
            rect: [0.0; 4],
            z0: 8,
            z1: 12,
        };
        let cone = |z: usize| 40 - 8 * (z as i32 - 10).abs();
        let mut masks = vec![None; 20];
        masks[18] = Some(vec![1; 256 * 256]);
        let (out, calls, said) = fake_run(b, Propagation::default(), &mut masks, cone, usize::MAX);
        assert_eq!(out, Outcome::Done);
        assert_eq!(said.last(), Some(&(5, 5)));
        let order: Vec<usize> = calls.iter().map(|c| c.0).collect();
        assert_eq!(order, [10, 11, 12, 9, 8]);
        assert_eq!(
            planned_slices(&b, None),
            order,
            "the plan the app encodes ahead by"
        );
        assert_eq!(
            calls[0].1,
            [0.0, 0.0, 256.0, 256.0],
            "middle slice: the user's box"
        );
        // Slice 10's square spans 89..=167; slice 11 gets it widened by 3.
        assert_eq!(calls[1].1, [86.0, 86.0, 170.0, 170.0]);
        assert_eq!(
            calls[3].1,
            [86.0, 86.0, 170.0, 170.0],
            "slice 9 from slice 10"
        );
        assert_eq!(masks[18], None, "a stale mask outside the range is dropped");
        assert!(masks[7].is_none() && masks[13].is_none());

        // Past the range it goes on until a mask is empty, and no further.
        let mut masks = vec![None; 20];
        let (_, calls, said) = fake_run(
            b,
            Propagation {
                beyond: true,
                ..Propagation::default()
            },
            &mut masks,
            cone,
            usize::MAX,
        );
        let order: Vec<usize> = calls.iter().map(|c| c.0).collect();
        assert_eq!(order, [10, 11, 12, 13, 14, 15, 9, 8, 7, 6, 5]);
        // At most the whole volume (10 slices up, 10 down); each sweep gives back what it left
        // when its mask vanishes (up: 4 after slice 15), so the run ends at 11 of 11.
        assert_eq!(said[0], (1, 20));
        assert_eq!(said[5], (6, 16));
        assert_eq!(said.last(), Some(&(11, 11)));
        assert_eq!(segmented_range(&masks), Some((6, 14)));
        assert!(masks[15].as_ref().is_some_and(|m| !m.contains(&1)));
        assert!(masks[16..].iter().all(Option::is_none));
    }

    #[test]
    fn empty_neighbour_falls_back_to_the_users_box_and_cancel_keeps_work() {
        let b = Box3d {
            rect: [0.0; 4],
            z0: 8,
            z1: 12,
        };
        // Nothing on slice 11: slice 12 is decoded with the middle box again.
        let hole = |z: usize| if z == 11 { 0 } else { 30 };
        let mut masks = vec![None; 20];
        let (_, calls, _) = fake_run(b, Propagation::default(), &mut masks, hole, usize::MAX);
        assert_eq!(calls[2], (12, [0.0, 0.0, 256.0, 256.0]));

        let mut masks = vec![None; 20];
        let (out, calls, _) = fake_run(b, Propagation::default(), &mut masks, hole, 2);
        assert_eq!(out, Outcome::Cancelled);
        assert_eq!(calls.len(), 2);
        assert_eq!(masks.iter().filter(|m| m.is_some()).count(), 2);
    }

    #[test]
    fn planned_slices_follow_a_correction_outwards() {
        let b = Box3d {
            rect: [0.0; 4],
            z0: 8,
            z1: 12,
        };
        assert_eq!(planned_slices(&b, Some(11)), [12]);
        assert_eq!(planned_slices(&b, Some(9)), [8]);
        assert_eq!(planned_slices(&b, Some(10)), [11, 12, 9, 8]);
        assert_eq!(planned_slices(&b, Some(12)), Vec::<usize>::new());
        let one = Box3d { z0: 0, z1: 0, ..b };
        assert_eq!(planned_slices(&one, None), [0]);
    }

    #[test]
    fn middle_slice_is_the_official_one() {
        let b = |z0, z1| Box3d {
            rect: [0.0; 4],
            z0,
            z1,
        };
        assert_eq!(b(15, 25).middle(), 20);
        assert_eq!(b(11, 17).middle(), 14);
        assert_eq!(b(4, 5).middle(), 4);
        assert_eq!(b(7, 7).middle(), 7);
    }

    #[test]
    fn segmented_range_skips_empty_slices() {
        let masks = vec![
            None,
            Some(vec![0, 0]),
            Some(vec![0, 1]),
            Some(vec![1, 0]),
            None,
        ];
        assert_eq!(segmented_range(&masks), Some((2, 3)));
        assert_eq!(segmented_range(&vec![None, Some(vec![0])]), None);
    }
}
