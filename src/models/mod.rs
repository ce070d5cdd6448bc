//! Pure burn models, backend-agnostic (the device decides): no files, no pages, no pixels. `cpu`
//! holds fast paths the blocks take when the device is the CPU backend.

pub mod calibrate;
pub mod cpu;
mod depthwise;
pub mod gemm;
mod gemm_core;
pub mod nn;
pub mod sam;
pub mod universeg;

use burn::tensor::{Device, FloatDType};

/// Makes a fresh GPU `device` store and compute every float in f16 (half the memory traffic;
/// matrix products still accumulate in f32), where its adapter has `shader-f16`. Returns false,
/// changing nothing, where it has not, or once the device holds tensors. LiteMedSAM's masks stay
/// within Dice 0.98 of the official f32 ones (`tests/f16.rs`).
pub fn compute_in_f16(device: &mut Device) -> bool {
    device.configure(FloatDType::F16).is_ok()
}
