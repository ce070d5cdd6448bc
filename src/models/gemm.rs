//! The browser's matrix product, `C = A·B + bias`, for the CPU path in wasm.
//!
//! burn-flex multiplies with the gemm crate, whose wasm SIMD tile (12 rows × 4 columns: 12
//! accumulators, 3 A vectors and a broadcast) needs more vector registers than V8 keeps free on
//! x86-64 (15), and runs at ≈ 20–25 GFLOP/s in Chromium: 70 % of the browser's encode. Ours
//! (`gemm_core.rs`) is a 2 rows × 16 columns tile (8 accumulators, 4 B vectors, 2 broadcasts),
//! ≈ 33–36 GFLOP/s on one thread, ≈ 48 with fused multiply-adds where the engine has relaxed SIMD
//! ([`fma`]); in a worker of a cross-origin isolated page, helper threads take a share of the rows
//! of large products ([`pool`]). Natively the gemm crate's AVX kernels are faster and stay; the
//! portable build of this file exists for its unit tests.

use super::depthwise;
pub use super::gemm_core::{Bias, Heads, Im2col, Rhs, Then};
use super::gemm_core::{MR, NR, attention_scratch, plain_tiles, product, scratch_len};

/// `a` (m × k, row-major, contiguous) · `b` (k × n) + `bias`; the result is m × n, row-major.
pub fn matmul(a: &[f32], b: Rhs, bias: Bias, m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    matmul_into(a, b, bias, (m, k, n), Then::Nothing, &mut c);
    c
}

/// As [`matmul`], then `then`, written over `c` (m × n).
pub fn matmul_into(
    a: &[f32],
    b: Rhs,
    bias: Bias,
    dims: (usize, usize, usize),
    then: Then,
    c: &mut [f32],
) {
    #[cfg(target_arch = "wasm32")]
    if pool::shared(a, b, bias, dims, then, c) {
        return;
    }
    on_this_thread(a, b, bias, dims, then, c);
}

/// A run of full tiles, as `gemm_core::plain_tiles` computes it.
type TileRun = fn(&[f32], &[f32], Option<&[f32; MR * NR]>, &mut [f32], usize, usize);

/// This thread's runs of full tiles: with fused multiply-adds in the browser where the engine has
/// relaxed SIMD ([`fma`]), else the plain tile.
fn full_tiles() -> TileRun {
    #[cfg(target_arch = "wasm32")]
    if fma::available() {
        return fma::tiles;
    }
    plain_tiles
}

/// [`matmul_into`] on this thread alone.
fn on_this_thread(
    a: &[f32],
    b: Rhs,
    bias: Bias,
    dims: (usize, usize, usize),
    then: Then,
    c: &mut [f32],
) {
    let (m, k, n) = dims;
    let mut scratch = vec![0.0; scratch_len(m, k, n)];
    product(a, b, bias, dims, then, c, &mut scratch, &mut full_tiles());
}

/// softmax(q·kᵀ·scale + bias)·v for each group (`gemm_core::attention`): q (groups, n, d),
/// k (groups, m, d), v (groups, m, dv), bias (heads, n, m) → out (groups, n, dv); groups shared
/// with helper threads where [`pool`] has them.
pub fn attention(
    qkv: (&[f32], &[f32], &[f32]),
    bias: Option<&[f32]>,
    s: Heads,
    scale: f32,
    out: &mut [f32],
) {
    #[cfg(target_arch = "wasm32")]
    if pool::shared_attention(qkv, bias, s, scale, out) {
        return;
    }
    attention_here(qkv, bias, s, scale, out);
}

/// [`attention`] on this thread alone.
fn attention_here(
    qkv: (&[f32], &[f32], &[f32]),
    bias: Option<&[f32]>,
    s: Heads,
    scale: f32,
    out: &mut [f32],
) {
    let mut scratch = vec![0.0; attention_scratch(s)];
    let tiles = &mut full_tiles();
    super::gemm_core::attention(qkv, bias, s, scale, out, &mut scratch, tiles);
}

/// A depthwise 3×3 convolution of planes (`depthwise::depthwise3x3`: `x` c × h × w, `taps`
/// c × 9, `bias` c, then `then`, into `out`), its channels shared with helper threads where
/// [`pool`] has them.
pub fn depthwise3x3(
    x: &[f32],
    (taps, bias): (&[f32], &[f32]),
    dims: (usize, usize, usize),
    stride: usize,
    then: Then,
    out: &mut [f32],
) {
    #[cfg(target_arch = "wasm32")]
    if pool::shared_depthwise(x, (taps, bias), dims, stride, then, out) {
        return;
    }
    depthwise_here(x, (taps, bias), dims, stride, then, out);
}

