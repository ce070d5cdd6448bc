//! MedSAM ViT-B's resize: `skimage.transform.resize(img_3c, (1024, 1024), order=3,
//! preserve_range=True, anti_aliasing=True).astype(np.uint8)` on the H×W×3 image.
//!
//! skimage hands this to SciPy: a Gaussian blur (σ = (factor − 1)/2) on each shrunk axis, then
//! `ndimage.zoom(order=3, mode="mirror", grid_mode=True)` over all three axes — the cubic B-spline
//! prefilter along y, x and the channel axis, then a 4×4×4 weighted sum per output value — then
//! clipping to the input's range and truncation to uint8. The truncation makes float rounding
//! visible wherever the exact result is a whole number (flat regions), so the arithmetic follows
//! SciPy's: f64, the same recursions and boundary initialisations, the same summation order,
//! the channel axis included. Checked against skimage's output in `tests/medsam_vit_resize.rs`.

/// The pole of the cubic B-spline prefilter, √3 − 2.
const POLE: f64 = -0.267_949_192_431_122_7;

/// One image as H×W×C f64 values, C fastest (NumPy's layout for `img_3c`).
struct Hwc {
    h: usize,
    w: usize,
    c: usize,
    v: Vec<f64>,
}

impl Hwc {
    fn dims(&self) -> [usize; 3] {
        [self.h, self.w, self.c]
    }
    fn strides(&self) -> [usize; 3] {
        [self.w * self.c, self.c, 1]
    }

    /// Runs `f` on every 1-D line along `axis` (copied out and back, like SciPy's line buffers).
    fn for_each_line(&mut self, axis: usize, mut f: impl FnMut(&mut [f64])) {
        let (dims, strides) = (self.dims(), self.strides());
        let n = dims[axis];
        let others: Vec<usize> = (0..3).filter(|&a| a != axis).collect();
        let mut line = vec![0f64; n];
        for i in 0..dims[others[0]] {
            for j in 0..dims[others[1]] {
                let base = i * strides[others[0]] + j * strides[others[1]];
                for (k, l) in line.iter_mut().enumerate() {
                    *l = self.v[base + k * strides[axis]];
                }
                f(&mut line);
                for (k, l) in line.iter().enumerate() {
                    self.v[base + k * strides[axis]] = *l;
                }
            }
        }
    }
}

/// The resize for C planes of the same size (C = 3 for MedSAM: grey images are repeated).
pub fn resize_skimage_cubic(
    planes: &[&[u8]],
    w: usize,
    h: usize,
    dw: usize,
    dh: usize,
) -> Vec<Vec<u8>> {
    let c = planes.len();
    assert!(c > 0 && w > 0 && h > 0 && dw > 0 && dh > 0);
    assert!(
        planes.iter().all(|p| p.len() == w * h),
        "planes must be w×h"
    );
    let mut img = Hwc {
        h,
        w,
        c,
        v: vec![0.0; h * w * c],
    };
    for (k, p) in planes.iter().enumerate() {
        for (i, &v) in p.iter().enumerate() {
            img.v[i * c + k] = v as f64;
        }
    }
    let (lo, hi) = img
        .v
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let out = if (dw, dh) == (w, h) {
        // ndimage.zoom returns its input when every factor is 1.
        img
    } else {
        // Anti-aliasing on the shrunk axes (σ 0 elsewhere, which SciPy skips).
        for (axis, (n, dn)) in [(h, dh), (w, dw)].into_iter().enumerate() {
            let sigma = ((n as f64 / dn as f64 - 1.0) / 2.0).max(0.0);
            if sigma > 1e-15 {
                let kernel = gaussian_kernel(sigma);
                img.for_each_line(axis, |line| correlate_symmetric_mirror(line, &kernel));
            }
        }
        for axis in 0..3 {
            if img.dims()[axis] > 1 {
                img.for_each_line(axis, prefilter_mirror);
            }
        }
        zoom(&img, [dh, dw, c])
    };
    // Clip to the input's range, then NumPy's astype(uint8), which truncates.
    (0..c)
        .map(|k| {
            (0..dw * dh)
                .map(|i| out.v[i * c + k].clamp(lo, hi) as u8)
                .collect()
        })
        .collect()
}

/// SciPy's `_gaussian_kernel1d(sigma, 0, radius)` with radius ⌊4σ + 0.5⌋, normalised by NumPy's
/// pairwise sum.
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let sigma2 = sigma * sigma;
    let phi: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / sigma2 * (x * x) as f64).exp())
        .collect();
    let sum = numpy_pairwise_sum(&phi);
    phi.iter().map(|p| p / sum).collect()
}

/// NumPy's pairwise summation of a contiguous f64 array (blocks of 128, eight accumulators).
fn numpy_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_pairwise_sum(&a[..n2]) + numpy_pairwise_sum(&a[n2..])
    }
}

/// Index `i` of a line of length `n` extended by mirroring about the end samples (d c b | a b c d | c b a),
/// SciPy's NI_EXTEND_MIRROR.
fn mirror_index(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n <= 1 {
        return 0;
    }
    let s2 = 2 * n - 2;
    let mut i = i;
    if i < 0 {
        i += s2 * (-i / s2);
        i = if i <= 1 - n { i + s2 } else { -i };
    } else if i >= n {
        i -= s2 * (i / s2);
        if i >= n {
            i = s2 - i;
        }
    }
    i as usize
}

