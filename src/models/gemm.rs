//! The browser's matrix product, `C = A·B + bias`, for the CPU path in wasm.
//!
//! burn-flex multiplies with the gemm crate, whose wasm SIMD tile (12 rows × 4 columns: 12
//! accumulators, 3 A vectors and a broadcast) needs more vector registers than V8 keeps free on
//! x86-64 (15), and runs at ≈ 20–25 GFLOP/s in Chromium: 70 % of the browser's encode. This tile of
//! 2 rows × 16 columns (8 accumulators, 4 B vectors, 2 broadcasts) runs the encoder's shapes at
//! ≈ 33–36 GFLOP/s on one thread (BENCHMARKS.md). Natively the gemm crate's AVX kernels are faster
//! and stay; the portable build of this file exists for its unit tests.

/// Rows and columns of one tile of C.
const MR: usize = 2;
const NR: usize = 16;
/// Depth of one pass (a B panel of KC × NR floats, 16 KiB, stays in L1 while the tile walks down
/// the rows of A).
const KC: usize = 256;
/// Rows of A packed at a time (MC × KC floats, 96 KiB: stays in L2 across the B panels).
const MC: usize = 96;
/// Columns of B packed at a time (KC × NC floats, 512 KiB: B is packed block by block, so that a
/// 1×1 convolution's B, the whole image, is not copied out to memory once more first).
const NC: usize = 512;

/// Where the bias goes: one value per row of C or one per column.
#[derive(Clone, Copy)]
pub enum Bias<'a> {
    None,
    Rows(&'a [f32]),
    Cols(&'a [f32]),
}

/// The right operand: k × n row-major, or its transpose given (n × k row-major: attention's keys,
/// multiplied as Kᵀ), or the im2col matrix of a 3×3 convolution's input.
#[derive(Clone, Copy)]
pub enum Rhs<'a> {
    Rows(&'a [f32]),
    Transposed(&'a [f32]),
    Im2col(Im2col<'a>),
}

impl Rhs<'_> {
    fn len(&self) -> usize {
        match self {
            Rhs::Rows(b) | Rhs::Transposed(b) => b.len(),
            Rhs::Im2col(g) => {
                let (oh, ow) = g.out_size();
                g.c * 9 * oh * ow
            }
        }
    }
}

/// One image (c × h × w) seen as the im2col matrix of a 3×3 convolution, which is never formed:
/// row (channel, ky, kx), column the output pixel (y, x), value x[channel][y·s + ky − p][x·s + kx − p],
/// 0 outside the image. Its panels are packed straight from the image.
#[derive(Clone, Copy)]
pub struct Im2col<'a> {
    pub x: &'a [f32],
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Im2col<'_> {
    /// Output rows and columns.
    pub fn out_size(&self) -> (usize, usize) {
        let o = |n: usize| (n + 2 * self.pad).saturating_sub(3) / self.stride + 1;
        (o(self.h), o(self.w))
    }
}

/// `a` (m × k, row-major, contiguous) · `b` (k × n) + `bias`; the result is m × n, row-major.
pub fn matmul(a: &[f32], b: Rhs, bias: Bias, m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    matmul_into(a, b, bias, (m, k, n), &mut c);
    c
}

/// As [`matmul`], written over `c` (m × n).
pub fn matmul_into(a: &[f32], b: Rhs, bias: Bias, (m, k, n): (usize, usize, usize), c: &mut [f32]) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "matmul: operands of the wrong size"
    );
    if let Bias::Rows(r) = bias {
        assert_eq!(r.len(), m, "matmul: one bias per row");
    }
    if let Bias::Cols(r) = bias {
        assert_eq!(r.len(), n, "matmul: one bias per column");
    }
    if k == 0 {
        for (i, row) in c.chunks_exact_mut(n.max(1)).enumerate() {
            match bias {
                Bias::None => row.fill(0.0),
                Bias::Rows(r) => row.fill(r[i]),
                Bias::Cols(cb) => row.copy_from_slice(cb),
            }
        }
        return;
    }
    let mut bp = vec![0.0f32; KC.min(k) * NC.min(n).next_multiple_of(NR)];
    let mut ap = vec![0.0f32; MC.min(m).next_multiple_of(MR) * KC.min(k)];
    // The bias a tile starts from on the first pass over k (after it, tiles start from C: C is
    // written once per pass, never zeroed first); the same for a whole panel unless per row.
    let mut init = [0.0f32; MR * NR];
    let mut edge = [0.0f32; MR * NR];
    let per_row = matches!(bias, Bias::Rows(_));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            match b {
                Rhs::Rows(b) => pack_b(&b[pc * n..(pc + kc) * n], n, jc, nc, &mut bp),
                Rhs::Transposed(bt) => pack_bt(&bt[jc * k..(jc + nc) * k], k, pc, kc, &mut bp),
                Rhs::Im2col(g) => pack_im2col(&g, (pc, kc), (jc, nc), &mut bp),
            }
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(&a[ic * k..(ic + mc) * k], k, pc, kc, &mut ap);
                for jp in 0..nc.div_ceil(NR) {
                    let bpan = &bp[jp * kc * NR..(jp + 1) * kc * NR];
                    let (col0, cols) = (jc + jp * NR, NR.min(nc - jp * NR));
                    if pc == 0 && !per_row {
                        start_tile(bias, 0, col0, &mut init);
                    }
                    let mut r = 0;
                    while r < mc.div_ceil(MR) {
                        let (row0, rows) = (ic + r * MR, MR.min(mc - r * MR));
                        if pc == 0 && per_row {
                            start_tile(bias, row0, col0, &mut init);
                        }
                        let start = (pc == 0).then_some(&init);
                        if rows == MR && cols == NR {
                            // The full tiles below this one share its start (unless per row).
                            let run = if per_row { 1 } else { mc / MR - r };
                            let at = row0 * n + col0;
                            let (apans, c) = (&ap[r * MR * kc..(r + run) * MR * kc], &mut c[at..]);
                            full_tiles(
                                apans,
                                bpan,
                                start,
                                &mut c[..(run * MR - 1) * n + NR],
                                n,
                                run,
                            );
                            r += run;
                        } else {
                            for i in 0..rows {
                                let at = (row0 + i) * n + col0;
                                edge[i * NR..i * NR + cols].copy_from_slice(&c[at..at + cols]);
                            }
                            let apan = &ap[r * MR * kc..(r + 1) * MR * kc];
                            tile(apan, bpan, start, &mut edge, NR);
                            for i in 0..rows {
                                let at = (row0 + i) * n + col0;
                                c[at..at + cols].copy_from_slice(&edge[i * NR..i * NR + cols]);
                            }
                            r += 1;
                        }
                    }
                }
            }
        }
    }
}

