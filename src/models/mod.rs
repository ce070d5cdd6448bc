//! Pure burn models, backend-agnostic (the device decides): no files, no pages, no pixels. `cpu`
//! holds fast paths the blocks take when the device is the CPU backend.

pub mod cpu;
pub mod gemm;
mod gemm_core;
pub mod nn;
pub mod sam;
pub mod universeg;
