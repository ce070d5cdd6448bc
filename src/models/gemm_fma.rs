//! The browser tile of `gemm.rs` with fused multiply-adds (wasm relaxed SIMD), as a module of its
//! own: an engine without relaxed SIMD rejects a whole module that has one such instruction, so
//! the app's wasm cannot hold it. `build.rs` compiles this file alone (no_std, `--import-memory`)
//! into a module of under 1 KB that the app's wasm includes and instantiates on its own memory
//! where the engine accepts it (`gemm::fma`). Not part of the crate's module tree.
//!
//! That build uses no stack and no data of its own (the memory it imports is the app's). A second
//! build (`--cfg medseg_pool`, on a shared memory of its own) adds `job`: a whole product on the
//! rows of C a helper thread takes (`gemm_pool.js`), with gemm_core.rs, the app's own code; or an
//! attention's groups, or a depthwise convolution's channels (depthwise.rs).
#![no_std]
#![allow(unexpected_cfgs)]

use core::arch::wasm32::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    unreachable()
}

/// `count` tiles of 2 × 16 down the rows of C, as `gemm::tile` computes each: tile t reads the
/// packed A panel at `a + t·2·kc` and the one packed B panel `b` (kc × 16), starts from the 2 × 16
/// tile `start` (or, when it is null, from C), and writes C at `c + t·2·ldc` (row stride ldc).
///
/// # Safety
/// The caller (gemm.rs) passes pointers into the app's memory for which these reads and writes
/// are in bounds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tiles(
    a: *const f32,
    b: *const f32,
    start: *const f32,
    c: *mut f32,
    ldc: usize,
    kc: usize,
    count: usize,
) {
    unsafe {
        for t in 0..count {
            let (a, c) = (a.add(t * 2 * kc), c.add(t * 2 * ldc));
            let mut acc = [[f32x4_splat(0.0); 4]; 2];
            for (i, acc) in acc.iter_mut().enumerate() {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let p = match start.is_null() {
                        true => c.add(i * ldc + 4 * j) as *const f32,
                        false => start.add(i * 16 + 4 * j),
                    };
                    *acc = v128_load(p as *const v128);
                }
            }
            let (mut pa, mut pb) = (a, b);
            for _ in 0..kc {
                let bv = [0, 4, 8, 12].map(|o| v128_load(pb.add(o) as *const v128));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let s = v128_load32_splat(pa.add(i) as *const u32);
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = f32x4_relaxed_madd(s, bv, *acc);
                    }
                }
                pa = pa.add(2);
                pb = pb.add(16);
            }
            for (i, acc) in acc.iter().enumerate() {
                for (j, &v) in acc.iter().enumerate() {
                    v128_store(c.add(i * ldc + 4 * j) as *mut v128, v);
                }
            }
        }
    }
}

#[cfg(medseg_pool)]
#[path = "gemm_core.rs"]
#[allow(dead_code)]
mod gemm_core;

#[cfg(medseg_pool)]
#[path = "depthwise.rs"]
mod depthwise;

/// Floats of working memory one helper's products need at most.
#[cfg(medseg_pool)]
#[unsafe(no_mangle)]
pub extern "C" fn scratch_floats() -> usize {
    use gemm_core::{KC, MC, NC, SCORES_MAX};
    gemm_core::scratch_len(MC, KC, NC) + SCORES_MAX
}

/// One helper's job, described by the words at `h` (gemm_pool.js writes them). A product (16
/// words): the right operand's kind (0 rows, 1 transposed, 2 im2col), the bias's (0 none, 1 per
/// row, 2 per column), m, k, n, the addresses of A, B (or the im2col image), the bias, C and the
/// scratch, the image's channels, height, width, stride and padding, then what follows the
/// product (0 nothing, 1 GELU). An attention's groups
/// (16 words): 3, whether there is a bias, then as below. A depthwise convolution's channels (11
/// words): 4, then GELU or not, the channels, h, w, stride, the addresses of x, the taps, the
/// bias, the output and the scratch.
///
/// # Safety
/// The addresses hold what the words say, in the shared memory this module imports.
#[cfg(medseg_pool)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn job(h: *const u32) {
    use gemm_core::{Bias, Heads, Im2col, NR, Rhs, Then, attention, attention_scratch, product, scratch_len};
    let w = |i: usize| unsafe { *h.add(i) as usize };
    let mut fma = |a: &[f32], b: &[f32], start: Option<&[f32; 32]>, c: &mut [f32], ldc, count| unsafe {
        let start = start.map_or(core::ptr::null(), |s| s.as_ptr());
        tiles(a.as_ptr(), b.as_ptr(), start, c.as_mut_ptr(), ldc, b.len() / NR, count)
    };
    let vals = |at: usize, len: usize| unsafe { core::slice::from_raw_parts(at as *const f32, len) };
    let vals_mut = |at: usize, len: usize| unsafe { core::slice::from_raw_parts_mut(at as *mut f32, len) };
    if w(0) == 3 {
        // An attention's groups: count, n, m, d, dv, heads, first at words 2..9, then the
        // addresses of q, k, v, the bias, the output and the scratch, then the scale's bits.
        let s = Heads { groups: w(2), n: w(3), m: w(4), d: w(5), dv: w(6), heads: w(7), first: w(8) };
        let (g, n, m, d, dv) = (s.groups, s.n, s.m, s.d, s.dv);
        let qkv = (vals(w(9), g * n * d), vals(w(10), g * m * d), vals(w(11), g * m * dv));
        let bias = (w(1) != 0).then(|| vals(w(12), s.heads * n * m));
        let (out, scratch) = (vals_mut(w(13), g * n * dv), vals_mut(w(14), attention_scratch(s)));
        let scale = f32::from_bits(w(15) as u32);
        return attention(qkv, bias, s, scale, out, scratch, &mut fma);
    }
    if w(0) == 4 {
        let (c, hh, ww, stride) = (w(2), w(3), w(4), w(5));
        let (oh, ow) = depthwise::out_size(hh, ww, stride);
        let (x, taps, bias) = (vals(w(6), c * hh * ww), vals(w(7), c * 9), vals(w(8), c));
        let (out, scratch) = (vals_mut(w(9), c * oh * ow), vals_mut(w(10), depthwise::scratch_len(ww)));
        let then = if w(1) == 1 { Then::Gelu } else { Then::Nothing };
        return depthwise::depthwise3x3(x, taps, bias, (c, hh, ww), stride, then, out, scratch);
    }
    let (m, k, n) = (w(2), w(3), w(4));
    let b = match w(0) {
        0 => Rhs::Rows(vals(w(6), k * n)),
        1 => Rhs::Transposed(vals(w(6), k * n)),
        _ => {
            let (c, hh, ww) = (w(10), w(11), w(12));
            Rhs::Im2col(Im2col { x: vals(w(6), c * hh * ww), c, h: hh, w: ww, stride: w(13), pad: w(14) })
        }
    };
    let bias = match w(1) {
        0 => Bias::None,
        1 => Bias::Rows(vals(w(7), m)),
        _ => Bias::Cols(vals(w(7), n)),
    };
    let (c, scratch) = (vals_mut(w(8), m * n), vals_mut(w(9), scratch_len(m, k, n)));
    let then = if w(15) == 1 { Then::Gelu } else { Then::Nothing };
    product(vals(w(5), m * k), b, bias, (m, k, n), then, c, scratch, &mut fma);
}
