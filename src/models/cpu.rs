//! Fast paths on the CPU backend's own buffers (burn-flex), for passes burn-flex runs as several
//! element-at-a-time ops or with transposing copies around them: exact GELU, attention's scale +
//! bias + softmax, a depthwise 3×3 convolution on channels-last tokens, contiguous layout; in
//! the browser, matrix products (Linear, 1×1 and 3×3 convolutions, attention) with our own wasm SIMD
//! tile; natively, whole blocks by pieces that stay in cache (window attention per group, MBConv
//! by rows, the MLP by blocks of rows, the decoder's upscaling by blocks of pixels) on gemm's kernels.
//!
//! Each is one pass over a tensor the caller owns, written branch-free so that loops vectorize
//! (wasm simd128 in the browser; natively compiled again for AVX2 + FMA and AVX-512, chosen at run
//! time) and, natively, split over every core. Other backends (GPU, autodiff) keep burn's own ops.

use super::gemm::{self, Bias, Heads, Im2col, Rhs, Then, matmul_into};
pub use super::gemm_core::{erf_f32, exp_f32};
use burn::tensor::{DType, Tensor};
use burn_flex::{Flex, FlexTensor};

/// Kernels compiled three times on x86-64: for the baseline, AVX2 + FMA and AVX-512, picked at
/// run time (AVX-512 runs GELU 1.6× faster than AVX2 on this machine's Zen 4, which splits each
/// 512-bit op in two: fewer instructions for the same work).
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),*) $body:block) => {
        $(#[$m])*
        fn $name($($a: $t),*) {
            #[inline(always)]
            fn kernel($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($a: $t),*) { kernel($($a),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($a: $t),*) { kernel($($a),*) }
                if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the CPU has the features `avx512` was compiled for.
                    return unsafe { avx512($($a),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `avx2` was compiled for.
                    return unsafe { avx2($($a),*) };
                }
            }
            kernel($($a),*)
        }
    };
}

/// The f32 CPU buffer behind `x`, contiguous and owned by the caller, or `x` back when it lives
/// elsewhere.
fn flex_f32<const D: usize>(x: Tensor<D>) -> Result<FlexTensor, Tensor<D>> {
    match x.clone().try_into_primitive::<Flex>() {
        Ok(t) if t.dtype() == DType::F32 => {
            drop(x); // so that the storage is ours alone and changes in place
            Ok(if t.is_contiguous() {
                t
            } else {
                t.to_contiguous()
            })
        }
        _ => Err(x),
    }
}

/// The values of a contiguous f32 tensor.
fn values(t: &FlexTensor) -> &[f32] {
    let (off, n) = (t.layout().start_offset(), t.layout().num_elements());
    &t.storage::<f32>()[off..off + n]
}

/// The values of a contiguous f32 tensor, written in place (copied first if shared).
fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    let (off, n) = (t.layout().start_offset(), t.layout().num_elements());
    &mut t.storage_mut::<f32>()[off..off + n]
}

/// `x` with its values laid out contiguously on the CPU backend (copied if it was a strided view:
/// burn-flex adds strided operands one element at a time, contiguous ones with SIMD); as it is
/// elsewhere (GPU kernels take strides in stride).
pub fn contiguous<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match flex_f32(x) {
        Ok(t) => Tensor::from_primitive::<Flex>(t),
        Err(x) => x,
    }
}

/// Exact GELU in place on the CPU backend; `x` back elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let mut t = flex_f32(x)?;
    for_each_chunk(values_mut(&mut t), 1 << 14, &|_, c| gelu_slice(c));
    Ok(Tensor::from_primitive::<Flex>(t))
}

/// softmax(scores·scale + bias) over the last axis, in place on the CPU backend; the inputs back
/// elsewhere. `scores`: (…, heads, n, n); `bias`: (heads, n, n) repeated over the leading axes,
/// or none.
pub fn scaled_softmax(
    scores: Tensor<4>,
    scale: f32,
    bias: Option<Tensor<4>>,
) -> Result<Tensor<4>, (Tensor<4>, Option<Tensor<4>>)> {
    let [_, heads, n, m] = scores.dims();
    let bias_t = match bias {
        Some(b) => match flex_f32(b.clone()) {
            Ok(t) if t.layout().num_elements() == heads * n * m => Some(t),
            _ => return Err((scores, Some(b))),
        },
        None => None,
    };
    let mut t = flex_f32(scores).map_err(|s| (s, None))?;
    let bias = bias_t.as_ref().map(values);
    // One chunk per (…, head): its rows share the head's bias block.
    for_each_chunk(values_mut(&mut t), n * m, &|i, block| {
        let b = bias.map(|b| &b[(i % heads) * n * m..][..n * m]);
        softmax_rows(block, m, scale, b);
    });
    Ok(Tensor::from_primitive::<Flex>(t))
}

/// Matrix products with our own tile (`models::gemm`) in the browser, and in this module's unit
/// tests (its portable build); natively burn-flex's gemm, which has AVX kernels, stays.
const OWN_PRODUCTS: bool = cfg!(any(target_arch = "wasm32", test));

/// `x` (rows, k) · `w` (k, n) + `bias`, then `then`, with our own wasm SIMD tile
/// (`models::gemm`) in the browser; natively, and off the CPU backend, `x` back (burn-flex's gemm
/// has AVX kernels there).
pub fn linear(
    x: Tensor<2>,
    w: &Tensor<2>,
    bias: Option<&Tensor<1>>,
    then: Then,
) -> Result<Tensor<2>, Tensor<2>> {
    if !OWN_PRODUCTS {
        return Err(x);
    }
    let ([m, k], [_, n]) = (x.dims(), w.dims());
    let Some((wt, bt)) = weight_bias(w, bias) else {
        return Err(x);
    };
    let xt = flex_f32(x)?;
    let b = bt.as_ref().map_or(Bias::None, |t| Bias::Cols(values(t)));
    let mut y = vec![0.0; m * n];
    matmul_into(
        values(&xt),
        Rhs::Rows(values(&wt)),
        b,
        (m, k, n),
        then,
        &mut y,
    );
    Ok(from_vec(y, [m, n]))
}

/// `a` (m, k) · `b` (k, n), or · `bᵀ` for `b` given as (n, k) when `transposed`, with our own
/// tile in the browser; natively, and off the CPU backend, the inputs back.
pub fn matmul2(
    a: Tensor<2>,
    b: Tensor<2>,
    transposed: bool,
) -> Result<Tensor<2>, (Tensor<2>, Tensor<2>)> {
    if !OWN_PRODUCTS {
        return Err((a, b));
    }
    let ([m, k], [r, c]) = (a.dims(), b.dims());
    let n = if transposed { r } else { c };
    let at = flex_f32(a).map_err(|a| (a, b.clone()))?;
    let Ok(bt) = flex_f32(b) else {
        unreachable!("b lives where a does")
    };
    let rhs = if transposed {
        Rhs::Transposed(values(&bt))
    } else {
        Rhs::Rows(values(&bt))
    };
    Ok(from_vec(
        gemm::matmul(values(&at), rhs, Bias::None, m, k, n),
        [m, n],
    ))
}

