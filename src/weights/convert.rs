//! Official checkpoint → our model file. The model's own loading walk decides which tensors are
//! needed and checks their shapes, so a wrong or truncated checkpoint is named precisely.

use super::gptq::Grams;
use super::model_file::{self, Precision, sha256_hex};
use super::{Loader, StateDict, torch};
use crate::error::Result;
use crate::imaging::GrayImage;
use crate::imaging::decode::Planes;
use crate::imaging::volume::Volume;
use crate::imaging::window::{self, Window};
use crate::models::calibrate;
use crate::models::sam::{Sam, SamArch};
use crate::models::universeg::UniverSegConfig;
use crate::pipeline::medsam::MedSam;
use crate::pipeline::universeg::{self, UniverSeg};
use burn::tensor::Device;
use std::collections::BTreeSet;

/// Converts a MedSAM-family PyTorch checkpoint into a model file. With `calibration` images, the
/// image encoder's int8 weights are rounded to keep its layers' outputs on those images
/// ([`super::gptq`]); without, each weight to its nearest step.
pub fn convert_sam(
    checkpoint: &[u8],
    arch: &SamArch,
    precision: Precision,
    calibration: &[Planes],
) -> Result<Vec<u8>> {
    let sd = torch::read_state_dict(checkpoint)?;
    // Build on the CPU to check every key and shape and learn which tensors the model uses.
    let (model, used) = Sam::load(Loader::new(&sd, &Device::flex()), arch)?;
    let mut grams = Grams::new();
    if precision == Precision::Int8 && !calibration.is_empty() {
        let fp32 = MedSam::from_model(model, &Device::flex());
        let (embedded, g) =
            calibrate::record(|| calibration.iter().try_for_each(|p| fp32.embed(p).map(drop)));
        embedded?;
        grams = g;
    }
    let policy = |name: &str| arch.quant_group(name);
    let body = (arch.name(), arch.config_json());
    Ok(write(
        checkpoint, sd, &used, body, precision, &policy, &grams,
    ))
}

/// Converts an official UniverSeg checkpoint (`universeg_v1_nf64_ss64_STA.pt`) into a model file.
pub fn convert_universeg(checkpoint: &[u8], precision: Precision) -> Result<Vec<u8>> {
    let sd = torch::read_state_dict(checkpoint)?;
    let config = UniverSegConfig::v1();
    let (_, used) = UniverSeg::load(&sd, &config, &Device::flex())?;
    // One scale per 3×3 kernel. On the fixture, groups of 32 gave mask Dice 0.981 vs fp32 and
    // per-kernel 0.986; the error is spread evenly over layers (each alone costs ≤ 0.5 points).
    let policy = |_: &str| Some(9);
    let body = (universeg::ARCH, serde_json::to_value(&config).unwrap());
    Ok(write(
        checkpoint,
        sd,
        &used,
        body,
        precision,
        &policy,
        &Grams::new(),
    ))
}

/// Calibration slices taken from each scan.
pub const SLICES_PER_SCAN: usize = 4;

/// `count` axial slices of `vol` for calibration, evenly spaced over its middle 60 % (the ends
/// are mostly outside the body), windowed with the official preset as the app shows them to the
/// model.
pub fn calibration_slices(vol: &Volume, count: usize) -> Vec<Planes> {
    let [w, h, d] = vol.size;
    let u8s = window::apply(&vol.data, Window::official_for(&vol.data));
    let (lo, span) = (d as f64 * 0.2, d as f64 * 0.6);
    (0..count)
        .map(|i| (lo + span * (i as f64 + 0.5) / count as f64) as usize)
        .map(|z| {
            let n = w * h;
            Planes::gray(GrayImage::new(w, h, u8s[z * n..(z + 1) * n].to_vec()))
        })
        .collect()
}

fn write(
    checkpoint: &[u8],
    sd: StateDict,
    used: &BTreeSet<String>,
    (arch, config): (&str, serde_json::Value),
    precision: Precision,
    policy: model_file::QuantPolicy,
    grams: &Grams,
) -> Vec<u8> {
    let kept: StateDict = sd.into_iter().filter(|(k, _)| used.contains(k)).collect();
    model_file::write(
        arch,
        config,
        precision,
        policy,
        grams,
        &sha256_hex(checkpoint),
        &kept,
    )
}