/// `correlate1d` with a symmetric kernel and mirror extension, summed as SciPy's symmetric branch:
/// centre first, then pairs from the outside in.
fn correlate_symmetric_mirror(line: &mut [f64], kernel: &[f64]) {
    let n = line.len();
    let r = kernel.len() / 2;
    let src = line.to_vec();
    let at = |i: i64| src[mirror_index(i, n)];
    for (l, out) in line.iter_mut().enumerate() {
        let l = l as i64;
        let mut t = src[l as usize] * kernel[r];
        for j in (1..=r).rev() {
            t += (at(l - j as i64) + at(l + j as i64)) * kernel[r - j];
        }
        *out = t;
    }
}

/// The cubic B-spline prefilter along one line, mirror boundary (SciPy's `apply_filter`).
fn prefilter_mirror(c: &mut [f64]) {
    let n = c.len();
    let z = POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in c.iter_mut() {
        *v *= gain;
    }
    // Causal initialisation for a mirror-symmetric signal.
    let z_n_1 = z.powi(n as i32 - 1);
    let mut z_i = z;
    c[0] += z_n_1 * c[n - 1];
    for i in 1..n - 1 {
        c[0] += z_i * (c[i] + z_n_1 * c[n - 1 - i]);
        z_i *= z;
    }
    c[0] /= 1.0 - z_n_1 * z_n_1;
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    c[n - 1] = (z * c[n - 2] + c[n - 1]) * z / (z * z - 1.0);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

/// SciPy's `get_spline_interpolation_weights` for order 3 (the last weight is 1 minus the rest).
fn cubic_weights(x: f64) -> [f64; 4] {
    let x = x - x.floor();
    let (y, z) = (x, 1.0 - x);
    let w1 = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
    let w2 = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
    let w0 = z * z * z / 6.0;
    let mut w3 = 1.0;
    for w in [w0, w1, w2] {
        w3 -= w;
    }
    [w0, w1, w2, w3]
}

/// Where output sample `k` of `n_out` reads the `n_in` input coefficients: four indices and
/// their weights (grid mode: pixel centres align; coordinates outside are mirrored first).
fn axis_taps(n_in: usize, n_out: usize) -> Vec<([usize; 4], [f64; 4])> {
    let zoom = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|k| {
            let cc = map_coordinate_mirror(((k as f64 + 0.5) * zoom) - 0.5, n_in);
            let start = cc.floor() as i64 - 1;
            let idx = std::array::from_fn(|t| mirror_index(start + t as i64, n_in));
            (idx, cubic_weights(cc))
        })
        .collect()
}

/// SciPy's `map_coordinate` for NI_EXTEND_MIRROR (note: it leaves (n − 1, n) unmapped).
fn map_coordinate_mirror(x: f64, n: usize) -> f64 {
    let len = n as i64;
    if len <= 1 {
        return if x < 0.0 || x > (len - 1) as f64 {
            0.0
        } else {
            x
        };
    }
    let sz2 = (2 * len - 2) as f64;
    if x < 0.0 {
        let x = sz2 * ((-x / sz2) as i64) as f64 + x;
        if x <= (1 - len) as f64 { x + sz2 } else { -x }
    } else if x > (len - 1) as f64 {
        let x = x - sz2 * ((x / sz2) as i64) as f64;
        if x >= len as f64 { sz2 - x } else { x }
    } else {
        x
    }
}

/// The interpolation: per output value, 64 terms in SciPy's order (y outermost, channel
/// innermost), each coefficient times the y, x and channel weights in that order.
fn zoom(coef: &Hwc, [dh, dw, dc]: [usize; 3]) -> Hwc {
    let (ty, tx, tc) = (
        axis_taps(coef.h, dh),
        axis_taps(coef.w, dw),
        axis_taps(coef.c, dc),
    );
    let [sy, sx, _] = coef.strides();
    let mut v = Vec::with_capacity(dh * dw * dc);
    for (iy, wy) in &ty {
        for (ix, wx) in &tx {
            for (ic, wc) in &tc {
                let mut t = 0.0;
                for a in 0..4 {
                    for b in 0..4 {
                        let row = iy[a] * sy + ix[b] * sx;
                        for d in 0..4 {
                            t += coef.v[row + ic[d]] * wy[a] * wx[b] * wc[d];
                        }
                    }
                }
                v.push(t);
            }
        }
    }
    Hwc {
        h: dh,
        w: dw,
        c: dc,
        v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_interpolation_keeps_samples_and_smooth_ramps() {
        // A linear ramp is reproduced exactly by cubic splines (mirror boundary keeps it inside).
        let ramp: Vec<u8> = (0..16u8).map(|i| i * 10).collect();
        let out = resize_skimage_cubic(&[&ramp], 16, 1, 16, 1);
        assert_eq!(out[0], ramp);
        // Doubling a ramp: interior outputs sit halfway between samples (x.25 and x.75 steps).
        let out = resize_skimage_cubic(&[&ramp, &ramp, &ramp], 16, 1, 32, 1);
        for k in 4..28 {
            let exact = ((k as f64 + 0.5) * 0.5 - 0.5) * 10.0;
            assert!(
                (out[0][k] as f64 - exact.trunc()).abs() <= 1.0,
                "{k}: {} vs {exact}",
                out[0][k]
            );
        }
        assert_eq!(out[0], out[2]);
    }

    #[test]
    fn numpy_sum_and_mirror_indices() {
        let a: Vec<f64> = (0..20).map(|i| i as f64 * 0.1).collect();
        assert!((numpy_pairwise_sum(&a) - 19.0).abs() < 1e-12);
        assert_eq!(
            (-3..8).map(|i| mirror_index(i, 4)).collect::<Vec<_>>(),
            [3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]
        );
        assert_eq!(map_coordinate_mirror(-0.25, 512), 0.25);
        assert_eq!(map_coordinate_mirror(511.25, 512), 511.25);
        let k = gaussian_kernel(0.5);
        assert_eq!(k.len(), 5);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15 && k[1] == k[3]);
    }
}
