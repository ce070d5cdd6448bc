//! Segment Anything, as used by MedSAM (ViT-B encoder) and LiteMedSAM (TinyViT encoder).
//!
//! The image encoder runs once per image; the prompt encoder and mask decoder run per prompt.

pub mod mask_decoder;
pub mod neck;
pub mod prompt_encoder;
pub mod tiny_vit;
pub mod transformer;
pub mod vit;

use crate::error::{Error, Result};
use crate::weights::Loader;
use burn::tensor::Tensor;
pub use mask_decoder::Decoded;
use mask_decoder::MaskDecoder;
pub use prompt_encoder::{Prompt, PromptEncoder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tiny_vit::{TinyVit, TinyVitConfig};
pub use transformer::ImageKeys;
use vit::{Vit, VitConfig};

/// Which MedSAM-family model, with its encoder configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "arch", content = "config", rename_all = "snake_case")]
pub enum SamArch {
    LiteMedsam(TinyVitConfig),
    MedsamVit(VitConfig),
}

impl SamArch {
    pub fn name(&self) -> &'static str {
        match self {
            SamArch::LiteMedsam(_) => "litemedsam",
            SamArch::MedsamVit(_) => "medsam_vit",
        }
    }
    pub fn display(&self) -> &'static str {
        match self {
            SamArch::LiteMedsam(_) => "LiteMedSAM",
            SamArch::MedsamVit(_) => "MedSAM ViT-B",
        }
    }
    pub fn from_name(name: &str, config: serde_json::Value) -> Result<Self> {
        let bad =
            |e: serde_json::Error| Error::Weights(format!("model file config is invalid: {e}"));
        match name {
            "litemedsam" => Ok(SamArch::LiteMedsam(
                serde_json::from_value(config).map_err(bad)?,
            )),
            "medsam_vit" => Ok(SamArch::MedsamVit(
                serde_json::from_value(config).map_err(bad)?,
            )),
            other => Err(Error::Weights(format!(
                "model file holds {other}, not a MedSAM model"
            ))),
        }
    }
    pub fn config_json(&self) -> serde_json::Value {
        match self {
            SamArch::LiteMedsam(c) => serde_json::to_value(c).unwrap(),
            SamArch::MedsamVit(c) => serde_json::to_value(c).unwrap(),
        }
    }
    /// Int8 group size per tensor (None keeps f32). Measured on the LiteMedSAM fixtures:
    /// per-channel int8 everywhere lost up to 1.5 Dice points on small lesions; the full-
    /// resolution first stage and the first downsampling (256² and 128² maps, where errors
    /// spread most) stay f32, the rest of the encoder uses groups of 32 and the decoder 128.
    pub fn quant_group(&self, name: &str) -> Option<usize> {
        let f32_prefixes: &[&str] = match self {
            SamArch::LiteMedsam(_) => &[
                "image_encoder.layers.0.",
                "image_encoder.layers.1.downsample.",
            ],
            SamArch::MedsamVit(_) => &["image_encoder.patch_embed."],
        };
        if f32_prefixes.iter().any(|p| name.starts_with(p)) {
            None
        } else if name.starts_with("image_encoder.") {
            Some(32)
        } else {
            Some(128)
        }
    }

    /// Side of the square model input in pixels.
    pub fn input_size(&self) -> usize {
        match self {
            SamArch::LiteMedsam(c) => c.img_size,
            SamArch::MedsamVit(c) => c.img_size,
        }
    }
    /// Side of the embedding grid.
    pub fn grid(&self) -> usize {
        match self {
            SamArch::LiteMedsam(c) => c.img_size / 4,
            SamArch::MedsamVit(c) => c.grid(),
        }
    }
}

#[derive(Debug, Clone)]
enum Encoder {
    Tiny(TinyVit),
    Vit(Vit),
}

#[derive(Debug, Clone)]
pub struct Sam {
    pub arch: SamArch,
    encoder: Encoder,
    pub prompt_encoder: PromptEncoder,
    decoder: MaskDecoder,
    /// (1, g·g, C) positional encoding of the embedding grid, as tokens.
    dense_pe: Tensor<3>,
    /// (C) the "no mask" dense embedding.
    no_mask: Tensor<1>,
}

impl Sam {
    /// Builds the model from a state dict (official checkpoint or model file), checking every
    /// tensor (or a random one, see `Loader::random`); also returns the names of the tensors used.
    pub fn load(mut l: Loader, arch: &SamArch) -> Result<(Self, BTreeSet<String>)> {
        let encoder = match arch {
            SamArch::LiteMedsam(c) => Encoder::Tiny(TinyVit::load(&mut l, "image_encoder", c)),
            SamArch::MedsamVit(c) => Encoder::Vit(Vit::load(&mut l, "image_encoder", c)),
        };
        let (dim, g) = (256, arch.grid());
        let prompt_encoder =
            PromptEncoder::load(&mut l, "prompt_encoder", dim, arch.input_size(), g);
        let decoder = MaskDecoder::load(&mut l, "mask_decoder", dim);
        let pe = prompt_encoder.dense_pe();
        let dense_pe = l.upload(pe.data, [1, g * g, dim]);
        let no_mask = l.upload(prompt_encoder.no_mask.clone(), [dim]);
        let used = l.finish(arch.display())?;
        Ok((
            Sam {
                arch: arch.clone(),
                encoder,
                prompt_encoder,
                decoder,
                dense_pe,
                no_mask,
            },
            used,
        ))
    }

    /// (1, 3, S, S) preprocessed image → (1, 256, g, g) embedding.
    pub fn embed(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.encoder {
            Encoder::Tiny(e) => e.forward(x),
            Encoder::Vit(e) => e.forward(x),
        }
    }

    /// The mask decoder's image-only work on an embedding, which [`Self::decode`] can reuse for
    /// every prompt on that image.
    pub fn image_keys(&self, embedding: &Tensor<4>) -> ImageKeys {
        self.decoder.image_keys(
            embedding.clone(),
            self.dense_pe.clone(),
            self.no_mask.clone(),
        )
    }

    /// Decodes one prompt against an embedding; coordinates in model input pixels. `keys`:
    /// [`Self::image_keys`] of that embedding, when kept.
    pub fn decode(
        &self,
        embedding: &Tensor<4>,
        prompt: &Prompt,
        multimask: bool,
        keys: Option<&ImageKeys>,
    ) -> Result<Decoded> {
        if prompt.points.is_empty() && prompt.bbox.is_none() {
            return Err(Error::Prompt("draw a box or click a point first".into()));
        }
        let sparse = self.prompt_encoder.sparse(prompt);
        let [n, c] = [sparse.shape[0], sparse.shape[1]];
        let sparse: Tensor<3> = Tensor::from_data(
            burn::tensor::TensorData::new(sparse.data, [1, n, c]),
            &embedding.device(),
        );
        Ok(self.decoder.forward(
            embedding.clone(),
            self.dense_pe.clone(),
            sparse,
            self.no_mask.clone(),
            multimask,
            keys,
        ))
    }
}
