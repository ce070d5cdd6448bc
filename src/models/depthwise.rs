//! The browser's depthwise 3×3 convolution on planes (TinyViT's MBConv and patch merging: zero
//! padding 1, stride 1 or 2), then GELU while each output row is in cache. Written against `core`
//! alone like gemm_core.rs, so that the helper threads' module (`gemm_fma.rs`) runs this same
//! code on the channels they take (`gemm::depthwise3x3`): on the page's two threads this pass was
//! serial, ≈ 8 % of an encode.

use super::gemm_core::{Then, gelu_in_place};

/// Output rows and columns of the convolution of an h × w plane.
pub const fn out_size(h: usize, w: usize, stride: usize) -> (usize, usize) {
    ((h - 1) / stride + 1, (w - 1) / stride + 1)
}

/// Floats of working memory [`depthwise3x3`] needs for planes `w` wide: three input rows, each
/// with a zero either side.
pub const fn scratch_len(w: usize) -> usize {
    3 * (w + 2)
}

/// Each of the `c` planes (h × w) of `x` convolved with its own 3×3 `taps` (c × 9, row-major) +
/// `bias` (c), then `then`, into `out` (c planes of [`out_size`]), with `scratch`
/// ([`scratch_len`] floats) as working memory.
#[allow(clippy::too_many_arguments)]
pub fn depthwise3x3(
    x: &[f32],
    taps: &[f32],
    bias: &[f32],
    (c, h, w): (usize, usize, usize),
    stride: usize,
    then: Then,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    assert!(
        h > 0 && w > 0 && (stride == 1 || stride == 2),
        "depthwise3x3: shape"
    );
    let (oh, ow) = out_size(h, w, stride);
    assert!(
        x.len() == c * h * w
            && taps.len() == c * 9
            && bias.len() == c
            && out.len() == c * oh * ow
            && scratch.len() >= scratch_len(w),
        "depthwise3x3: operands of the wrong size"
    );
    // Stride as a constant, so that the stride-1 loop vectorizes.
    let plane = match stride {
        1 => plane::<1>,
        _ => plane::<2>,
    };
    for ch in 0..c {
        plane(
            &x[ch * h * w..][..h * w],
            taps[ch * 9..][..9].try_into().expect("9 taps"),
            bias[ch],
            (h, w),
            then,
            &mut out[ch * oh * ow..][..oh * ow],
            &mut scratch[..scratch_len(w)],
        );
    }
}

/// One plane. Input row `iy` is held, zero-padded, in slot (iy + 1) mod 3 of `rows`, each loaded
/// once (the rows above and below the plane are zeros).
fn plane<const S: usize>(
    x: &[f32],
    taps: &[f32; 9],
    bias: f32,
    (h, w): (usize, usize),
    then: Then,
    out: &mut [f32],
    rows: &mut [f32],
) {
    let ow = out_size(h, w, S).1;
    let wp = w + 2;
    // Which padded input row (iy + 1) each slot holds.
    let mut held = [usize::MAX; 3];
    for (y, o) in out.chunks_exact_mut(ow).enumerate() {
        for r in 0..3 {
            let at = y * S + r;
            let slot = at % 3;
            if held[slot] != at {
                let row = &mut rows[slot * wp..(slot + 1) * wp];
                row[0] = 0.0;
                row[wp - 1] = 0.0;
                match at.checked_sub(1).filter(|&iy| iy < h) {
                    Some(iy) => row[1..=w].copy_from_slice(&x[iy * w..(iy + 1) * w]),
                    None => row[1..=w].fill(0.0),
                }
                held[slot] = at;
            }
        }
        o.fill(bias);
        for r in 0..3 {
            let row = &rows[((y * S + r) % 3) * wp..][..wp];
            let [a, b, c] = [taps[3 * r], taps[3 * r + 1], taps[3 * r + 2]];
            if S == 1 {
                let (l, m, rt) = (&row[..ow], &row[1..=ow], &row[2..ow + 2]);
                for (((o, &l), &m), &rt) in o.iter_mut().zip(l).zip(m).zip(rt) {
                    *o += a * l + b * m + c * rt;
                }
            } else {
                for (xo, o) in o.iter_mut().enumerate() {
                    let p = &row[xo * S..xo * S + 3];
                    *o += a * p[0] + b * p[1] + c * p[2];
                }
            }
        }
        if then == Then::Gelu {
            gelu_in_place(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gemm_core::erf_f32;

    /// Odd sizes, a plane one pixel wide or tall, both strides, with and without GELU, against a
    /// plain float64 convolution.
    #[test]
    fn matches_a_plain_depthwise_convolution() {
        let mut seed = 11u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(c, h, w) in &[(3, 7, 9), (2, 1, 5), (2, 6, 1), (4, 16, 33), (1, 2, 2)] {
            for stride in [1, 2] {
                for then in [Then::Nothing, Then::Gelu] {
                    let x: Vec<f32> = (0..c * h * w).map(|_| rnd()).collect();
                    let taps: Vec<f32> = (0..c * 9).map(|_| rnd()).collect();
                    let bias: Vec<f32> = (0..c).map(|_| rnd()).collect();
                    let (oh, ow) = out_size(h, w, stride);
                    let mut out = vec![f32::NAN; c * oh * ow];
                    let mut scratch = vec![f32::NAN; scratch_len(w)];
                    depthwise3x3(
                        &x,
                        &taps,
                        &bias,
                        (c, h, w),
                        stride,
                        then,
                        &mut out,
                        &mut scratch,
                    );
                    for ch in 0..c {
                        for y in 0..oh {
                            for xo in 0..ow {
                                let mut s = bias[ch] as f64;
                                for ky in 0..3 {
                                    for kx in 0..3 {
                                        let (iy, ix) = (y * stride + ky, xo * stride + kx);
                                        if (1..=h).contains(&iy) && (1..=w).contains(&ix) {
                                            s += taps[ch * 9 + ky * 3 + kx] as f64
                                                * x[ch * h * w + (iy - 1) * w + ix - 1] as f64;
                                        }
                                    }
                                }
                                let s = s as f32;
                                let want = match then {
                                    Then::Gelu => {
                                        0.5 * s
                                            * (1.0 + erf_f32(s * core::f32::consts::FRAC_1_SQRT_2))
                                    }
                                    Then::Nothing => s,
                                };
                                let got = out[(ch * oh + y) * ow + xo];
                                assert!(
                                    (got - want).abs() < 1e-5,
                                    "{c}×{h}×{w} stride {stride}: ({ch}, {y}, {xo}) {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