/// A 1×1 (stride 1, no padding) or 3×3 convolution, one group, no dilation, of `x` (B, C, H, W)
/// by `w` (O, C, k, k), then `then`: per image `w` (O, C·k²) · `x` as a matrix + `bias` per row, as [`linear`]:
/// in the browser only. For 1×1 that matrix is the image itself (C, H·W); for 3×3 its im2col
/// matrix, packed straight from the image (`gemm::Im2col`). Other kernels: `x` back.
pub fn conv(
    x: Tensor<4>,
    w: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    stride: usize,
    pad: usize,
    then: Then,
) -> Result<Tensor<4>, Tensor<4>> {
    let ([b, c, h, wd], [o, _, k, _]) = (x.dims(), w.dims());
    if !OWN_PRODUCTS || !(k == 3 || (k == 1 && stride == 1 && pad == 0)) {
        return Err(x);
    }
    let Some((wt, bt)) = weight_bias(w, bias) else {
        return Err(x);
    };
    let xt = flex_f32(x)?;
    let bias = bt.as_ref().map_or(Bias::None, |t| Bias::Rows(values(t)));
    let img = |x| Im2col {
        x,
        c,
        h,
        w: wd,
        stride,
        pad,
    };
    let (oh, ow) = if k == 1 { (h, wd) } else { img(&[]).out_size() };
    let mut out = vec![0.0; b * o * oh * ow];
    let xs = values(&xt);
    for (x, out) in xs
        .chunks_exact(c * h * wd)
        .zip(out.chunks_exact_mut(o * oh * ow))
    {
        let rhs = if k == 1 {
            Rhs::Rows(x)
        } else {
            Rhs::Im2col(img(x))
        };
        matmul_into(values(&wt), rhs, bias, (o, c * k * k, oh * ow), then, out);
    }
    Ok(from_vec(out, [b, o, oh, ow]))
}

/// A depthwise 3×3 convolution (zero padding 1, stride 1 or 2) of `x` (B, C, H, W) by `w`
/// (C, 1, 3, 3) + `bias`, then `then`, plane by plane, its channels shared with a helper thread
/// (`gemm::depthwise3x3`): in the browser only; elsewhere `x` back (burn-flex's grouped
/// convolution, natively on every core).
pub fn depthwise3x3(
    x: Tensor<4>,
    w: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    stride: usize,
    then: Then,
) -> Result<Tensor<4>, Tensor<4>> {
    let [b, c, h, wd] = x.dims();
    if !OWN_PRODUCTS || w.dims() != [c, 1, 3, 3] || !(stride == 1 || stride == 2) || h * wd == 0 {
        return Err(x);
    }
    let Some((wt, bt)) = weight_bias(w, bias) else {
        return Err(x);
    };
    let xt = flex_f32(x)?;
    let zeros = vec![0.0; c];
    let bias = bt.as_ref().map_or(&zeros[..], |t| values(t));
    let (oh, ow) = super::depthwise::out_size(h, wd, stride);
    let mut out = vec![0.0; b * c * oh * ow];
    for (x, out) in values(&xt)
        .chunks_exact(c * h * wd)
        .zip(out.chunks_exact_mut(c * oh * ow))
    {
        gemm::depthwise3x3(x, (values(&wt), bias), (c, h, wd), stride, then, out);
    }
    Ok(from_vec(out, [b, c, oh, ow]))
}

/// softmax(q·kᵀ·scale + bias)·v, one (batch, head) group at a time, its scores kept in cache:
/// with our own matrix tile in the browser, natively with gemm's kernels on every core; off the
/// CPU backend, and for scores too large to keep per group, the inputs back. q (B, h, n, d),
/// k (B, h, m, d), v (B, h, m, dv), bias (1, h, n, m) shared by the batch → (B, h, n, dv).
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f32,
    bias: Option<&Tensor<4>>,
) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>, Tensor<4>)> {
    let ([b, h, n, d], [_, _, m, _], [_, _, _, dv]) = (q.dims(), k.dims(), v.dims());
    if !OWN_PRODUCTS && n * m > super::gemm_core::SCORES_MAX {
        return Err((q, k, v));
    }
    let bias = match bias.map(|t| flex_f32(t.clone())) {
        Some(Ok(t)) if t.layout().num_elements() == h * n * m => Some(t),
        Some(_) => return Err((q, k, v)),
        None => None,
    };
    // All three live on one backend: q tells.
    let qt = flex_f32(q).map_err(|q| (q, k.clone(), v.clone()))?;
    let (Ok(kt), Ok(vt)) = (flex_f32(k), flex_f32(v)) else {
        unreachable!("k and v live where q does")
    };
    let mut out = vec![0.0; b * h * n * dv];
    let heads = Heads {
        groups: b * h,
        n,
        m,
        d,
        dv,
        heads: h,
        first: 0,
    };
    let qkv = (values(&qt), values(&kt), values(&vt));
    let bias = bias.as_ref().map(values);
    if OWN_PRODUCTS {
        gemm::attention(qkv, bias, heads, scale, &mut out);
    } else {
        #[cfg(not(target_family = "wasm"))]
        native::attention(qkv, bias, heads, scale, &mut out);
    }
    Ok(from_vec(out, [b, h, n, dv]))
}

/// A transformer block's MLP with its residual, `x` + gelu(`normed`·w1 + b1)·w2 + b2, for tokens
/// `x` and their layer norm `normed` (both (B, n, C)), weights (in, out): natively by blocks of
/// rows, each block's hidden rows (4C wide) made, passed through GELU and projected back while
/// in cache; in the browser the inputs back.
pub fn mlp_residual(
    x: Tensor<3>,
    normed: Tensor<3>,
    (w1, b1): (&Tensor<2>, &Tensor<1>),
    (w2, b2): (&Tensor<2>, &Tensor<1>),
) -> Result<Tensor<3>, (Tensor<3>, Tensor<3>)> {
    #[cfg(target_family = "wasm")]
    {
        let _ = (w1, b1, w2, b2);
        Err((x, normed))
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let ([b, n, c], [_, hid]) = (x.dims(), w1.dims());
        let (Some((w1, Some(b1))), Some((w2, Some(b2)))) =
            (weight_bias(w1, Some(b1)), weight_bias(w2, Some(b2)))
        else {
            return Err((x, normed));
        };
        let Ok(nt) = flex_f32(normed) else {
            unreachable!("the norm of x lives where x does")
        };
        let Ok(xt) = flex_f32(x) else {
            unreachable!("x lives where its norm does")
        };
        let mut out = values(&xt).to_vec();
        let layers = [(values(&w1), values(&b1)), (values(&w2), values(&b2))];
        native::mlp_residual(values(&nt), layers, (c, hid), &mut out);
        Ok(from_vec(out, [b, n, c]))
    }
}