/// [`depthwise3x3`] on this thread alone.
fn depthwise_here(
    x: &[f32],
    (taps, bias): (&[f32], &[f32]),
    dims: (usize, usize, usize),
    stride: usize,
    then: Then,
    out: &mut [f32],
) {
    let mut scratch = vec![0.0; depthwise::scratch_len(dims.2)];
    depthwise::depthwise3x3(x, taps, bias, dims, stride, then, out, &mut scratch);
}

/// The tile with fused multiply-adds: `gemm_fma.rs`, compiled by build.rs into a module of its
/// own, instantiated here on this wasm's memory where the engine accepts relaxed SIMD (Chromium
/// since 114; ≈ 1.4× the plain tile's GFLOP/s there). Elsewhere the plain tile runs.
#[cfg(target_arch = "wasm32")]
mod fma {
    use super::{MR, NR};
    use crate::models::gemm_core::run_depth;
    use std::sync::OnceLock;
    use wasm_bindgen::prelude::*;

    static MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gemm_fma.wasm"));

    #[wasm_bindgen(module = "/src/models/gemm_fma.js")]
    extern "C" {
        fn medseg_fma_setup(bytes: &[u8], memory: &JsValue) -> bool;
        fn medseg_fma_tiles(a: u32, b: u32, start: u32, c: u32, ldc: u32, kc: u32, count: u32);
    }

    /// Whether this instance (the page's, or a worker's) has the tile; set up on first use.
    static READY: OnceLock<bool> = OnceLock::new();

    pub fn available() -> bool {
        *READY.get_or_init(|| medseg_fma_setup(MODULE, &wasm_bindgen::memory()))
    }

    /// As `gemm_core::plain_tiles` (`run_depth` bounds every read and write of the module).
    pub fn tiles(
        a: &[f32],
        b: &[f32],
        start: Option<&[f32; MR * NR]>,
        c: &mut [f32],
        ldc: usize,
        count: usize,
    ) {
        let kc = run_depth(a, b, c, ldc, count);
        let ptr = |p: *const f32| p as usize as u32;
        let start = start.map_or(0, |s| ptr(s.as_ptr()));
        medseg_fma_tiles(
            ptr(a.as_ptr()),
            ptr(b.as_ptr()),
            start,
            ptr(c.as_ptr()),
            ldc as u32,
            kc as u32,
            count as u32,
        );
    }
}

/// The first rows `from..to` of a product's A and bias (a share of C's rows).
#[cfg(any(target_arch = "wasm32", test))]
fn rows<'a>(
    a: &'a [f32],
    bias: Bias<'a>,
    (from, to): (usize, usize),
    k: usize,
) -> (&'a [f32], Bias<'a>) {
    let bias = match bias {
        Bias::Rows(r) => Bias::Rows(&r[from..to]),
        other => other,
    };
    (&a[from * k..to * k], bias)
}

/// Helper threads for large products (`gemm_pool.js`): on a thread that [`set_helpers`] allowed
/// them (a worker, or the page's own thread, which spins while it waits for them), of a
/// cross-origin isolated page, with relaxed SIMD. The caller keeps the first share of
/// C's rows; the helpers run `gemm_core` on the rest, on copies of the operands in a shared
/// memory (the app's own memory is not shared: that would need a std built with atomics).
#[cfg(target_arch = "wasm32")]
mod pool {
    use super::MR;
    use super::{Bias, Heads, Rhs, Then, attention_here, depthwise, depthwise_here};
    use super::{on_this_thread, rows};
    use crate::models::gemm_core::{KC, MC, NC, SCORES_MAX, scratch_len};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wasm_bindgen::prelude::*;

    /// gemm_fma.rs with `job`, on a shared memory (build.rs).
    static MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gemm_pool.wasm"));

