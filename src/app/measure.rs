//! The objects' measurements: what the Volume panel shows for the selected one, and the CSV the
//! Objects panel exports for all (sizes, and the image's values under each mask).

use super::Ui;
use super::state::{State, with};
use super::web;
use crate::metrics::{
    Extent, ObjectMeasure, area_mm2, axes_mm, intensity, measurements_csv, volume_ml,
};

/// Object `i`'s measurements: on a volume over all its slices, with the scan's own values (HU
/// on CT); on a 2D image with its grey levels.
pub fn object(s: &State, i: usize) -> Option<ObjectMeasure> {
    let o = s.objects.get(i)?;
    let set = |m: &[u8]| m.iter().filter(|&&x| x > 0).count();
    match &s.volume {
        Some(v) => {
            let [w, h, depth] = v.volume.size;
            let [sx, sy, _] = v.volume.spacing;
            let slices: Vec<(usize, &[u8])> = (0..depth)
                .filter_map(|z| o.slice_mask(z, v.z).map(|m| (z, m)))
                .filter(|(_, m)| m.iter().any(|&x| x > 0))
                .collect();
            let pixels = slices.iter().map(|(_, m)| set(m)).sum();
            // The slice with the longest long axis, and that axis's short one.
            let (long_axis_mm, short_axis_mm, axis_z) = slices
                .iter()
                .filter_map(|&(z, m)| axes_mm(m, w, [sx, sy]).map(|a| (a.long_mm, a.short_mm, z)))
                .fold((0.0, 0.0, 0), |best, a| if a.0 > best.0 { a } else { best });
            let extent = slices
                .first()
                .zip(slices.last())
                .map(|(first, last)| Extent {
                    ml: volume_ml(pixels, v.volume.spacing),
                    slices: slices.len(),
                    first: first.0 + 1,
                    last: last.0 + 1,
                    largest_mm2: slices
                        .iter()
                        .map(|(_, m)| area_mm2(m, [sx, sy]))
                        .fold(0.0, f64::max),
                    long_axis_mm,
                    short_axis_mm,
                    axis_slice: axis_z + 1,
                });
            let values = slices.iter().flat_map(|&(z, m)| {
                let scan = &v.volume.data[z * w * h..(z + 1) * w * h];
                m.iter().zip(scan).filter(|(x, _)| **x > 0).map(|(_, &v)| v)
            });
            Some(ObjectMeasure {
                name: o.name.clone(),
                pixels,
                extent,
                intensity: intensity(values),
            })
        }
        None => {
            let img = s.display.as_ref()?;
            let values = o.mask.iter().zip(&img.data).filter(|(x, _)| **x > 0);
            Some(ObjectMeasure {
                name: o.name.clone(),
                pixels: set(&o.mask),
                extent: None,
                intensity: intensity(values.map(|(_, &g)| g as f32)),
            })
        }
    }
}

/// Downloads every object's measurements as `measurements.csv`.
pub fn export(ui: Ui) {
    let rows: Vec<ObjectMeasure> = with(|s| {
        s.store_view();
        (0..s.objects.len()).filter_map(|i| object(s, i)).collect()
    });
    if rows.is_empty() {
        return ui.fail("Segment something first: there is nothing to measure.");
    }
    if let Err(e) = web::download(
        "measurements.csv",
        "text/csv",
        measurements_csv(&rows).as_bytes(),
    ) {
        ui.fail(format!("Could not save the measurements: {e}"));
    }
}
