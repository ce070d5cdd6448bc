//! Official checkpoint → our model file. The model's own loading walk decides which tensors are
//! needed and checks their shapes, so a wrong or truncated checkpoint is named precisely.

use super::model_file::{self, Precision, sha256_hex};
use super::{StateDict, torch};
use crate::error::Result;
use crate::models::sam::{Sam, SamArch};
use burn::tensor::Device;

/// Converts a MedSAM-family PyTorch checkpoint into a model file.
pub fn convert_sam(checkpoint: &[u8], arch: &SamArch, precision: Precision) -> Result<Vec<u8>> {
    let sd = torch::read_state_dict(checkpoint)?;
    // Build on the CPU to check every key and shape and learn which tensors the model uses.
    let (_, used) = Sam::load(&sd, arch, &Device::flex())?;
    let kept: StateDict = sd.into_iter().filter(|(k, _)| used.contains(k)).collect();
    let policy = |name: &str| arch.quant_group(name);
    Ok(model_file::write(
        arch.name(),
        arch.config_json(),
        precision,
        &policy,
        &sha256_hex(checkpoint),
        &kept,
    ))
}