/// SAM's output upscaling and mask product, pixel by pixel: for each embedding pixel's tokens
/// `pixels` (B·P, C), gelu(layer_norm(x·w1 + b1) per C1) as 4 sub-pixel rows, each
/// gelu(·w2 + b2) as 4 more, each of those · `hyper` (B, C2, masks) → (B, P·16, masks), rows in
/// (pixel, ky1, kx1, ky2, kx2) order. Natively by blocks of pixels, every intermediate in cache;
/// in the browser the inputs back. `up1`: (C, 4·C1) and (4·C1); `norm`: gain, bias (C1), eps;
/// `up2`: (C1, 4·C2) and (4·C2).
pub fn upscaled_masks(
    pixels: Tensor<2>,
    up1: (&Tensor<2>, &Tensor<1>),
    norm: (&Tensor<1>, &Tensor<1>, f64),
    up2: (&Tensor<2>, &Tensor<1>),
    hyper: Tensor<3>,
) -> Result<Tensor<3>, (Tensor<2>, Tensor<3>)> {
    // In the browser our tile packs the weights again for every block of 32 pixels: measured
    // there, decodes took 73–76 ms against 66–67 ms with the layers one after another.
    if cfg!(target_family = "wasm") {
        return Err((pixels, hyper));
    }
    let ([rows, c], [_, c1x4], [b, c2, masks]) = (pixels.dims(), up1.0.dims(), hyper.dims());
    let (c1, c2x4) = (c1x4 / 4, up2.0.dims()[1]);
    let parts = (
        weight_bias(up1.0, Some(up1.1)),
        weight_bias(up2.0, Some(up2.1)),
        flex_f32(norm.0.clone()).ok(),
        flex_f32(norm.1.clone()).ok(),
    );
    let (Some((w1, Some(b1))), Some((w2, Some(b2))), Some(g), Some(beta)) = parts else {
        return Err((pixels, hyper));
    };
    if c2x4 != 4 * c2 || rows % b != 0 {
        return Err((pixels, hyper));
    }
    let Ok(ht) = flex_f32(hyper) else {
        unreachable!("hyper lives where the pixels do")
    };
    let Ok(xt) = flex_f32(pixels) else {
        unreachable!("the pixels live where hyper does")
    };
    let per = rows / b;
    let mut out = vec![0f32; rows * 16 * masks];
    let l = Upscaling {
        w1: values(&w1),
        b1: values(&b1),
        gain: values(&g),
        beta: values(&beta),
        eps: norm.2 as f32,
        w2: values(&w2),
        b2: values(&b2),
    };
    for ((x, o), h) in values(&xt)
        .chunks_exact(per * c)
        .zip(out.chunks_exact_mut(per * 16 * masks))
        .zip(values(&ht).chunks_exact(c2 * masks))
    {
        upscale_image(x, &l, h, (c, c1, c2, masks), o);
    }
    Ok(from_vec(out, [b, per * 16, masks]))
}

/// SAM's upscaling layers: 1×1 products to 4 sub-pixels each, the layer norm between.
struct Upscaling<'a> {
    w1: &'a [f32],
    b1: &'a [f32],
    gain: &'a [f32],
    beta: &'a [f32],
    eps: f32,
    w2: &'a [f32],
    b2: &'a [f32],
}

/// [`upscaled_masks`] for one image: `x` (P, C) → `out` (P·16, masks), 32 pixels at a time.
fn upscale_image(
    x: &[f32],
    l: &Upscaling,
    hyper: &[f32],
    (c, c1, c2, masks): (usize, usize, usize, usize),
    out: &mut [f32],
) {
    const PIXELS: usize = 32;
    assert!(l.w1.len() == c * 4 * c1 && l.w2.len() == c1 * 4 * c2);
    assert!(hyper.len() == c2 * masks && out.len() * c == x.len() * 16 * masks);
    for_each_chunk(out, PIXELS * 16 * masks, &|i, o| {
        let p = o.len() / (16 * masks);
        let x = &x[i * PIXELS * c..][..p * c];
        let mut y1 = vec![0f32; p * 4 * c1];
        product_rows(x, l.w1, Some(l.b1), (p, c, 4 * c1), &mut y1);
        for r in y1.chunks_exact_mut(c1) {
            layer_norm_row(r, l.gain, l.beta, l.eps);
        }
        gelu_slice(&mut y1);
        let mut y2 = vec![0f32; p * 16 * c2];
        product_rows(&y1, l.w2, Some(l.b2), (4 * p, c1, 4 * c2), &mut y2);
        gelu_slice(&mut y2);
        product_rows(&y2, hyper, None, (16 * p, c2, masks), o);
    });
}

/// `c` (m, n) = `a` (m, k) · `w` (k, n) + `bias` per column, on this thread: gemm's kernels
/// natively, our own tile in this module's tests (as everywhere they run).
fn product_rows(
    a: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    (m, k, n): (usize, usize, usize),
    c: &mut [f32],
) {
    if OWN_PRODUCTS {
        let bias = bias.map_or(Bias::None, Bias::Cols);
        gemm::matmul_into(a, Rhs::Rows(w), bias, (m, k, n), Then::Nothing, c);
        return;
    }
    if let Some(b) = bias {
        c.chunks_exact_mut(n).for_each(|r| r.copy_from_slice(b));
    }
    #[cfg(not(target_family = "wasm"))]
    native::product((m, k, n), a, (k, 1), w, (n, 1), c, bias.is_some());
}

/// Native passes on gemm's own kernels (AVX2/AVX-512, chosen at run time), one group per core.
#[cfg(not(target_family = "wasm"))]
mod native {
    use super::super::gemm_core::Heads;
    use gemm::{Parallelism, gemm};
    use rayon::prelude::*;