    #[wasm_bindgen(module = "/src/models/gemm_pool.js")]
    extern "C" {
        fn medseg_pool_use(bytes: &[u8], helpers: u32);
        fn medseg_pool_helpers() -> u32;
        fn medseg_pool_started(timeout_ms: u32) -> js_sys::Promise;
        fn medseg_pool_start(desc: &[u32], a: &[f32], b: &[f32], bias: &[f32]) -> bool;
        fn medseg_pool_start_attention(
            desc: &[u32],
            q: &[f32],
            k: &[f32],
            v: &[f32],
            bias: &[f32],
        ) -> bool;
        fn medseg_pool_start_depthwise(desc: &[u32], x: &[f32], taps: &[f32], bias: &[f32])
        -> bool;
        fn medseg_pool_finish(c: &mut [f32]) -> bool;
    }

    /// Products under this many multiply-adds (≈ 0.1 ms) stay on this thread: copying their
    /// operands over would cost about what sharing saves.
    const MIN_MADDS: usize = 1 << 22;

    /// The most helpers that took part in one product since [`super::take_helpers_used`].
    static USED: AtomicUsize = AtomicUsize::new(0);

    pub fn allow(helpers: usize) {
        medseg_pool_use(MODULE, helpers as u32);
    }

    pub async fn started() {
        // Resolves, never rejects.
        let _ = wasm_bindgen_futures::JsFuture::from(medseg_pool_started(2000)).await;
    }

    pub fn take_used() -> usize {
        USED.swap(0, Ordering::Relaxed)
    }

    /// Computes the product with the helpers, if they are allowed and ready and it is large
    /// enough; false when it was left to the caller.
    pub fn shared(
        a: &[f32],
        b: Rhs,
        bias: Bias,
        (m, k, n): (usize, usize, usize),
        then: Then,
        c: &mut [f32],
    ) -> bool {
        if m * k * n < MIN_MADDS || m < 8 * MR {
            return false;
        }
        let helpers = medseg_pool_helpers() as usize;
        if helpers == 0 {
            return false;
        }
        let m0 = m / (helpers + 1) / MR * MR;
        let (b_vals, rhs, image) = match b {
            Rhs::Rows(v) => (v, 0, [0; 5]),
            Rhs::Transposed(v) => (v, 1, [0; 5]),
            Rhs::Im2col(g) => (g.x, 2, [g.c, g.h, g.w, g.stride, g.pad].map(|v| v as u32)),
        };
        let (a1, bias1) = rows(a, bias, (m0, m), k);
        let (bias_kind, bias_vals): (u32, &[f32]) = match bias1 {
            Bias::None => (0, &[]),
            Bias::Rows(r) => (1, r),
            Bias::Cols(r) => (2, r),
        };
        let mut desc = vec![rhs, bias_kind, (m - m0) as u32, k as u32, n as u32];
        desc.extend(image);
        desc.push((then == Then::Gelu) as u32);
        if !medseg_pool_start(&desc, a1, b_vals, bias_vals) {
            return false;
        }
        let (a0, bias0) = rows(a, bias, (0, m0), k);
        let (c0, c1) = c.split_at_mut(m0 * n);
        on_this_thread(a0, b, bias0, (m0, k, n), then, c0);
        take_theirs(helpers, c1, |c1| {
            on_this_thread(a1, b, bias1, (m - m0, k, n), then, c1)
        });
        true
    }

    /// Once this thread has computed its share: the helpers' share into `theirs`, or, where one
    /// failed, computed here by `instead`.
    fn take_theirs(helpers: usize, theirs: &mut [f32], instead: impl FnOnce(&mut [f32])) {
        if medseg_pool_finish(theirs) {
            USED.fetch_max(helpers, Ordering::Relaxed);
        } else {
            instead(theirs);
        }
    }

    /// As [`shared`] for an attention: the caller keeps the first groups, the helpers take the
    /// rest (only where a group's scores fit a helper's scratch).
    pub fn shared_attention(
        (q, k, v): (&[f32], &[f32], &[f32]),
        bias: Option<&[f32]>,
        s: Heads,
        scale: f32,
        out: &mut [f32],
    ) -> bool {
        let Heads { n, m, d, dv, .. } = s;
        if s.groups * n * m * (d + dv) < MIN_MADDS || n * m > SCORES_MAX {
            return false;
        }
        let helpers = medseg_pool_helpers() as usize;
        if helpers == 0 || s.groups <= helpers {
            return false;
        }
        let g0 = s.groups / (helpers + 1);
        let rest = Heads {
            groups: s.groups - g0,
            first: s.first + g0,
            ..s
        };
        let later = (&q[g0 * n * d..], &k[g0 * m * d..], &v[g0 * m * dv..]);
        let words = [
            rest.groups,
            n,
            m,
            d,
            dv,
            s.heads,
            rest.first,
            bias.is_some() as usize,
        ];
        let mut desc = words.map(|v| v as u32).to_vec();
        desc.push(scale.to_bits());
        if !medseg_pool_start_attention(&desc, later.0, later.1, later.2, bias.unwrap_or(&[])) {
            return false;
        }
        let first = (&q[..g0 * n * d], &k[..g0 * m * d], &v[..g0 * m * dv]);
        let (o0, o1) = out.split_at_mut(g0 * n * dv);
        attention_here(first, bias, Heads { groups: g0, ..s }, scale, o0);
        take_theirs(helpers, o1, |o1| {
            attention_here(later, bias, rest, scale, o1)
        });
        true
    }

