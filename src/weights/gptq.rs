//! int8 rounding of weights in groups along each row, one f16 scale per group: plain
//! ([`round_plain`]) and calibrated ([`quantize`], GPTQ, Frantar et al. 2022). Rounding each
//! weight to its nearest step makes errors that add up in the layer's output; calibrated, the
//! columns (inputs) are rounded in turn and each column's error is spread onto the columns not
//! yet rounded, along the inverse of the inputs' Gram matrix H = XᵀX, so the output error
//! ‖X·(w − q)‖² stays small rather than the weights' own. Rows (outputs) are independent.

use std::collections::HashMap;

/// Σ XᵀX of one layer's inputs over the calibration images (cols × cols, row-major).
pub struct Gram {
    pub cols: usize,
    pub xtx: Vec<f64>,
}

/// Gram matrices by weight name.
pub type Grams = HashMap<String, Gram>;

/// Largest int8 step, for symmetric rounding.
const QMAX: f32 = 127.0;

pub fn quant(v: f32, scale: f32) -> f32 {
    (v / scale).round().clamp(-QMAX, QMAX)
}

/// The group's scale: the clipping range (60–100 % of its max |w|) with the least squared rounding
/// error, which matters for groups with outliers. Rounded to f16 first, as stored.
pub fn group_scale(g: &[f32]) -> f32 {
    let f16 = |v: f32| half::f16::from_f32(v).to_f32();
    let max = g.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = |scale: f32| -> f32 {
        g.iter()
            .map(|&v| (v - quant(v, scale) * scale).powi(2))
            .sum()
    };
    (60..=100)
        .map(|pct| f16(max * pct as f32 / 100.0 / QMAX))
        .filter(|s| *s > 0.0)
        .min_by(|a, b| err(*a).total_cmp(&err(*b)))
        .unwrap_or(1.0)
}

/// Each weight of `w` (rows × `cols`, row-major) to its nearest step of its group's scale: the
/// scales (row by row) and the int8 values.
pub fn round_plain(w: &[f32], cols: usize, group: usize) -> (Vec<f32>, Vec<i8>) {
    let mut scales = Vec::with_capacity(w.len() / cols * cols.div_ceil(group));
    let mut q = Vec::with_capacity(w.len());
    for row in w.chunks(cols) {
        for g in row.chunks(group) {
            let scale = group_scale(g);
            scales.push(scale);
            q.extend(g.iter().map(|&v| quant(v, scale) as i8));
        }
    }
    (scales, q)
}

/// Quantizes `w` (rows × `gram.cols`, row-major) in groups of `group` along each row: the
/// scales (row by row) and the int8 values, laid out as plain rounding lays them out.
///
/// Columns are rounded in order of decreasing input energy (the Gram diagonal), so the inputs
/// that matter most are rounded while the most columns remain to absorb their error; the
/// groups' scales are chosen beforehand on the original weights, since a group's columns are no
/// longer rounded together.
pub fn quantize(w: &[f32], gram: &Gram, group: usize) -> (Vec<f32>, Vec<i8>) {
    let cols = gram.cols;
    let diag = |i: usize| gram.xtx[i * cols + i];
    let mut order: Vec<usize> = (0..cols).collect();
    order.sort_by(|&a, &b| diag(b).total_cmp(&diag(a)));
    let u = inverse_factor(gram, &order);
    let groups = cols.div_ceil(group);
    let mut scales = Vec::with_capacity(w.len() / cols * groups);
    let mut q = vec![0i8; w.len()];
    for (src, out) in w.chunks(cols).zip(q.chunks_mut(cols)) {
        let first = scales.len();
        scales.extend(src.chunks(group).map(group_scale));
        let row_scales = &scales[first..];
        // The row in rounding order.
        let mut work: Vec<f64> = order.iter().map(|&c| f64::from(src[c])).collect();
        for (i, &c) in order.iter().enumerate() {
            let scale = row_scales[c / group];
            let qi = quant(work[i] as f32, scale);
            out[c] = qi as i8;
            let err = (work[i] - f64::from(qi * scale)) / u[i * cols + i];
            let ui = &u[i * cols + i + 1..(i + 1) * cols];
            work[i + 1..]
                .iter_mut()
                .zip(ui)
                .for_each(|(v, uij)| *v -= err * uij);
        }
    }
    (scales, q)
}