    /// As `gemm::attention`: softmax(q·kᵀ·scale + bias)·v per group, groups over the cores.
    pub fn attention(
        (q, k, v): (&[f32], &[f32], &[f32]),
        bias: Option<&[f32]>,
        s: Heads,
        scale: f32,
        out: &mut [f32],
    ) {
        let Heads {
            n, m, d, dv, heads, ..
        } = s;
        out.par_chunks_mut(n * dv).enumerate().for_each_init(
            || vec![0.0f32; n * m],
            |scores, (g, o)| {
                let (qg, kg) = (&q[g * n * d..][..n * d], &k[g * m * d..][..m * d]);
                // kᵀ is k read down its columns.
                product((n, d, m), qg, (d, 1), kg, (1, d), scores, false);
                let head = (s.first + g) % heads;
                let b = bias.map(|b| &b[head * n * m..][..n * m]);
                super::softmax_rows(scores, m, scale, b);
                let vg = &v[g * m * dv..][..m * dv];
                product((n, m, dv), scores, (m, 1), vg, (dv, 1), o, false);
            },
        );
    }

    /// `super::mlp_residual` on rows: `out` holds x on entry and x + mlp(normed) on return.
    pub fn mlp_residual(
        normed: &[f32],
        [(w1, b1), (w2, b2)]: [(&[f32], &[f32]); 2],
        (c, hid): (usize, usize),
        out: &mut [f32],
    ) {
        assert!(normed.len() == out.len() && w1.len() == c * hid && w2.len() == hid * c);
        // Hidden rows of a block: about 512 KiB, a part of a core's L2.
        let rows = ((1 << 17) / hid).max(8);
        out.par_chunks_mut(rows * c)
            .zip(normed.par_chunks(rows * c))
            .for_each_init(
                || vec![0f32; rows * hid],
                |h, (o, x)| {
                    let r = x.len() / c;
                    let h = &mut h[..r * hid];
                    h.chunks_exact_mut(hid)
                        .for_each(|row| row.copy_from_slice(b1));
                    product((r, c, hid), x, (c, 1), w1, (hid, 1), h, true);
                    super::gelu_slice(h);
                    for row in o.chunks_exact_mut(c) {
                        row.iter_mut().zip(b2).for_each(|(v, b)| *v += b);
                    }
                    product((r, hid, c), h, (hid, 1), w2, (c, 1), o, true);
                },
            );
    }

    /// An MBConv block's weights: 1×1 (E, C), depthwise (E, 9), 1×1 (C, E), and their biases.
    pub struct MbConv<'a> {
        pub w1: &'a [f32],
        pub b1: &'a [f32],
        pub wd: &'a [f32],
        pub bd: &'a [f32],
        pub w3: &'a [f32],
        pub b3: &'a [f32],
    }

    /// Image rows per task: each task also expands the row above and below its range.
    pub const ROWS_PER_TASK: usize = 32;

    /// `super::mbconv` on one image `x` (C, H, W) into `out` (C, H, W). Each task walks its rows
    /// keeping three expanded rows (E × W each, GELU applied) in a ring: row y + 1 is expanded,
    /// then row y's depthwise output (E × W) is formed, projected back to C channels on top of
    /// `x`'s row and the bias, and GELU applied there.
    pub fn mbconv(
        x: &[f32],
        l: &MbConv,
        (c, e, h, w): (usize, usize, usize, usize),
        out: &mut [f32],
    ) {
        let plane = h * w;
        assert!(x.len() == c * plane && out.len() == c * plane);
        assert!(l.w1.len() == e * c && l.wd.len() == e * 9 && l.w3.len() == c * e);
        assert!(l.b1.len() == e && l.bd.len() == e && l.b3.len() == c);
        // Rows of different channels interleave in `out`, so tasks share it by row index.
        struct Rows(*mut f32);
        // SAFETY: each task writes only the rows of its own range (see below).
        unsafe impl Sync for Rows {}
        let dst = Rows(out.as_mut_ptr());
        let dst = &dst;
        let tasks = h.div_ceil(ROWS_PER_TASK);
        (0..tasks).into_par_iter().for_each(|t| {
            let (y0, y1) = (t * ROWS_PER_TASK, ((t + 1) * ROWS_PER_TASK).min(h));
            let mut ring = vec![0f32; 3 * e * w];
            let mut dw = vec![0f32; e * w];
            let mut row_out = vec![0f32; c * w];
            // Expanded row `y` (zeros outside the image: the depthwise convolution's padding).
            let expand = |y: isize, slot: &mut [f32]| {
                if y < 0 || y as usize >= h {
                    slot.fill(0.0);
                    return;
                }
                let y = y as usize;
                for (r, b) in slot.chunks_exact_mut(w).zip(l.b1) {
                    r.fill(*b);
                }
                product((e, c, w), l.w1, (c, 1), &x[y * w..], (plane, 1), slot, true);
                super::gelu_slice(slot);
            };
            let slot = |y: isize| (y.rem_euclid(3)) as usize * e * w;
            for y in [y0 as isize - 1, y0 as isize] {
                let s = slot(y);
                expand(y, &mut ring[s..s + e * w]);
            }
            for y in y0..y1 {
                let next = y as isize + 1;
                let s = slot(next);
                expand(next, &mut ring[s..s + e * w]);
                let rows = [slot(y as isize - 1), slot(y as isize), slot(next)];
                super::dw_rows(&mut dw, &ring, rows, l.wd, l.bd, w);
                super::gelu_slice(&mut dw);
                for (ch, r) in row_out.chunks_exact_mut(w).enumerate() {
                    let xr = &x[ch * plane + y * w..][..w];
                    r.iter_mut().zip(xr).for_each(|(o, xv)| *o = xv + l.b3[ch]);
                }
                product((c, e, w), l.w3, (e, 1), &dw, (w, 1), &mut row_out, true);
                super::gelu_slice(&mut row_out);
                for (ch, r) in row_out.chunks_exact(w).enumerate() {
                    // SAFETY: row y of every channel belongs to this task's range alone, and
                    // `ch * plane + y * w + w <= out.len()` (asserted sizes).
                    unsafe {
                        std::ptr::copy_nonoverlapping(r.as_ptr(), dst.0.add(ch * plane + y * w), w)
                    };
                }
            }
        });
    }

    /// `c` (m, n) = `a` (m, k) · `b` (k, n), or += with `add`, on this thread; `c` contiguous,
    /// `a` and `b` by strides in elements, (row, column).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn product(
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        (a_rs, a_cs): (usize, usize),
        b: &[f32],
        (b_rs, b_cs): (usize, usize),
        c: &mut [f32],
        add: bool,
    ) {
        assert!(c.len() >= m * n);
        assert!(a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
        assert!(b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
        // SAFETY: the asserts keep every element gemm reads or writes inside the slices.
        unsafe {
            gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                add,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            )
        }
    }
}

