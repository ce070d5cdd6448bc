//! Intensity windowing to 8 bits, as MedSAM's preprocessing (pre_CT_MR.py) does it.

use super::GrayImage;

/// Which normalization to apply to raw intensities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// CT: clip to [level − width/2, level + width/2], then min–max over the clipped values.
    Ct { level: f64, width: f64 },
    /// MR: clip to the 0.5–99.5 percentiles of the non-zero voxels, min–max, zeros stay zero.
    MrPercentile,
}

impl Window {
    /// MedSAM's default CT soft-tissue window (WL 40, WW 400).
    pub const CT_SOFT_TISSUE: Window = Window::Ct {
        level: 40.0,
        width: 400.0,
    };

    /// The official preset for a scan's raw values: CT soft tissue when they look like HU
    /// (anything below −500), MR percentiles otherwise.
    pub fn official_for(values: &[f32]) -> Window {
        match values.iter().any(|&v| v < -500.0) {
            true => Window::CT_SOFT_TISSUE,
            false => Window::MrPercentile,
        }
    }
}

/// NumPy's default (linear) percentile of sorted data.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Applies `window` to raw values and returns 8-bit values, exactly as the official fixtures
/// were made (checked voxel for voxel on the pyradiomics CT and MR volumes):
/// - CT: clip to the window, min–max over the clipped values, ×255, round half to even;
/// - MR: the 0.5/99.5 percentiles of the voxels > 0; those voxels are clipped to them, all
///   others become 0; min–max over everything (so 0 stays 0), ×255, round.
///
/// Non-finite values count as the window's floor (CT) or as background (MR).
pub fn apply(values: &[f32], window: Window) -> Vec<u8> {
    let clipped: Vec<f64> = match window {
        Window::Ct { level, width } => {
            let (lo, hi) = (level - width / 2.0, level + width / 2.0);
            values
                .iter()
                .map(|&v| {
                    if v.is_finite() {
                        (v as f64).clamp(lo, hi)
                    } else {
                        lo
                    }
                })
                .collect()
        }
        Window::MrPercentile => {
            let foreground = |v: f32| v.is_finite() && v > 0.0;
            let mut nz: Vec<f64> = values
                .iter()
                .filter(|v| foreground(**v))
                .map(|&v| v as f64)
                .collect();
            if nz.is_empty() {
                return vec![0; values.len()];
            }
            nz.sort_by(|a, b| a.total_cmp(b));
            let (lo, hi) = (percentile(&nz, 0.5), percentile(&nz, 99.5));
            values
                .iter()
                .map(|&v| {
                    if foreground(v) {
                        (v as f64).clamp(lo, hi)
                    } else {
                        0.0
                    }
                })
                .collect()
        }
    };
    let min = clipped.iter().copied().fold(f64::INFINITY, f64::min);
    let max = clipped.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = max - min;
    clipped
        .iter()
        .map(|&c| {
            if range > 0.0 {
                ((c - min) / range * 255.0).round_ties_even() as u8
            } else {
                0
            }
        })
        .collect()
}

/// Windowed 8-bit image of a raw slice.
pub fn window_image(width: usize, height: usize, values: &[f32], window: Window) -> GrayImage {
    GrayImage::new(width, height, apply(values, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_window_clips_and_stretches() {
        // −1000 HU (air) and 1000 HU (bone) clip to the window ends.
        let v = apply(
            &[-1000.0, -160.0, 40.0, 240.0, 1000.0],
            Window::CT_SOFT_TISSUE,
        );
        // 40 HU sits at 127.5 → rounds half to even (128), as np.round does.
        assert_eq!(v, vec![0, 0, 128, 255, 255]);
    }

    #[test]
    fn mr_percentiles_keep_zeros_zero() {
        let mut vals: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
        vals.push(0.0);
        let v = apply(&vals, Window::MrPercentile);
        assert_eq!(*v.last().unwrap(), 0);
        // 1 is below the 0.5th percentile (5.995) and clipped to it; the zero voxel keeps the
        // minimum at 0, so it maps to 5.995/995.005·255 = 1.54 → 2.
        assert_eq!(v[0], 2);
        assert_eq!(v[999], 255);
        assert_eq!(v[499], (500.0f64 / 995.005 * 255.0).round() as u8);
        // Without background voxels the minimum is the lower percentile.
        let v = apply(&vals[..1000], Window::MrPercentile);
        assert_eq!(v[0], 0);
    }

    #[test]
    fn numpy_percentile_interpolates() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
    }
}
