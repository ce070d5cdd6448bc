//! The core of the browser's matrix product, `C = A·B + bias` (`gemm.rs`): blocking, packing and
//! the plain tile, written against `core` alone, so that the helper threads' module (`gemm_fma.rs`,
//! no_std) runs this same code on its rows of C as the app runs on its own.

/// Rows and columns of one tile of C.
pub const MR: usize = 2;
pub const NR: usize = 16;
/// Depth of one pass (a B panel of KC × NR floats, 16 KiB, stays in L1 while the tile walks down
/// the rows of A).
pub const KC: usize = 256;
/// Rows of A packed at a time (MC × KC floats, 96 KiB: stays in L2 across the B panels).
pub const MC: usize = 96;
/// Columns of B packed at a time (KC × NC floats, 512 KiB: B is packed block by block, so that a
/// 1×1 convolution's B, the whole image, is not copied out to memory once more first).
pub const NC: usize = 512;

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
    pub(crate) fn len(&self) -> usize {
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

/// Floats of working memory [`product`] needs for these sizes: a packed block of B, one of A, the
/// start tile and an edge tile.
pub const fn scratch_len(m: usize, k: usize, n: usize) -> usize {
    let kc = if k < KC { k } else { KC };
    let nc = if n < NC { n } else { NC };
    let mc = if m < MC { m } else { MC };
    kc * nc.next_multiple_of(NR) + mc.next_multiple_of(MR) * kc + 2 * MR * NR
}

/// What [`product`] applies to C once it is complete, a block at a time while the block is in
/// cache (each helper thread on its own rows).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Nothing,
    /// Exact GELU, as `models::nn::gelu`.
    Gelu,
}

/// Runs of full tiles: `(a, b, start, c, ldc, count)` as [`plain_tiles`] computes them.
pub type FullTiles<'f> =
    &'f mut dyn FnMut(&[f32], &[f32], Option<&[f32; MR * NR]>, &mut [f32], usize, usize);

/// `a` (m × k, row-major, contiguous) · `b` (k × n) + `bias`, then `then`, written over `c`
/// (m × n, row-major), with `scratch` ([`scratch_len`] floats) as working memory and `full_tiles`
/// for runs of full tiles.
#[allow(clippy::too_many_arguments)]
pub fn product(
    a: &[f32],
    b: Rhs,
    bias: Bias,
    (m, k, n): (usize, usize, usize),
    then: Then,
    c: &mut [f32],
    scratch: &mut [f32],
    full_tiles: FullTiles,
) {
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
    assert!(
        scratch.len() >= scratch_len(m, k, n),
        "matmul: scratch too small"
    );
    if k == 0 {
        for (i, row) in c.chunks_exact_mut(n.max(1)).enumerate() {
            match bias {
                Bias::None => row.fill(0.0),
                Bias::Rows(r) => row.fill(r[i]),
                Bias::Cols(cb) => row.copy_from_slice(cb),
            }
            if then == Then::Gelu {
                gelu_in_place(row);
            }
        }
        return;
    }
    let (bp, rest) = scratch.split_at_mut(KC.min(k) * NC.min(n).next_multiple_of(NR));
    let (ap, rest) = rest.split_at_mut(MC.min(m).next_multiple_of(MR) * KC.min(k));
    // The bias a tile starts from on the first pass over k (after it, tiles start from C: C is
    // written once per pass, never zeroed first); the same for a whole panel unless per row.
    let (init, edge) = rest.split_at_mut(MR * NR);
    let init: &mut [f32; MR * NR] = init.try_into().expect("scratch_len");
    let edge = &mut edge[..MR * NR];
    let per_row = matches!(bias, Bias::Rows(_));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            match b {
                Rhs::Rows(b) => pack_b(&b[pc * n..(pc + kc) * n], n, jc, nc, bp),
                Rhs::Transposed(bt) => pack_bt(&bt[jc * k..(jc + nc) * k], k, pc, kc, bp),
                Rhs::Im2col(g) => pack_im2col(&g, (pc, kc), (jc, nc), bp),
            }
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(&a[ic * k..(ic + mc) * k], k, pc, kc, ap);
                for jp in 0..nc.div_ceil(NR) {
                    let bpan = &bp[jp * kc * NR..(jp + 1) * kc * NR];
                    let (col0, cols) = (jc + jp * NR, NR.min(nc - jp * NR));
                    if pc == 0 && !per_row {
                        start_tile(bias, 0, col0, init);
                    }
                    let mut r = 0;
                    while r < mc.div_ceil(MR) {
                        let (row0, rows) = (ic + r * MR, MR.min(mc - r * MR));
                        if pc == 0 && per_row {
                            start_tile(bias, row0, col0, init);
                        }
                        let start = (pc == 0).then_some(&*init);
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
                            tile(apan, bpan, start, edge, NR);
                            for i in 0..rows {
                                let at = (row0 + i) * n + col0;
                                c[at..at + cols].copy_from_slice(&edge[i * NR..i * NR + cols]);
                            }
                            r += 1;
                        }
                    }
                }
                if then == Then::Gelu && pc + kc == k {
                    for row in ic..ic + mc {
                        gelu_in_place(&mut c[row * n + jc..row * n + jc + nc]);
                    }
                }
            }
        }
    }
}