/// The tile of biases at C's (row0, col0); rows and columns past the matrix (the tile's padding)
/// get 0.
fn start_tile(bias: Bias, row0: usize, col0: usize, t: &mut [f32; MR * NR]) {
    match bias {
        Bias::None => t.fill(0.0),
        Bias::Rows(r) => {
            for (i, row) in t.chunks_exact_mut(NR).enumerate() {
                row.fill(r.get(row0 + i).copied().unwrap_or(0.0));
            }
        }
        Bias::Cols(cb) => {
            let s = &cb[col0..cb.len().min(col0 + NR)];
            for row in t.chunks_exact_mut(NR) {
                row[..s.len()].copy_from_slice(s);
                row[s.len()..].fill(0.0);
            }
        }
    }
}

/// Columns `jc..jc + nc` of the rows `b` (each `n` long) as panels of NR columns, kc × NR each,
/// zero-padded past the last column. Row by row, so that B is read in its own order.
fn pack_b(b: &[f32], n: usize, jc: usize, nc: usize, bp: &mut [f32]) {
    let kc = b.len() / n;
    for (p, row) in b.chunks_exact(n).enumerate() {
        for (jp, src) in row[jc..jc + nc].chunks(NR).enumerate() {
            let dst = &mut bp[jp * kc * NR + p * NR..][..NR];
            dst[..src.len()].copy_from_slice(src);
            dst[src.len()..].fill(0.0);
        }
    }
}

/// As [`pack_b`] from Bᵀ: rows `bt` (each `k` long, one per column of B), their entries
/// `pc..pc + kc`.
fn pack_bt(bt: &[f32], k: usize, pc: usize, kc: usize, bp: &mut [f32]) {
    let nc = bt.len() / k;
    for (j, row) in bt.chunks_exact(k).enumerate() {
        let panel = &mut bp[(j / NR) * kc * NR..][..kc * NR];
        for (p, &v) in row[pc..pc + kc].iter().enumerate() {
            panel[p * NR + j % NR] = v;
        }
    }
    // The last panel's missing columns.
    if !nc.is_multiple_of(NR) {
        let panel = &mut bp[(nc / NR) * kc * NR..][..kc * NR];
        for row in panel.chunks_exact_mut(NR) {
            row[nc % NR..].fill(0.0);
        }
    }
}

