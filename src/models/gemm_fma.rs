//! The browser tile of `gemm.rs` with fused multiply-adds (wasm relaxed SIMD), as a module of its
//! own: an engine without relaxed SIMD rejects a whole module that has one such instruction, so
//! the app's wasm cannot hold it. `build.rs` compiles this file alone (no_std, `--import-memory`)
//! into a module of under 1 KB that the app's wasm includes and instantiates on its own memory
//! where the engine accepts it (`gemm::fma`). Not part of the crate's module tree.
//!
//! It uses no stack and no data of its own (the memory it imports is the app's).
#![no_std]

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