/// GELU, 0.5·x·(1 + erf(x/√2)), over a slice.
#[inline(always)]
pub fn gelu_in_place(xs: &mut [f32]) {
    for v in xs {
        *v = 0.5 * *v * (1.0 + erf_f32(*v * core::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf for f32 without branches or calls, so that loops over it vectorize: x·P(x²)/Q(x²) on
/// |x| ≤ 4 (erf(4) rounds to 1 in f32), degrees 5/5, coefficients fitted here by reweighted least
/// squares against the double-precision erf; max |error| 3.4e-7 over the f32 line (libm's erff:
/// about 1e-7).
#[inline(always)]
// P[0] is fitted, close to 2/√π (erf's slope at 0) but not it.
#[allow(clippy::approx_constant)]
pub fn erf_f32(x: f32) -> f32 {
    const P: [f32; 6] = [
        1.128_379,
        0.196_389_9,
        0.053_484_526,
        0.004_009_112_3,
        0.000_288_072_13,
        1.972_671_5e-6,
    ];
    const Q: [f32; 6] = [
        1.0,
        0.507_377_15,
        0.116_533_21,
        0.015_455_619,
        0.001_217_500_8,
        3.745_976e-5,
    ];
    let x = x.clamp(-4.0, 4.0);
    let t = x * x;
    let p = ((((P[5] * t + P[4]) * t + P[3]) * t + P[2]) * t + P[1]) * t + P[0];
    let q = ((((Q[5] * t + Q[4]) * t + Q[3]) * t + Q[2]) * t + Q[1]) * t + Q[0];
    (x * p / q).clamp(-1.0, 1.0)
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

/// The shape of an attention over `groups` (batch × heads) of n queries, m keys, depth d and
/// value depth dv; `first` is the index of the first group (group g's bias block is that of head
/// (first + g) mod heads).
#[derive(Clone, Copy)]
pub struct Heads {
    pub groups: usize,
    pub n: usize,
    pub m: usize,
    pub d: usize,
    pub dv: usize,
    pub heads: usize,
    pub first: usize,
}

/// The most scores (n × m) of one group that an attention hands to helper threads: their scratch
/// holds that many besides a product's (`gemm_fma.rs`).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const SCORES_MAX: usize = 1 << 16;

/// Floats of working memory [`attention`] needs: one group's scores and a product's scratch.
pub const fn attention_scratch(s: Heads) -> usize {
    let (a, b) = (scratch_len(s.n, s.d, s.m), scratch_len(s.n, s.m, s.dv));
    s.n * s.m + if a > b { a } else { b }
}

/// softmax(q·kᵀ·scale + bias)·v for each group, one after another: q (groups, n, d),
/// k (groups, m, d), v (groups, m, dv), bias (heads, n, m) → out (groups, n, dv).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    (q, k, v): (&[f32], &[f32], &[f32]),
    bias: Option<&[f32]>,
    s: Heads,
    scale: f32,
    out: &mut [f32],
    scratch: &mut [f32],
    full_tiles: FullTiles,
) {
    let Heads { n, m, d, dv, .. } = s;
    assert!(
        q.len() == s.groups * n * d
            && k.len() == s.groups * m * d
            && v.len() == s.groups * m * dv
            && out.len() == s.groups * n * dv
            && bias.is_none_or(|b| b.len() == s.heads * n * m)
            && scratch.len() >= attention_scratch(s),
        "attention: operands of the wrong size"
    );
    let (scores, scratch) = scratch.split_at_mut(n * m);
    for (g, o) in out.chunks_exact_mut(n * dv).enumerate() {
        let keys = Rhs::Transposed(&k[g * m * d..][..m * d]);
        product(
            &q[g * n * d..][..n * d],
            keys,
            Bias::None,
            (n, d, m),
            Then::Nothing,
            scores,
            scratch,
            full_tiles,
        );
        let head = (s.first + g) % s.heads;
        softmax_rows(scores, m, scale, bias.map(|b| &b[head * n * m..][..n * m]));
        let vals = Rhs::Rows(&v[g * m * dv..][..m * dv]);
        product(
            scores,
            vals,
            Bias::None,
            (n, m, dv),
            Then::Nothing,
            o,
            scratch,
            full_tiles,
        );
    }
}

/// Rows of `m`: x ← softmax(x·scale + bias) (bias rows alongside, when given). The exponential,
/// the costly part, runs over the whole block at once, so that it vectorizes even for short
/// rows (the decoder's image tokens over 7 prompt tokens).
#[inline(always)]
pub fn softmax_rows(block: &mut [f32], m: usize, scale: f32, bias: Option<&[f32]>) {
    for (r, row) in block.chunks_exact_mut(m).enumerate() {
        match bias {
            Some(b) => row
                .iter_mut()
                .zip(&b[r * m..(r + 1) * m])
                .for_each(|(v, b)| *v = *v * scale + *b),
            None => row.iter_mut().for_each(|v| *v *= scale),
        }
        let max = lanes(row, f32::NEG_INFINITY, f32::max);
        row.iter_mut().for_each(|v| *v -= max);
    }
    block.iter_mut().for_each(|v| *v = exp_f32(*v));
    for row in block.chunks_exact_mut(m) {
        let inv = 1.0 / lanes(row, 0.0, |a, b| a + b);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// A reduction over 8 independent lanes (so that it vectorizes), then across them.
#[inline(always)]
fn lanes(xs: &[f32], init: f32, op: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut acc = [init; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] = op(acc[k], c[k]);
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        acc[k] = op(acc[k], x);
    }
    acc.into_iter().fold(init, op)
}

/// eˣ for f32 without branches or calls: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an
/// exact product), e^r by its Taylor polynomial to r⁷/7! (truncation < 2e-9 relative), 2ⁿ built in
/// the exponent bits. Max relative error ~2e-7 (a couple of ulps); inputs below −87.3 give
/// 2⁻¹²⁶·e^r ≈ 1e-38 rather than a subnormal or 0, which a softmax cannot tell apart.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75; // ln 2 with its low 12 bits zero, so n·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer (ties to even)
    let x = x.clamp(-87.3, 88.0);
    let t = x * core::f32::consts::LOG2_E + ROUND; // ROUND + n: n sits in the low mantissa bits
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2ⁿ's bits, (n + 127) << 23, from t's bits (ROUND's are 0x4B40_0000) in integer lanes: a
    // float → int conversion would not vectorize (Rust's `as` saturates).
    p * f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23)
}

/// The depth of a run of `count` full tiles, checked against the lengths of its A panels, B panel
/// and C (so that a tile module writing through raw addresses stays in bounds).
pub fn run_depth(a: &[f32], b: &[f32], c: &[f32], ldc: usize, count: usize) -> usize {
    let kc = b.len() / NR;
    assert!(a.len() == count * MR * kc && c.len() >= (count * MR - 1) * ldc + NR);
    kc
}

/// `count` full tiles down the rows of C (A panels one after another, the same B panel and
/// start), one [`tile`] at a time.
pub fn plain_tiles(
    a: &[f32],
    b: &[f32],
    start: Option<&[f32; MR * NR]>,
    c: &mut [f32],
    ldc: usize,
    count: usize,
) {
    let kc = run_depth(a, b, c, ldc, count);
    for (t, a) in a.chunks_exact(MR * kc).enumerate() {
        let at = t * MR * ldc;
        tile(a, b, start, &mut c[at..at + (MR - 1) * ldc + NR], ldc);
    }
}

/// c[i·ldc + j] = start[i·NR + j] + Σ_p a[p·MR + i] · b[p·NR + j] for the MR × NR tile, where
/// `start` is the given tile or, without one, C itself.
#[inline(never)]
pub fn tile(a: &[f32], b: &[f32], start: Option<&[f32; MR * NR]>, c: &mut [f32], ldc: usize) {
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
        V(unsafe { core::ptr::read_unaligned(p as *const [f32; 4]) })
    }
    /// SAFETY: `p` points at a readable f32.
    pub unsafe fn splat(p: *const f32) -> V {
        V([unsafe { *p }; 4])
    }
    pub fn madd(a: V, b: V, c: V) -> V {
        V(core::array::from_fn(|l| c.0[l] + a.0[l] * b.0[l]))
    }
    pub fn read(c: &[f32]) -> V {
        V(c.try_into().expect("four lanes"))
    }
    pub fn write(c: &mut [f32], v: V) {
        c.copy_from_slice(&v.0);
    }
}