/// A layer's weight and bias as CPU buffers (shared, not copied, when contiguous); `None` when
/// they live elsewhere.
fn weight_bias<const D: usize>(
    w: &Tensor<D>,
    bias: Option<&Tensor<1>>,
) -> Option<(FlexTensor, Option<FlexTensor>)> {
    let wt = flex_f32(w.clone()).ok()?;
    let bt = match bias {
        Some(b) => Some(flex_f32(b.clone()).ok()?),
        None => None,
    };
    Some((wt, bt))
}

fn from_vec<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    let t = FlexTensor::from_data(burn::tensor::TensorData::new(v, shape));
    Tensor::from_primitive::<Flex>(t)
}

/// Tokens `x` (B, H·W, C) of an H×W map → windows (B·nh·nw, ws², C) of ws × ws tokens, row by
/// row, the map zero-padded at the bottom and right to whole windows: one pass (burn-flex: two
/// concatenations and a transposing copy). `x` back when not on the CPU backend.
pub fn windows(x: Tensor<3>, (h, w): (usize, usize), ws: usize) -> Result<Tensor<3>, Tensor<3>> {
    let [b, l, c] = x.dims();
    assert_eq!(l, h * w, "tokens of a {h}×{w} map");
    let xt = flex_f32(x)?;
    let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
    let src = values(&xt);
    let mut out = vec![0f32; b * nh * nw * ws * ws * c];
    for_each_chunk(&mut out, ws * ws * c, &|win, o| {
        let (img, wy, wx) = (win / (nh * nw), win / nw % nh, win % nw);
        let (x0, y0) = (wx * ws, wy * ws);
        let n = ws.min(w - x0) * c;
        for dy in 0..ws.min(h - y0) {
            let from = &src[((img * h + y0 + dy) * w + x0) * c..][..n];
            o[dy * ws * c..][..n].copy_from_slice(from);
        }
    });
    Ok(from_vec(out, [b * nh * nw, ws * ws, c]))
}

/// `x` (B, H·W, C) + `win` (B·nh·nw, ws², C), windows of the padded map as [`windows`] makes
/// them, put back in place and the padding dropped: window attention's residual in one pass
/// (burn-flex: a transposing copy, a slice and an add). The inputs back when not on the CPU
/// backend.
pub fn add_windows(
    x: Tensor<3>,
    win: Tensor<3>,
    (h, w): (usize, usize),
    ws: usize,
) -> Result<Tensor<3>, (Tensor<3>, Tensor<3>)> {
    let [_, l, c] = x.dims();
    assert_eq!(l, h * w, "tokens of a {h}×{w} map");
    let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
    let win = match flex_f32(win) {
        Ok(t) => t,
        Err(win) => return Err((x, win)),
    };
    let Ok(mut xt) = flex_f32(x) else {
        unreachable!("x lives where its windows do")
    };
    let from = values(&win);
    // One chunk per row of the map.
    for_each_chunk(values_mut(&mut xt), w * c, &|row, o| {
        let (img, y) = (row / h, row % h);
        for wx in 0..nw {
            let x0 = wx * ws;
            let n = ws.min(w - x0) * c;
            let at = (((img * nh + y / ws) * nw + wx) * ws * ws + y % ws * ws) * c;
            for (v, a) in o[x0 * c..][..n].iter_mut().zip(&from[at..][..n]) {
                *v += a;
            }
        }
    });
    Ok(Tensor::from_primitive::<Flex>(xt))
}