/// As [`pack_b`] for the rows `pc..pc + kc` and columns `jc..jc + nc` of an [`Im2col`] matrix. A
/// panel row lying in one image row is a copy at stride 1; the image's borders and other strides
/// go value by value.
fn pack_im2col(g: &Im2col, (pc, kc): (usize, usize), (jc, nc): (usize, usize), bp: &mut [f32]) {
    let (_, ow) = g.out_size();
    let (s, pad) = (g.stride, g.pad);
    for p in 0..kc {
        let r = pc + p;
        let (ky, kx) = (r % 9 / 3, r % 3);
        let plane = &g.x[(r / 9) * g.h * g.w..][..g.h * g.w];
        for jp in 0..nc.div_ceil(NR) {
            let dst = &mut bp[jp * kc * NR + p * NR..][..NR];
            let j0 = jc + jp * NR;
            let cols = NR.min(jc + nc - j0);
            let (y, x0) = (j0 / ow, j0 % ow);
            // The input row and first column this panel row reads (offset by the padding).
            let (iy, ix) = (y * s + ky, x0 * s + kx);
            let inside = iy >= pad && iy - pad < g.h && ix >= pad && (ix - pad) + cols <= g.w;
            if s == 1 && x0 + cols <= ow && inside {
                let at = (iy - pad) * g.w + ix - pad;
                dst[..cols].copy_from_slice(&plane[at..at + cols]);
            } else {
                let (mut y, mut x) = (y, x0);
                for d in dst[..cols].iter_mut() {
                    let (iy, ix) = (y * s + ky, x * s + kx);
                    *d = if iy >= pad && iy - pad < g.h && ix >= pad && ix - pad < g.w {
                        plane[(iy - pad) * g.w + ix - pad]
                    } else {
                        0.0
                    };
                    x += 1;
                    if x == ow {
                        (y, x) = (y + 1, 0);
                    }
                }
            }
            dst[cols..].fill(0.0);
        }
    }
}

// `pack_a` writes pairs.
const _: () = assert!(MR == 2);

/// Columns `pc..pc + kc` of the rows `a` (each `k` long) as row pairs, kc × MR each (k-major),
/// a missing last row as zeros.
fn pack_a(a: &[f32], k: usize, pc: usize, kc: usize, ap: &mut [f32]) {
    for (r, rows) in a.chunks(MR * k).enumerate() {
        let dst = &mut ap[r * MR * kc..(r + 1) * MR * kc];
        let r0 = &rows[pc..pc + kc];
        match rows.get(k + pc..k + pc + kc) {
            Some(r1) => {
                for ((d, &x0), &x1) in dst.chunks_exact_mut(MR).zip(r0).zip(r1) {
                    d[0] = x0;
                    d[1] = x1;
                }
            }
            None => {
                for (d, &x0) in dst.chunks_exact_mut(MR).zip(r0) {
                    d[0] = x0;
                    d[1] = 0.0;
                }
            }
        }
    }
}

/// `count` full tiles down the rows of C (A panels one after another, the same B panel and
/// start): in the browser with fused multiply-adds where the engine has relaxed SIMD ([`fma`]).
fn full_tiles(
    a: &[f32],
    b: &[f32],
    start: Option<&[f32; MR * NR]>,
    c: &mut [f32],
    ldc: usize,
    count: usize,
) {
    let kc = b.len() / NR;
    assert!(a.len() == count * MR * kc && c.len() >= (count * MR - 1) * ldc + NR);
    #[cfg(target_arch = "wasm32")]
    if fma::available() {
        return fma::tiles(a, b, start, c, ldc, kc, count);
    }
    for (t, a) in a.chunks_exact(MR * kc).enumerate() {
        let at = t * MR * ldc;
        tile(a, b, start, &mut c[at..at + (MR - 1) * ldc + NR], ldc);
    }
}

/// The tile with fused multiply-adds: `gemm_fma.rs`, compiled by build.rs into a module of its
/// own, instantiated here on this wasm's memory where the engine accepts relaxed SIMD (Chromium
/// since 114; ≈ 1.4× the plain tile's GFLOP/s there). Elsewhere the plain tile runs.
#[cfg(target_arch = "wasm32")]
mod fma {
    use super::{MR, NR};
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

