//! The Tools panel's Refine buttons and the Volume panel's Fill between: whole-mask corrections
//! of the selected object, one undo step each. On a volume they apply to every slice of the
//! object (holes, growing and shrinking in each slice's plane; the largest piece in 3D).

use super::Ui;
use super::state::with;
use crate::imaging::refine::{fill_between, fill_holes, grow, keep_in_range, keep_largest, shrink};
use leptos::prelude::Set;
use std::rc::Rc;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Op {
    FillHoles,
    Largest,
    Grow,
    Shrink,
    /// Only the pixels whose value (the scan's own on a volume, the grey level on an image) lies
    /// in `lo..=hi` stay.
    InRange {
        lo: f32,
        hi: f32,
    },
    /// Volumes only: the empty slices between masks, interpolated.
    Between,
}

impl Op {
    /// Button label, shortcut, what it does (the button's tooltip).
    pub fn label(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Op::FillHoles => (
                "Fill holes",
                "F",
                "Background enclosed by the selected mask becomes mask (in each slice)",
            ),
            Op::Largest => (
                "Largest piece",
                "L",
                "Keep only the selected mask's largest connected piece (across slices on a volume)",
            ),
            Op::Grow => (
                "Grow",
                "G",
                "Grow the selected mask by one pixel (in each slice)",
            ),
            Op::Shrink => (
                "Shrink",
                "Shift+G",
                "Shrink the selected mask by one pixel (in each slice)",
            ),
            Op::InRange { .. } => (
                "Keep in range",
                "",
                "Keep only the selected mask's pixels whose value lies in the range (the scan's own, HU on CT; grey levels on an image)",
            ),
            Op::Between => (
                "Fill between",
                "I",
                "Fill the empty slices between the selected object's masks by interpolating their shapes",
            ),
        }
    }
}

/// Applies `op` to the selected object and says what changed; nothing changed, no undo step.
pub fn apply(ui: Ui, op: Op) {
    let said = with(|s| {
        let i = s.selected.filter(|&i| i < s.objects.len())?;
        s.store_view();
        let (w, h, spacing) = match (&s.volume, &s.display) {
            (Some(v), _) => {
                let [sx, sy, _] = v.volume.spacing;
                (v.volume.size[0], v.volume.size[1], (sy, sx))
            }
            (None, Some(img)) => (img.width, img.height, (1.0, 1.0)),
            (None, None) => return None,
        };
        let o = &s.objects[i];
        // A 2D mask is a volume of one slice.
        let mut slices: Vec<Option<Vec<u8>>> = if s.volume.is_some() {
            o.slices.iter().map(|m| m.as_deref().cloned()).collect()
        } else {
            vec![Some(o.mask.clone())]
        };
        let on_slices = slices.iter().flatten().count();
        let (changed, said) = match op {
            Op::Largest => {
                let r = keep_largest(&mut slices, w, h);
                let said = match r.pieces {
                    0 => "One piece: nothing to remove.".to_string(),
                    n => format!(
                        "Kept the largest piece: removed {n} other{} ({} px).",
                        if n == 1 { "" } else { "s" },
                        r.pixels
                    ),
                };
                (r.pixels, said)
            }
            Op::InRange { lo, hi } => {
                let n: usize = match &s.volume {
                    Some(v) => slices
                        .iter_mut()
                        .enumerate()
                        .filter_map(|(z, m)| Some((z, m.as_mut()?)))
                        .map(|(z, m)| {
                            keep_in_range(m, &v.volume.data[z * w * h..(z + 1) * w * h], lo, hi)
                        })
                        .sum(),
                    None => {
                        let grey: Vec<f32> =
                            s.display.as_ref()?.data.iter().map(|&g| g as f32).collect();
                        slices
                            .iter_mut()
                            .flatten()
                            .map(|m| keep_in_range(m, &grey, lo, hi))
                            .sum()
                    }
                };
                let range = match (lo.is_finite(), hi.is_finite()) {
                    (true, true) => format!("from {lo} to {hi}"),
                    (true, false) => format!("from {lo} up"),
                    _ => format!("up to {hi}"),
                };
                let said = match n {
                    0 => format!("Every pixel of the mask has a value {range} already."),
                    n => format!("Kept the values {range}: −{n} px."),
                };
                (n, said)
            }
            Op::Between if s.volume.is_none() => {
                (0, "Fill between works on a volume's slices.".to_string())
            }
            Op::Between => {
                let n = fill_between(&mut slices, w, h, spacing);
                let said = match n {
                    0 => "No gap to fill: the object's masks are on neighbouring slices (or one)."
                        .to_string(),
                    1 => "Filled 1 slice between the masks.".to_string(),
                    n => format!("Filled {n} slices between the masks."),
                };
                (n, said)
            }
            _ => {
                let f = match op {
                    Op::FillHoles => fill_holes,
                    Op::Grow => grow,
                    _ => shrink,
                };
                let n: usize = slices.iter_mut().flatten().map(|m| f(m, w, h)).sum();
                let across = match on_slices {
                    0 | 1 => String::new(),
                    k => format!(" on {k} slices"),
                };
                let said = match (op, n) {
                    (Op::FillHoles, 0) => "No holes to fill.".to_string(),
                    (Op::FillHoles, n) => format!("Filled holes: {n} px{across}."),
                    (Op::Grow, n) => format!("Grown by one pixel: +{n} px{across}."),
                    (_, n) => format!("Shrunk by one pixel: −{n} px{across}."),
                };
                (n, said)
            }
        };
        if changed > 0 {
            s.checkpoint();
            let o = &mut s.objects[i];
            o.hidden = false;
            if s.volume.is_some() {
                // Slices left as they were stay shared with the undo history.
                let old = std::mem::take(&mut o.slices);
                o.slices = slices
                    .into_iter()
                    .zip(old)
                    .map(|(new, old)| match (new.filter(|m| m.contains(&1)), old) {
                        (Some(n), Some(o)) if *o == n => Some(o),
                        (n, _) => n.map(Rc::new),
                    })
                    .collect();
                s.load_view();
            } else if let Some(Some(m)) = slices.pop() {
                o.mask = m;
            }
        }
        Some(said)
    });
    match said {
        Some(said) => {
            ui.status.set(said);
            ui.sync();
        }
        None => ui.status.set("Select an object first.".into()),
    }
}