/// A depthwise 3×3 convolution (stride 1, zero padding 1) on channels-last tokens: `x` (B, H·W, C)
/// of an H×W map, `w` (C, 1, 3, 3), `bias` (C) → (B, H·W, C), without turning the tokens into
/// (B, C, H, W) and back (two transposing copies around burn's convolution). The inputs back
/// when not on the CPU backend.
pub fn depthwise3x3_tokens(
    x: Tensor<3>,
    (h, w): (usize, usize),
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
) -> Result<Tensor<3>, Tensor<3>> {
    let [b, l, c] = x.dims();
    assert_eq!(l, h * w, "tokens of a {h}×{w} map");
    let Some((wt, bias)) = weight_bias(weight, bias) else {
        return Err(x);
    };
    let xt = flex_f32(x)?;
    // Taps × channels, so that each tap's weights line up with a token's channels.
    let wv = values(&wt);
    let taps: Vec<f32> = (0..9)
        .flat_map(|k| (0..c).map(move |ch| (k, ch)))
        .map(|(k, ch)| wv[ch * 9 + k])
        .collect();
    let bv = bias.as_ref().map_or(vec![0.0; c], |t| values(t).to_vec());
    let input = values(&xt);
    let mut out = vec![0f32; b * l * c];
    // One chunk per output row of the map.
    for_each_chunk(&mut out, w * c, &|row, o| {
        let (img, y) = (row / h, row % h);
        let plane = &input[img * l * c..(img + 1) * l * c];
        dw_row(o, plane, &taps, &bv, (h, w, c), y);
    });
    let out = FlexTensor::from_data(burn::tensor::TensorData::new(out, [b, l, c]));
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// TinyViT's MBConv block, gelu(conv3(gelu(dw3×3(gelu(conv1(x))))) + x), on `x` (B, C, H, W)
/// with 1×1 `w1` (E, C, 1, 1), depthwise `wd` (E, 1, 3, 3) and 1×1 `w3` (C, E, 1, 1) and their
/// biases (BatchNorms folded): natively one pass over the image's rows with the expanded rows in
/// cache (E = 4C channels at full resolution: 64 MiB tensors in LiteMedSAM's first stage, each
/// unfused step a trip through memory); in the browser `x` back.
pub fn mbconv(x: Tensor<4>, layers: [(&Tensor<4>, &Tensor<1>); 3]) -> Result<Tensor<4>, Tensor<4>> {
    #[cfg(target_family = "wasm")]
    {
        let _ = layers;
        Err(x)
    }
    #[cfg(not(target_family = "wasm"))]
    mbconv_native(x, layers)
}

#[cfg(not(target_family = "wasm"))]
fn mbconv_native(
    x: Tensor<4>,
    [(w1, b1), (wd, bd), (w3, b3)]: [(&Tensor<4>, &Tensor<1>); 3],
) -> Result<Tensor<4>, Tensor<4>> {
    let ([b, c, h, w], [e, ..]) = (x.dims(), w1.dims());
    let shapes_fit = w1.dims() == [e, c, 1, 1]
        && wd.dims() == [e, 1, 3, 3]
        && w3.dims() == [c, e, 1, 1]
        && w >= 2;
    if !shapes_fit {
        return Err(x);
    }
    let (Some((w1, Some(b1))), Some((wd, Some(bd))), Some((w3, Some(b3)))) = (
        weight_bias(w1, Some(b1)),
        weight_bias(wd, Some(bd)),
        weight_bias(w3, Some(b3)),
    ) else {
        return Err(x);
    };
    let xt = flex_f32(x)?;
    let mut out = vec![0f32; b * c * h * w];
    let layers = native::MbConv {
        w1: values(&w1),
        b1: values(&b1),
        wd: values(&wd),
        bd: values(&bd),
        w3: values(&w3),
        b3: values(&b3),
    };
    for (img, o) in values(&xt)
        .chunks_exact(c * h * w)
        .zip(out.chunks_exact_mut(c * h * w))
    {
        native::mbconv(img, &layers, (c, e, h, w), o);
    }
    Ok(from_vec(out, [b, c, h, w]))
}

multiversion! {
    /// Output row `y` of a depthwise 3×3 convolution over one channels-last plane.
    fn dw_row(o: &mut [f32], plane: &[f32], taps: &[f32], bias: &[f32], hwc: (usize, usize, usize), y: usize) {
        let (h, w, c) = hwc;
        for (xo, px) in o.chunks_exact_mut(c).enumerate() {
            px.copy_from_slice(bias);
            for dy in 0..3 {
                let Some(yi) = (y + dy).checked_sub(1).filter(|&v| v < h) else { continue };
                for dx in 0..3 {
                    let Some(xi) = (xo + dx).checked_sub(1).filter(|&v| v < w) else { continue };
                    let src = &plane[(yi * w + xi) * c..][..c];
                    let tap = &taps[(dy * 3 + dx) * c..][..c];
                    for ((p, s), t) in px.iter_mut().zip(src).zip(tap) {
                        *p += s * t;
                    }
                }
            }
        }
    }
}

/// Runs `f(chunk index, chunk)` over `len`-sized chunks: on every core natively, in order in the
/// browser (no threads there).
fn for_each_chunk(buf: &mut [f32], len: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        buf.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
    #[cfg(target_family = "wasm")]
    buf.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
}

multiversion! {
    #[cfg(not(target_family = "wasm"))]
    /// One output row of a depthwise 3×3 convolution, channels first: `out` (E, W) from the rows
    /// above, at and below it in `ring` (each (E, W), at the offsets `rows`), weights (E, 9).
    fn dw_rows(out: &mut [f32], ring: &[f32], rows: [usize; 3], wd: &[f32], bd: &[f32], w: usize) {
        for (ch, o) in out.chunks_exact_mut(w).enumerate() {
            o.fill(bd[ch]);
            for (dy, &r) in rows.iter().enumerate() {
                let src = &ring[r + ch * w..][..w];
                let [k0, k1, k2] = [wd[ch * 9 + dy * 3], wd[ch * 9 + dy * 3 + 1], wd[ch * 9 + dy * 3 + 2]];
                // Interior columns vectorize; the two edges see a zero beyond the image.
                let taps = src.iter().zip(&src[1..]).zip(&src[2..]);
                for (o, ((a, b), c)) in o[1..w - 1].iter_mut().zip(taps) {
                    *o += k0 * a + k1 * b + k2 * c;
                }
                o[0] += k1 * src[0] + k2 * src[1];
                o[w - 1] += k0 * src[w - 2] + k1 * src[w - 1];
            }
        }
    }
}

multiversion! {
    /// A layer norm of one row in place: (x − mean) / √(var + eps) · gain + beta.
    fn layer_norm_row(r: &mut [f32], gain: &[f32], beta: &[f32], eps: f32) {
        let n = r.len() as f32;
        let mean = r.iter().sum::<f32>() / n;
        let var = r.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in r.iter_mut().zip(gain).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

multiversion! {
    /// GELU, 0.5·x·(1 + erf(x/√2)), over a slice.
    fn gelu_slice(xs: &mut [f32]) {
        super::gemm_core::gelu_in_place(xs)
    }
}

multiversion! {
    /// Rows of `m`: x ← softmax(x·scale + bias) (`gemm_core::softmax_rows`), compiled here again
    /// for AVX2 natively.
    fn softmax_rows(block: &mut [f32], m: usize, scale: f32, bias: Option<&[f32]>) {
        super::gemm_core::softmax_rows(block, m, scale, bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn erf_f32_is_within_4e_7_of_erf() {
        let mut worst = 0.0f32;
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            worst = worst.max((erf_f32(x) - erf_ref(x as f64) as f32).abs());
        }
        assert!(worst < 4e-7, "max |erf_f32 - erf| = {worst}");
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(-30.0), -1.0);
    }

    /// erf in f64 by the series for |x| < 3 and the asymptotic complement beyond (both far more
    /// precise than f32).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() >= 3.0 {
            let z = x.abs();
            // erfc(z) = exp(-z²)/(z√π)·(1 − 1/(2z²) + 3/(4z⁴) − 15/(8z⁶) + 105/(16z⁸))
            let z2 = z * z;
            let s = 1.0 - 1.0 / (2.0 * z2) + 3.0 / (4.0 * z2 * z2) - 15.0 / (8.0 * z2.powi(3))
                + 105.0 / (16.0 * z2.powi(4));
            let erfc = (-z2).exp() / (z * std::f64::consts::PI.sqrt()) * s;
            return x.signum() * (1.0 - erfc);
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_f32_is_within_3e_7_relative_of_exp() {
        let mut worst = 0.0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64 - want) / want).abs());
        }
        assert!(worst < 3e-7, "max relative error {worst}");
        assert!(exp_f32(-1000.0) < 1e-37 && exp_f32(-1000.0) >= 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn gelu_on_the_cpu_matches_burns_exact_gelu() {
        let dev = Device::flex();
        let v: Vec<f32> = (0..4096).map(|i| (i as f32 - 2048.0) * 0.004).collect();
        let x = Tensor::<2>::from_data(TensorData::new(v, [64, 64]), &dev);
        // A transposed view too: the non-contiguous path.
        for input in [x.clone(), x.clone().transpose()] {
            let ours = crate::weights::to_host(gelu(input.clone()).unwrap()).unwrap();
            let burns = crate::weights::to_host(burn::tensor::activation::gelu(input)).unwrap();
            assert_close(&ours, &burns, 2e-6);
        }
        // The input is left as it was (shared storage is copied, not changed).
        let before = crate::weights::to_host(x.clone()).unwrap();
        let _ = gelu(x.clone());
        assert_eq!(crate::weights::to_host(x).unwrap(), before);
    }

    #[test]
    fn scaled_softmax_matches_burns_ops() {
        let dev = Device::flex();
        let (b, h, n) = (3, 2, 13); // rows of 13: the 8-lane reductions' remainder path too
        let s: Vec<f32> = (0..b * h * n * n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3)
            .collect();
        let bias: Vec<f32> = (0..h * n * n)
            .map(|i| ((i * 11 % 23) as f32 - 11.0) * 0.5)
            .collect();
        let s = Tensor::<4>::from_data(TensorData::new(s, [b, h, n, n]), &dev);
        let bias = Tensor::<4>::from_data(TensorData::new(bias, [1, h, n, n]), &dev);
        let want = burn::tensor::activation::softmax(s.clone() * 0.25 + bias.clone(), 3);
        let ours = scaled_softmax(s.clone(), 0.25, Some(bias)).ok().unwrap();
        assert_close(&to_host(ours), &to_host(want), 1e-6);
        let want = burn::tensor::activation::softmax(s.clone() * 0.5, 3);
        let ours = scaled_softmax(s, 0.5, None).ok().unwrap();
        assert_close(&to_host(ours), &to_host(want), 1e-6);
    }

    #[test]
    fn windows_pad_and_add_windows_puts_them_back() {
        let dev = Device::flex();
        // A map whose sides are not whole windows (padded), one that is, a batch of two.
        for (b, h, w, ws) in [(2, 5, 8, 3), (1, 6, 6, 3), (1, 2, 7, 7)] {
            let c = 3;
            let v = |k: usize| -> Vec<f32> {
                (0..b * h * w * c).map(|i| (i * k % 101) as f32).collect()
            };
            let x = Tensor::<3>::from_data(TensorData::new(v(7), [b, h * w, c]), &dev);
            let win = windows(x.clone(), (h, w), ws).ok().unwrap();
            let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
            assert_eq!(win.dims(), [b * nh * nw, ws * ws, c]);
            let got = to_host(win.clone());
            let xs = v(7);
            for (i, g) in got.iter().enumerate() {
                let (ch, t, win) = (i % c, i / c % (ws * ws), i / c / (ws * ws));
                let (img, wy, wx) = (win / (nh * nw), win / nw % nh, win % nw);
                let (y, x) = (wy * ws + t / ws, wx * ws + t % ws);
                let want = if y < h && x < w {
                    xs[((img * h + y) * w + x) * c + ch]
                } else {
                    0.0
                };
                assert_eq!(*g, want, "{b}x{h}x{w} ws {ws}: window value {i}");
            }
            // Windows of another map, added back: x + that map.
            let y = Tensor::<3>::from_data(TensorData::new(v(13), [b, h * w, c]), &dev);
            let wy = windows(y.clone(), (h, w), ws).ok().unwrap();
            let sum = add_windows(x.clone(), wy, (h, w), ws).ok().unwrap();
            assert_eq!(to_host(sum), to_host(x + y));
        }
    }

    #[test]
    fn depthwise_on_tokens_matches_burns_convolution() {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let dev = Device::flex();
        let (b, h, w, c) = (2, 5, 7, 12);
        let x: Vec<f32> = (0..b * h * w * c)
            .map(|i| ((i * 29 % 97) as f32 - 48.0) * 0.05)
            .collect();
        let wt: Vec<f32> = (0..c * 9)
            .map(|i| ((i * 13 % 31) as f32 - 15.0) * 0.1)
            .collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.01 - 0.05).collect();
        let x = Tensor::<3>::from_data(TensorData::new(x, [b, h * w, c]), &dev);
        let wt = Tensor::<4>::from_data(TensorData::new(wt, [c, 1, 3, 3]), &dev);
        let bias = Tensor::<1>::from_data(TensorData::new(bias, [c]), &dev);
        let nchw = x.clone().swap_dims(1, 2).reshape([b, c, h, w]);
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], c);
        let want = conv2d(nchw, wt.clone(), Some(bias.clone()), opts)
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let ours = depthwise3x3_tokens(x, (h, w), &wt, Some(&bias))
            .ok()
            .unwrap();
        assert_close(&to_host(ours), &to_host(want), 1e-5);
    }

    /// The browser's matrix products (`models::gemm` behind `linear`, `conv` and `matmul2`) against
    /// burn's, here through the portable build of the same tile code.
    #[test]
    fn own_products_match_burns_linear_and_convolution() {
        use burn::tensor::module::{conv2d, linear as burns_linear};
        use burn::tensor::ops::ConvOptions;
        let dev = Device::flex();
        let vals = |n: usize, k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * k % 53) as f32 - 26.0) * 0.03)
                .collect()
        };
        let (m, k, n) = (37, 70, 21);
        let x = Tensor::<2>::from_data(TensorData::new(vals(m * k, 7), [m, k]), &dev);
        // A transposed weight view too, as `Linear` keeps it before `contiguous`.
        let w = Tensor::<2>::from_data(TensorData::new(vals(k * n, 11), [n, k]), &dev).transpose();
        let b = Tensor::<1>::from_data(TensorData::new(vals(n, 3), [n]), &dev);
        let want = burns_linear(x.clone(), w.clone(), Some(b.clone()));
        let ours = linear(x.clone(), &w, Some(&b), Then::Nothing).ok().unwrap();
        assert_close(&to_host(ours), &to_host(want.clone()), 1e-5);
        let ours = linear(x.clone(), &w, Some(&b), Then::Gelu).ok().unwrap();
        let gelu = burn::tensor::activation::gelu;
        assert_close(&to_host(ours), &to_host(gelu(want)), 1e-5);
        let want = burns_linear(x.clone(), w.clone(), None);
        assert_close(
            &to_host(linear(x, &w, None, Then::Nothing).ok().unwrap()),
            &to_host(want),
            1e-5,
        );

        let (bn, c, h, wd, o) = (2, 9, 5, 7, 6);
        let x = Tensor::<4>::from_data(
            TensorData::new(vals(bn * c * h * wd, 5), [bn, c, h, wd]),
            &dev,
        );
        let w = Tensor::<4>::from_data(TensorData::new(vals(o * c, 13), [o, c, 1, 1]), &dev);
        let b = Tensor::<1>::from_data(TensorData::new(vals(o, 17), [o]), &dev);
        let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let want = conv2d(x.clone(), w.clone(), Some(b.clone()), opts);
        let ours = conv(x.clone(), &w, Some(&b), 1, 0, Then::Nothing)
            .ok()
            .unwrap();
        assert_close(&to_host(ours), &to_host(want), 1e-5);

        // 3×3 convolutions through the im2col tile, strides 1 and 2, a batch of two.
        let w = Tensor::<4>::from_data(TensorData::new(vals(o * c * 9, 29), [o, c, 3, 3]), &dev);
        for stride in [1, 2] {
            let opts = ConvOptions::new([stride; 2], [1, 1], [1, 1], 1);
            let want = conv2d(x.clone(), w.clone(), Some(b.clone()), opts);
            let ours = conv(x.clone(), &w, Some(&b), stride, 1, Then::Nothing)
                .ok()
                .unwrap();
            assert_eq!(ours.dims(), want.dims());
            assert_close(&to_host(ours), &to_host(want.clone()), 1e-5);
            let ours = conv(x.clone(), &w, Some(&b), stride, 1, Then::Gelu)
                .ok()
                .unwrap();
            let gelu = burn::tensor::activation::gelu;
            assert_close(&to_host(ours), &to_host(gelu(want)), 1e-5);
        }

        // Plain products, the right-hand side as given and as the transpose of an (n, k) matrix.
        let a = Tensor::<2>::from_data(TensorData::new(vals(m * k, 19), [m, k]), &dev);
        let bm = Tensor::<2>::from_data(TensorData::new(vals(k * n, 23), [k, n]), &dev);
        let want = a.clone().matmul(bm.clone());
        let ours = matmul2(a.clone(), bm.clone(), false).ok().unwrap();
        assert_close(&to_host(ours), &to_host(want.clone()), 1e-5);
        let bt = bm.transpose().into_data();
        let bt = Tensor::<2>::from_data(bt, &dev); // (n, k), contiguous
        let ours = matmul2(a, bt, true).ok().unwrap();
        assert_close(&to_host(ours), &to_host(want), 1e-5);
    }

    #[test]
    fn own_attention_matches_burns_ops() {
        let dev = Device::flex();
        let (b, h, n, m, d) = (2, 3, 13, 11, 8);
        let t = |len: usize, k: usize, shape: [usize; 4]| {
            let v: Vec<f32> = (0..len)
                .map(|i| ((i * k % 61) as f32 - 30.0) * 0.05)
                .collect();
            Tensor::<4>::from_data(TensorData::new(v, shape), &dev)
        };
        let q = t(b * h * n * d, 7, [b, h, n, d]);
        let k = t(b * h * m * d, 11, [b, h, m, d]);
        let v = t(b * h * m * d, 13, [b, h, m, d]);
        let bias = t(h * n * m, 5, [1, h, n, m]);
        let scores = q.clone().matmul(k.clone().swap_dims(2, 3)) * 0.3 + bias.clone();
        let want = burn::tensor::activation::softmax(scores, 3).matmul(v.clone());
        let want = to_host(want);
        let (qh, kh, vh, bh) = (
            to_host(q.clone()),
            to_host(k.clone()),
            to_host(v.clone()),
            to_host(bias.clone()),
        );
        let ours = attention(q, k, v, 0.3, Some(&bias)).ok().unwrap();
        assert_close(&to_host(ours), &want, 1e-5);
        // The native path (gemm's kernels, groups over the cores) too.
        let heads = Heads {
            groups: b * h,
            n,
            m,
            d,
            dv: d,
            heads: h,
            first: 0,
        };
        let mut out = vec![0.0; b * h * n * d];
        native::attention((&qh, &kh, &vh), Some(&bh), heads, 0.3, &mut out);
        assert_close(&out, &want, 1e-5);
    }

    /// The MLP by blocks of rows with its residual equals burn's ops, over several blocks (the
    /// last one short).
    #[test]
    fn mlp_by_row_blocks_matches_burns_ops() {
        let dev = Device::flex();
        // 4096 hidden units: 32 rows a block, so 2 × 37 rows make three blocks.
        let (b, n, c, hid) = (2, 37, 8, 4096);
        let t = |k: usize, shape: [usize; 2]| {
            let len = shape.iter().product::<usize>();
            let v: Vec<f32> = (0..len)
                .map(|i| ((i * k % 61) as f32 - 30.0) * 0.02)
                .collect();
            Tensor::<2>::from_data(TensorData::new(v, shape), &dev)
        };
        let (x, normed) = (t(7, [b * n, c]), t(11, [b * n, c]));
        let (w1, w2) = (t(13, [c, hid]), t(17, [hid, c]));
        let (b1, b2) = (t(5, [1, hid]).reshape([hid]), t(3, [1, c]).reshape([c]));
        let hidden = burn::tensor::activation::gelu(
            normed.clone().matmul(w1.clone()) + b1.clone().unsqueeze(),
        );
        let want = x.clone() + hidden.matmul(w2.clone()) + b2.clone().unsqueeze();
        let (x, normed) = (x.reshape([b, n, c]), normed.reshape([b, n, c]));
        let ours = mlp_residual(x, normed, (&w1, &b1), (&w2, &b2))
            .ok()
            .unwrap();
        assert_close(&to_host(ours), &to_host(want), 1e-4);
    }

    /// The fused MBConv equals its steps run one after another with burn's own ops, across
    /// several tasks' row ranges (the rows each task expands twice meet there).
    #[test]
    fn fused_mbconv_matches_burns_ops() {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let dev = Device::flex();
        let (c, e, h, w) = (3, 12, 2 * native::ROWS_PER_TASK + 5, 9);
        let t = |k: usize, shape: [usize; 4]| {
            let len = shape.iter().product::<usize>();
            let v: Vec<f32> = (0..len)
                .map(|i| ((i * k % 61) as f32 - 30.0) * 0.04)
                .collect();
            Tensor::<4>::from_data(TensorData::new(v, shape), &dev)
        };
        let b = |k: usize, n: usize| t(k, [1, 1, 1, n]).reshape([n]);
        let x = t(7, [2, c, h, w]);
        let (w1, b1) = (t(11, [e, c, 1, 1]), b(5, e));
        let (wd, bd) = (t(13, [e, 1, 3, 3]), b(3, e));
        let (w3, b3) = (t(17, [c, e, 1, 1]), b(19, c));
        let gelu = burn::tensor::activation::gelu;
        let plain = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let y = gelu(conv2d(
            x.clone(),
            w1.clone(),
            Some(b1.clone()),
            plain.clone(),
        ));
        let y = gelu(conv2d(
            y,
            wd.clone(),
            Some(bd.clone()),
            ConvOptions::new([1, 1], [1, 1], [1, 1], e),
        ));
        let want = gelu(conv2d(y, w3.clone(), Some(b3.clone()), plain) + x.clone());
        let ours = mbconv(x, [(&w1, &b1), (&wd, &bd), (&w3, &b3)])
            .ok()
            .unwrap();
        assert_close(&to_host(ours), &to_host(want), 2e-5);
    }

    fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        crate::weights::to_host(t).unwrap()
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < tol, "max |difference| = {worst}");
    }
}