    /// As [`shared`] for a depthwise convolution: the caller keeps the first channels, the
    /// helpers take the rest (planes narrow enough for a helper's scratch).
    pub fn shared_depthwise(
        x: &[f32],
        (taps, bias): (&[f32], &[f32]),
        (c, h, w): (usize, usize, usize),
        stride: usize,
        then: Then,
        out: &mut [f32],
    ) -> bool {
        let (oh, ow) = depthwise::out_size(h, w, stride);
        if c * oh * ow * 9 < MIN_MADDS / 4 || depthwise::scratch_len(w) > scratch_len(MC, KC, NC) {
            return false;
        }
        let helpers = medseg_pool_helpers() as usize;
        if helpers == 0 || c <= helpers {
            return false;
        }
        let c0 = c / (helpers + 1);
        let gelu = (then == Then::Gelu) as usize;
        let desc = [c - c0, h, w, stride, gelu, oh, ow].map(|v| v as u32);
        let (x1, taps1, bias1) = (&x[c0 * h * w..], &taps[c0 * 9..], &bias[c0..]);
        if !medseg_pool_start_depthwise(&desc, x1, taps1, bias1) {
            return false;
        }
        let (o0, o1) = out.split_at_mut(c0 * oh * ow);
        let first = (&x[..c0 * h * w], (&taps[..c0 * 9], &bias[..c0]));
        depthwise_here(first.0, first.1, (c0, h, w), stride, then, o0);
        take_theirs(helpers, o1, |o1| {
            depthwise_here(x1, (taps1, bias1), (c - c0, h, w), stride, then, o1)
        });
        true
    }
}

/// Allows this thread's large products `helpers` helper threads from now on (0: none, the
/// default), where the page is cross-origin isolated; only the browser has them.
pub fn set_helpers(helpers: usize) {
    #[cfg(target_arch = "wasm32")]
    pool::allow(helpers);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = helpers;
}

/// Waits until the helper threads [`set_helpers`] started are ready (at most 2 s): they start
/// only while this thread is free, so a thread about to compute for long waits here first.
pub async fn helpers_started() {
    #[cfg(target_arch = "wasm32")]
    pool::started().await;
}