/// The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) for H with rows and columns taken in `order`,
/// damped by 1 % of its mean diagonal so inputs that never vary (or too few calibration rows)
/// cannot make it singular.
///
/// With P the order-reversing permutation and PHP = LLᵀ, H⁻¹ = (P L⁻ᵀ P)(P L⁻¹ P), a lower
/// factor times its transpose, so U = P L⁻¹ P: one factorisation and one triangular inverse.
fn inverse_factor(gram: &Gram, order: &[usize]) -> Vec<f64> {
    let n = gram.cols;
    let mean = (0..n).map(|i| gram.xtx[i * n + i]).sum::<f64>() / n as f64;
    let damp = 0.01 * mean.max(f64::MIN_POSITIVE);
    // PHP in the rounding order: element (i, j) is H[order[n-1-i]][order[n-1-j]].
    let at = |i: usize| order[n - 1 - i];
    let mut h = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            h[i * n + j] = gram.xtx[at(i) * n + at(j)];
        }
        // An input that is always zero: its weights never matter; keep H positive definite.
        if h[i * n + i] <= 0.0 {
            h[i * n + i] = 1.0;
        }
        h[i * n + i] += damp;
    }
    let l = cholesky(&h, n);
    // L⁻¹ row by row, kept transposed (xt[c][k] = L⁻¹[k][c]) so both sums run along memory.
    let mut xt = vec![0f64; n * n];
    for r in 0..n {
        for c in 0..=r {
            let s: f64 = (c..r).map(|k| l[r * n + k] * xt[c * n + k]).sum();
            let delta = if r == c { 1.0 } else { 0.0 };
            xt[c * n + r] = (delta - s) / l[r * n + r];
        }
    }
    // U[i][j] = L⁻¹[n-1-i][n-1-j] = xt[n-1-j][n-1-i].
    let mut u = vec![0f64; n * n];
    for i in 0..n {
        for j in i..n {
            u[i * n + j] = xt[(n - 1 - j) * n + (n - 1 - i)];
        }
    }
    u
}

/// Lower Cholesky factor of a symmetric positive definite `a` (n × n).
fn cholesky(a: &[f64], n: usize) -> Vec<f64> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                l[i * n + i] = (a[i * n + i] - s).max(f64::MIN_POSITIVE).sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix;

    /// U from `inverse_factor` is upper triangular with UᵀU = (PHP + damping)⁻¹ for the
    /// permuted H: checked by multiplying back against the damped, permuted H.
    #[test]
    fn inverse_factor_is_the_upper_cholesky_of_the_inverse() {
        let n = 5;
        let mut rng = SplitMix(9);
        let a: Vec<f64> = (0..n * 8)
            .map(|_| f64::from(rng.uniform(-1.0, 1.0)))
            .collect();
        let mut xtx = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                xtx[i * n + j] = (0..8).map(|k| a[i * 8 + k] * a[j * 8 + k]).sum();
            }
        }
        let order = [3, 0, 4, 1, 2];
        let u = inverse_factor(
            &Gram {
                cols: n,
                xtx: xtx.clone(),
            },
            &order,
        );
        let damp = 0.01 * (0..n).map(|i| xtx[i * n + i]).sum::<f64>() / n as f64;
        // H in the rounding order, damped.
        let h = |i: usize, j: usize| xtx[order[i] * n + order[j]] + if i == j { damp } else { 0.0 };
        for i in 0..n {
            for j in 0..i {
                assert_eq!(u[i * n + j], 0.0, "upper triangular");
            }
            for j in 0..n {
                // (UᵀU)·H = I.
                let v: f64 = (0..n)
                    .map(|k| (0..n).map(|m| u[m * n + i] * u[m * n + k]).sum::<f64>() * h(k, j))
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "({i},{j}): {v}");
            }
        }
    }

    /// On correlated inputs the calibrated rounding's output error is well below plain
    /// rounding's (same groups, same scales search), and both decode with the same layout.
    #[test]
    fn output_error_below_plain_rounding() {
        let (rows, cols, n) = (16, 64, 512);
        let mut rng = SplitMix(3);
        // Inputs: a few shared factors plus noise, so columns are strongly correlated.
        let factors: Vec<f32> = (0..n * 4).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mix: Vec<f32> = (0..4 * cols).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let x: Vec<f32> = (0..n * cols)
            .map(|i| {
                let (t, c) = (i / cols, i % cols);
                (0..4)
                    .map(|f| factors[t * 4 + f] * mix[f * cols + c])
                    .sum::<f32>()
                    + 0.05 * rng.uniform(-1.0, 1.0)
            })
            .collect();
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.uniform(-1.0, 1.0) * 0.1)
            .collect();
        let mut xtx = vec![0f64; cols * cols];
        for t in 0..n {
            let r = &x[t * cols..(t + 1) * cols];
            for i in 0..cols {
                for j in 0..cols {
                    xtx[i * cols + j] += f64::from(r[i]) * f64::from(r[j]);
                }
            }
        }
        let gram = Gram { cols, xtx };
        let group = 32;
        let dequantized = |(scales, q): (Vec<f32>, Vec<i8>)| -> Vec<f32> {
            assert_eq!((scales.len(), q.len()), (rows * cols / group, rows * cols));
            q.iter()
                .enumerate()
                .map(|(i, &v)| f32::from(v) * scales[i / group])
                .collect()
        };
        let plain = dequantized(round_plain(&w, cols, group));
        let gptq = dequantized(quantize(&w, &gram, group));
        let out_err = |wq: &[f32]| -> f64 {
            let mut e = 0f64;
            for t in 0..n {
                for r in 0..rows {
                    let d: f32 = (0..cols)
                        .map(|c| x[t * cols + c] * (w[r * cols + c] - wq[r * cols + c]))
                        .sum();
                    e += f64::from(d * d);
                }
            }
            e
        };
        let (ep, eg) = (out_err(&plain), out_err(&gptq));
        assert!(eg < 0.5 * ep, "output error: calibrated {eg}, plain {ep}");
    }
}