    /// As `super::full_tiles` (whose asserts bound every read and write).
    pub fn tiles(
        a: &[f32],
        b: &[f32],
        start: Option<&[f32; MR * NR]>,
        c: &mut [f32],
        ldc: usize,
        kc: usize,
        count: usize,
    ) {
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

/// c[i·ldc + j] = start[i·NR + j] + Σ_p a[p·MR + i] · b[p·NR + j] for the MR × NR tile, where
/// `start` is the given tile or, without one, C itself.
#[inline(never)]
fn tile(a: &[f32], b: &[f32], start: Option<&[f32; MR * NR]>, c: &mut [f32], ldc: usize) {
    let kc = a.len() / MR;
    assert!(b.len() == kc * NR && c.len() >= (MR - 1) * ldc + NR);
    let mut acc = [[v4::zero(); NR / 4]; MR];
    for (i, acc) in acc.iter_mut().enumerate() {
        for (j, acc) in acc.iter_mut().enumerate() {
            *acc = match start {
                Some(s) => v4::read(&s[i * NR + 4 * j..][..4]),
                None => v4::read(&c[i * ldc + 4 * j..][..4]),
            };
        }
    }
    // SAFETY: the loop reads a[p·MR + i] (i < MR) and b[p·NR..p·NR + NR] for p < kc, within the
    // lengths asserted above.
    unsafe {
        let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
        for _ in 0..kc {
            let bv = [
                v4::load(pb),
                v4::load(pb.add(4)),
                v4::load(pb.add(8)),
                v4::load(pb.add(12)),
            ];
            for (i, acc) in acc.iter_mut().enumerate() {
                let s = v4::splat(pa.add(i));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = v4::madd(s, bv, *acc);
                }
            }
            pa = pa.add(MR);
            pb = pb.add(NR);
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (j, &v) in acc.iter().enumerate() {
            v4::write(&mut c[i * ldc + 4 * j..][..4], v);
        }
    }
}

/// Four f32 lanes: wasm SIMD in the browser, plain arrays elsewhere (tests).
#[cfg(target_arch = "wasm32")]
mod v4 {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V(v128);

    #[inline(always)]
    pub fn zero() -> V {
        V(f32x4_splat(0.0))
    }
    /// SAFETY: `p` points at four readable f32.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        V(unsafe { v128_load(p as *const v128) })
    }
    /// SAFETY: `p` points at a readable f32.
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        V(unsafe { v128_load32_splat(p as *const u32) })
    }
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        V(f32x4_add(c.0, f32x4_mul(a.0, b.0)))
    }
    #[inline(always)]
    pub fn read(c: &[f32]) -> V {
        let c: &[f32; 4] = c.try_into().expect("four lanes");
        // SAFETY: `c` is four f32; wasm loads need no alignment.
        V(unsafe { v128_load(c.as_ptr() as *const v128) })
    }
    #[inline(always)]
    pub fn write(c: &mut [f32], v: V) {
        let c: &mut [f32; 4] = c.try_into().expect("four lanes");
        // SAFETY: `c` is four f32; wasm stores need no alignment.
        unsafe { v128_store(c.as_mut_ptr() as *mut v128, v.0) }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod v4 {
    #[derive(Clone, Copy)]
    pub struct V([f32; 4]);

    pub fn zero() -> V {
        V([0.0; 4])
    }
    /// SAFETY: `p` points at four readable f32.
    pub unsafe fn load(p: *const f32) -> V {
        V(unsafe { std::ptr::read_unaligned(p as *const [f32; 4]) })
    }
    /// SAFETY: `p` points at a readable f32.
    pub unsafe fn splat(p: *const f32) -> V {
        V([unsafe { *p }; 4])
    }
    pub fn madd(a: V, b: V, c: V) -> V {
        V(std::array::from_fn(|l| c.0[l] + a.0[l] * b.0[l]))
    }
    pub fn read(c: &[f32]) -> V {
        V(c.try_into().expect("four lanes"))
    }
    pub fn write(c: &mut [f32], v: V) {
        c.copy_from_slice(&v.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut seed = 7u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
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
        let mut seed = 3u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
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

    #[test]
    fn empty_depth_gives_the_bias() {
        let c = matmul(&[], Rhs::Rows(&[]), Bias::Cols(&[1.0, 2.0]), 2, 0, 2);
        assert_eq!(c, vec![1.0, 2.0, 1.0, 2.0]);
    }
}