/// The most helper threads that took part in one product since the last call.
pub fn take_helpers_used() -> usize {
    #[cfg(target_arch = "wasm32")]
    return pool::take_used();
    #[cfg(not(target_arch = "wasm32"))]
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gemm_core::{KC, MC, NC};

    /// Reproducible values in [−0.5, 0.5).
    fn lcg(mut seed: u32) -> impl FnMut() -> f32 {
        move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        }
    }

    fn naive(a: &[f32], b: &[f32], bias: Bias, m: usize, k: usize, n: usize) -> Vec<f32> {
        // b: k × n row-major.
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = match bias {
                    Bias::None => 0.0,
                    Bias::Rows(r) => r[i] as f64,
                    Bias::Cols(cb) => cb[j] as f64,
                };
                for p in 0..k {
                    s += a[i * k + p] as f64 * b[p * n + j] as f64;
                }
                c[i * n + j] = s;
            }
        }
        c.into_iter().map(|v| v as f32).collect()
    }

    /// Odd sizes on every edge (rows past the pairs, columns past the panels, depth past a KC
    /// block, rows past an MC block, columns past an NC block), both biases and a transposed B,
    /// against a float64 reference.
    #[test]
    fn matches_a_plain_product_on_every_edge() {
        let mut rnd = lcg(7);
        for &(m, k, n) in &[
            (1, 1, 1),
            (2, 3, 16),
            (3, 5, 17),
            (7, 300, 33),
            (97, 257, 15),
            (200, 64, 48),
            (5, 600, 100),
            (3, 20, 530),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
            let rows: Vec<f32> = (0..m).map(|_| rnd()).collect();
            let cols: Vec<f32> = (0..n).map(|_| rnd()).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for (bias, rhs) in [
                (Bias::None, Rhs::Rows(&b)),
                (Bias::Rows(&rows), Rhs::Rows(&b)),
                (Bias::Cols(&cols), Rhs::Rows(&b)),
                (Bias::Cols(&cols), Rhs::Transposed(&bt)),
            ] {
                let got = matmul(&a, rhs, bias, m, k, n);
                let want = naive(&a, &b, bias, m, k, n);
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| (g - w).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    err < 1e-4 * (k as f32).sqrt(),
                    "{m}×{k}×{n}: max error {err}"
                );
            }
        }
    }

    /// The im2col right-hand side against a plain 3×3 convolution, strides 1 and 2, padding 0
    /// and 1, with panels crossing image rows (widths not multiples of the tile's 16) and more
    /// than one depth block (c·9 > 256).
    #[test]
    fn im2col_products_are_3x3_convolutions() {
        let mut rnd = lcg(3);
        for &(o, c, h, w, stride, pad) in &[
            (5, 3, 9, 13, 1, 1),
            (4, 30, 7, 20, 1, 1),
            (3, 2, 11, 10, 2, 1),
            (2, 4, 8, 17, 1, 0),
            (6, 3, 33, 35, 2, 1),
        ] {
            let x: Vec<f32> = (0..c * h * w).map(|_| rnd()).collect();
            let wt: Vec<f32> = (0..o * c * 9).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..o).map(|_| rnd()).collect();
            let g = Im2col {
                x: &x,
                c,
                h,
                w,
                stride,
                pad,
            };
            let (oh, ow) = g.out_size();
            let got = matmul(&wt, Rhs::Im2col(g), Bias::Rows(&bias), o, c * 9, oh * ow);
            for (i, &v) in got.iter().enumerate() {
                let (oc, y, xo) = (i / (oh * ow), i / ow % oh, i % ow);
                let mut want = bias[oc] as f64;
                for ci in 0..c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (
                                (y * stride + ky) as isize - pad as isize,
                                (xo * stride + kx) as isize - pad as isize,
                            );
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                want += wt[(oc * c + ci) * 9 + ky * 3 + kx] as f64
                                    * x[(ci * h + iy as usize) * w + ix as usize] as f64;
                            }
                        }
                    }
                }
                assert!(
                    (v as f64 - want).abs() < 1e-4,
                    "{o}×{c}×{h}×{w} s{stride} p{pad} at {i}: {v} vs {want}"
                );
            }
        }
    }

    /// A product computed in two shares of rows (as with a helper thread: `pool`) is the same,
    /// bit for bit, as in one, for every right operand and bias.
    #[test]
    fn shares_of_rows_are_the_whole_product() {
        let mut rnd = lcg(11);
        let (m, k, n) = (2 * MC + 7, KC + 30, 70);
        let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
        let by_rows: Vec<f32> = (0..m).map(|_| rnd()).collect();
        let by_cols: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..30 * 7 * 10).map(|_| rnd()).collect();
        let g = Im2col {
            x: &x,
            c: 30,
            h: 7,
            w: 10,
            stride: 1,
            pad: 1,
        };
        for (rhs, bias) in [
            (Rhs::Rows(&b), Bias::Rows(&by_rows)),
            (Rhs::Transposed(&b), Bias::Cols(&by_cols)),
            (Rhs::Im2col(g), Bias::None),
        ] {
            let (k, n) = match rhs {
                Rhs::Im2col(g) => (g.c * 9, g.out_size().0 * g.out_size().1),
                _ => (k, n),
            };
            let a = &a[..m * k];
            let whole = matmul(a, rhs, bias, m, k, n);
            for m0 in [MR, MC, m / 2 / MR * MR] {
                let mut c = vec![f32::NAN; m * n];
                let (c0, c1) = c.split_at_mut(m0 * n);
                let (a0, bias0) = rows(a, bias, (0, m0), k);
                let (a1, bias1) = rows(a, bias, (m0, m), k);
                on_this_thread(a0, rhs, bias0, (m0, k, n), Then::Nothing, c0);
                on_this_thread(a1, rhs, bias1, (m - m0, k, n), Then::Nothing, c1);
                assert!(
                    c.iter()
                        .zip(&whole)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "split at {m0}"
                );
            }
        }
    }

    /// GELU applied by the product, block by block as each completes (several blocks of rows,
    /// columns and depth here, in two shares of rows as with a helper), equals GELU after it.
    #[test]
    fn gelu_by_blocks_is_gelu_after_the_product() {
        let mut rnd = lcg(17);
        let (m, k, n) = (2 * MC + 7, KC + 30, NC + 40);
        let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let mut want = matmul(&a, Rhs::Rows(&b), Bias::Cols(&bias), m, k, n);
        crate::models::gemm_core::gelu_in_place(&mut want);
        let mut got = vec![f32::NAN; m * n];
        let m0 = MC + MR;
        let (c0, c1) = got.split_at_mut(m0 * n);
        let (rhs, cols) = (Rhs::Rows(&b), Bias::Cols(&bias));
        on_this_thread(&a[..m0 * k], rhs, cols, (m0, k, n), Then::Gelu, c0);
        on_this_thread(&a[m0 * k..], rhs, cols, (m - m0, k, n), Then::Gelu, c1);
        assert!(
            got.iter()
                .zip(&want)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        // Not the identity: most values changed.
        let plain = matmul(&a, Rhs::Rows(&b), Bias::Cols(&bias), m, k, n);
        assert!(plain.iter().zip(&got).filter(|(x, y)| x != y).count() > m * n / 2);
    }

    /// An attention computed in two shares of groups (as with a helper thread) is the same, bit
    /// for bit, as in one: the second share's bias blocks follow from its first group's index.
    #[test]
    fn shares_of_groups_are_the_whole_attention() {
        let mut rnd = lcg(13);
        let s = Heads {
            groups: 10,
            n: 49,
            m: 49,
            d: 16,
            dv: 16,
            heads: 4,
            first: 0,
        };
        let mut vals = |len: usize| (0..len).map(|_| rnd()).collect::<Vec<f32>>();
        let (q, k, v) = (vals(10 * 49 * 16), vals(10 * 49 * 16), vals(10 * 49 * 16));
        let bias = vals(4 * 49 * 49);
        let mut whole = vec![0.0; 10 * 49 * 16];
        attention_here((&q, &k, &v), Some(&bias), s, 0.25, &mut whole);
        let g0 = 3;
        let (o0, o1) = {
            let (mut o0, mut o1) = (vec![0.0; g0 * 49 * 16], vec![0.0; (10 - g0) * 49 * 16]);
            let at = |x: &[f32], g: usize| x[g * 49 * 16..].to_vec();
            let first = (&q[..g0 * 49 * 16], &k[..g0 * 49 * 16], &v[..g0 * 49 * 16]);
            attention_here(first, Some(&bias), Heads { groups: g0, ..s }, 0.25, &mut o0);
            let rest = Heads {
                groups: 10 - g0,
                first: g0,
                ..s
            };
            let (lq, lk, lv) = (at(&q, g0), at(&k, g0), at(&v, g0));
            attention_here((&lq, &lk, &lv), Some(&bias), rest, 0.25, &mut o1);
            (o0, o1)
        };
        let split: Vec<f32> = o0.into_iter().chain(o1).collect();
        assert!(
            split
                .iter()
                .zip(&whole)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        // And it is an attention: group 7's first output against a float64 one (head 7 mod 4).
        let (g, head) = (7, 3);
        let scores: Vec<f64> = (0..49)
            .map(|j| {
                let dot: f64 = (0..16)
                    .map(|p| (q[g * 784 + p] * k[g * 784 + j * 16 + p]) as f64)
                    .sum();
                dot * 0.25 + bias[head * 49 * 49 + j] as f64
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let want: f64 = (0..49)
            .map(|j| e[j] * v[g * 784 + j * 16] as f64)
            .sum::<f64>()
            / e.iter().sum::<f64>();
        assert!(
            (whole[g * 784] as f64 - want).abs() < 1e-5,
            "{} vs {want}",
            whole[g * 784]
        );
    }

    #[test]
    fn empty_depth_gives_the_bias() {
        let c = matmul(&[], Rhs::Rows(&[]), Bias::Cols(&[1.0, 2.0]), 2, 0, 2);
        assert_eq!(c, vec![1.0, 2.0, 1.0, 2.0]);
    }
}
