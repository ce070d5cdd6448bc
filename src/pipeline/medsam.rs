//! Box- and point-prompted segmentation with LiteMedSAM or MedSAM ViT-B.
//!
//! An image is embedded once ([`MedSam::embed`]); every prompt then only runs the small decoder
//! ([`MedSam::predict`]). Pre/postprocessing follow the official scripts:
//! - LiteMedSAM (CVPR24_LiteMedSAM_infer.py): INTER_AREA resize of the longest side to 256 with
//!   `int(x·s + 0.5)` sizes, min–max to [0, 1], zero-pad bottom/right; box scaled by
//!   256/max(H, W) and truncated; logits cropped to the resized area, bilinear to H×W, then
//!   sigmoid > 0.5.
//! - MedSAM ViT-B (MedSAM_Inference.py): skimage order-3 resize to 1024×1024 (see
//!   [`resize_skimage_cubic`]), min–max; box scaled per axis;
//!   sigmoid of the 256×256 logits, bilinear to H×W, > 0.5.

use crate::error::{Error, Result};
use crate::imaging::decode::Planes;
use crate::imaging::resize::{bilinear, longest_side_size, resize_area};
use crate::imaging::spline::resize_skimage_cubic;
use crate::models::sam::{ImageKeys, Prompt, Sam, SamArch};
use crate::weights::{self, Loader, StateDict, model_file};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// A loaded MedSAM-family model ready to segment.
#[derive(Debug, Clone)]
pub struct MedSam {
    pub model: Sam,
    device: Device,
}

/// An image's embedding plus the geometry needed to map prompts and masks.
#[derive(Debug, Clone)]
pub struct ImageEmbedding {
    pub tensor: Tensor<4>,
    pub width: usize,
    pub height: usize,
    /// Size of the image inside the model input before padding (w, h).
    pub resized: (usize, usize),
    /// The decoder's image-only work, shared by the embedding's clones.
    decoder: Arc<DecoderSide>,
}

/// The mask decoder's image-only work ([`ImageKeys`]), computed at an embedding's second prompt
/// (or ahead of its first, [`MedSam::prepare_prompts`]) and kept for the rest: the first prompt
/// pays nothing extra, so uses with one prompt per image (3D propagation) never compute it, and
/// every prompt after the second is faster.
#[derive(Debug, Default)]
struct DecoderSide {
    prompts: AtomicUsize,
    keys: OnceLock<ImageKeys>,
}

impl ImageEmbedding {
    fn new(tensor: Tensor<4>, (width, height): (usize, usize), resized: (usize, usize)) -> Self {
        ImageEmbedding {
            tensor,
            width,
            height,
            resized,
            decoder: Arc::default(),
        }
    }
}

/// A prompt in original image pixels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPrompt {
    /// [x0, y0, x1, y1].
    pub bbox: Option<[f32; 4]>,
    /// (x, y, positive?) clicks.
    pub points: Vec<(f32, f32, bool)>,
}

impl UserPrompt {
    pub fn from_box(b: [f32; 4]) -> Self {
        UserPrompt {
            bbox: Some(b),
            points: vec![],
        }
    }
}

/// The result of one prompt.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// 0/1 mask at the image's size, row-major.
    pub mask: Vec<u8>,
    /// The decoder's (256×256) logits.
    pub low_res_logits: Vec<f32>,
    pub iou: f32,
}

impl MedSam {
    /// Loads one of our model files (any precision).
    pub fn from_model_file(bytes: &[u8], device: &Device) -> Result<Self> {
        let (header, _) = model_file::read_header(bytes)?;
        let arch = SamArch::from_name(&header.arch, header.config.clone())?;
        let (_, sd) = model_file::read(bytes, arch.name())?;
        Self::from_state_dict(&sd, &arch, device)
    }

    pub fn from_state_dict(sd: &StateDict, arch: &SamArch, device: &Device) -> Result<Self> {
        let (model, _) = Sam::load(Loader::new(sd, device), arch)?;
        Ok(MedSam::from_model(model, device))
    }

    /// Around a model already loaded on `device`.
    pub fn from_model(model: Sam, device: &Device) -> Self {
        MedSam {
            model,
            device: device.clone(),
        }
    }

    /// The architecture with seeded random weights (see `Loader::random`): for benchmarks only.
    pub fn random(arch: &SamArch, seed: u64, device: &Device) -> Result<Self> {
        let (model, _) = Sam::load(Loader::random(seed, device), arch)?;
        Ok(MedSam::from_model(model, device))
    }

    pub fn arch(&self) -> &SamArch {
        &self.model.arch
    }

    /// The model input (3, S, S) in [0, 1] and the resized size (w, h).
    pub fn preprocess(&self, img: &Planes) -> Result<(Vec<f32>, (usize, usize))> {
        let s = self.arch().input_size();
        let (w, h) = (img.width(), img.height());
        let (resized, (nw, nh)) = match self.arch() {
            SamArch::LiteMedsam(_) => {
                let (nw, nh) = longest_side_size(w, h, s);
                (
                    img.planes
                        .iter()
                        .map(|p| resize_area(p, nw, nh).data)
                        .collect::<Vec<_>>(),
                    (nw, nh),
                )
            }
            SamArch::MedsamVit(_) => {
                // The official input is the image repeated to three channels, resized as a whole.
                let grey = [&img.planes[0].data[..]; 3];
                let colour: Vec<&[u8]> = img.planes.iter().map(|p| &p.data[..]).collect();
                let planes = if img.planes.len() == 1 {
                    &grey[..]
                } else {
                    &colour[..]
                };
                (resize_skimage_cubic(planes, w, h, s, s), (s, s))
            }
        };
        // Grey images are three identical channels.
        let channels: Vec<&Vec<u8>> = (0..3).map(|c| &resized[c.min(resized.len() - 1)]).collect();
        // Min–max over all values; repeating a grey plane does not change them.
        let (min, max) = resized
            .iter()
            .flatten()
            .fold((u8::MAX, u8::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let (min, max) = (min as f32, max as f32);
        let range = (max - min).max(1e-8);
        let mut input = vec![0f32; 3 * s * s];
        for (c, plane) in channels.iter().enumerate() {
            for y in 0..nh {
                for x in 0..nw {
                    input[c * s * s + y * s + x] = (plane[y * nw + x] as f32 - min) / range;
                }
            }
        }
        Ok((input, (nw, nh)))
    }

    /// Runs the image encoder (the expensive step, once per image).
    pub fn embed(&self, img: &Planes) -> Result<ImageEmbedding> {
        let s = self.arch().input_size();
        let (input, resized) = self.preprocess(img)?;
        let x = Tensor::from_data(TensorData::new(input, [1, 3, s, s]), &self.device);
        Ok(ImageEmbedding::new(
            self.model.embed(x),
            (img.width(), img.height()),
            resized,
        ))
    }

    /// An embedding computed elsewhere (the app's encoder worker) as host values, placed on
    /// this model's device.
    pub fn embedding_from_host(
        &self,
        values: Vec<f32>,
        shape: [usize; 4],
        (width, height): (usize, usize),
        resized: (usize, usize),
    ) -> Result<ImageEmbedding> {
        if values.len() != shape.iter().product::<usize>() {
            return Err(Error::Input(format!(
                "an embedding of shape {shape:?} cannot hold {} values",
                values.len()
            )));
        }
        Ok(ImageEmbedding::new(
            Tensor::from_data(TensorData::new(values, shape), &self.device),
            (width, height),
            resized,
        ))
    }

    /// Maps a prompt from image pixels to model input pixels, validating it.
    pub fn model_prompt(&self, emb: &ImageEmbedding, p: &UserPrompt) -> Result<Prompt> {
        self.model_prompt_for_size(emb.width, emb.height, p)
    }

    /// As [`Self::model_prompt`] for an image of `width`×`height` not embedded yet.
    pub fn model_prompt_for_size(
        &self,
        width: usize,
        height: usize,
        p: &UserPrompt,
    ) -> Result<Prompt> {
        let (w, h) = (width as f32, height as f32);
        let s = self.arch().input_size() as f32;
        let lite = matches!(self.arch(), SamArch::LiteMedsam(_));
        let (kx, ky) = if lite {
            let k = s / w.max(h);
            (k, k)
        } else {
            (s / w, s / h)
        };
        let bbox = match p.bbox {
            None => None,
            Some(b) => {
                if b.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Prompt("box coordinates must be numbers".into()));
                }
                let [x0, y0, x1, y1] = [
                    b[0].clamp(0.0, w),
                    b[1].clamp(0.0, h),
                    b[2].clamp(0.0, w),
                    b[3].clamp(0.0, h),
                ];
                if b[2] <= 0.0 || b[3] <= 0.0 || b[0] >= w || b[1] >= h {
                    return Err(Error::Prompt(format!(
                        "the box {b:?} lies outside the {width}×{height} image"
                    )));
                }
                if x1 <= x0 || y1 <= y0 {
                    return Err(Error::Prompt(format!(
                        "the box {b:?} is empty: x1 must exceed x0 and y1 exceed y0"
                    )));
                }
                // LiteMedSAM truncates the scaled box to integers (resize_box_to_256).
                let m = |v: f32, k: f32| if lite { (v * k).trunc() } else { v * k };
                Some([m(x0, kx), m(y0, ky), m(x1, kx), m(y1, ky)])
            }
        };
        let mut points = Vec::with_capacity(p.points.len());
        for &(x, y, pos) in &p.points {
            if !(x.is_finite() && y.is_finite()) || x < 0.0 || y < 0.0 || x >= w || y >= h {
                return Err(Error::Prompt(format!(
                    "the point ({x}, {y}) lies outside the image"
                )));
            }
            points.push((x * kx, y * ky, pos));
        }
        Ok(Prompt { points, bbox })
    }

    /// Computes the decoder's image-only work for `emb` now, so that its first prompt decodes as
    /// fast as its later ones: for an app with idle time between an image's encode and its first
    /// box. The masks are the same either way.
    pub fn prepare_prompts(&self, emb: &ImageEmbedding) {
        emb.decoder
            .keys
            .get_or_init(|| self.model.image_keys(&emb.tensor));
    }

    /// Decodes one prompt and returns the mask at the image's size.
    pub async fn predict(&self, emb: &ImageEmbedding, prompt: &UserPrompt) -> Result<Prediction> {
        let mp = self.model_prompt(emb, prompt)?;
        self.predict_model_prompt(emb, &mp).await
    }

    /// Decodes a prompt already in model input pixels (3D propagation builds its boxes there).
    pub async fn predict_model_prompt(
        &self,
        emb: &ImageEmbedding,
        mp: &Prompt,
    ) -> Result<Prediction> {
        let side = &emb.decoder;
        // From the second prompt on, computed if not prepared; before it, used if prepared.
        let keys = match side.prompts.fetch_add(1, Ordering::Relaxed) {
            0 => side.keys.get(),
            _ => Some(side.keys.get_or_init(|| self.model.image_keys(&emb.tensor))),
        };
        let out = self.model.decode(&emb.tensor, mp, false, keys)?;
        let [_, _, lh, lw] = out.logits.dims();
        let logits = weights::to_host_async(out.logits).await?;
        let iou = weights::to_host_async(out.iou)
            .await?
            .first()
            .copied()
            .unwrap_or(0.0);
        let mask = self.postprocess(&logits, lw, lh, emb);
        Ok(Prediction {
            mask,
            low_res_logits: logits,
            iou,
        })
    }

    /// Low-res logits (lw×lh) → 0/1 mask at the image's size.
    pub fn postprocess(
        &self,
        logits: &[f32],
        lw: usize,
        lh: usize,
        emb: &ImageEmbedding,
    ) -> Vec<u8> {
        let (w, h) = (emb.width, emb.height);
        match self.arch() {
            SamArch::LiteMedsam(_) => {
                let (nw, nh) = emb.resized;
                let crop: Vec<f32> = (0..nh)
                    .flat_map(|y| logits[y * lw..y * lw + nw].iter().copied())
                    .collect();
                bilinear(&crop, nw, nh, w, h)
                    .iter()
                    .map(|&v| above_half(v) as u8)
                    .collect()
            }
            SamArch::MedsamVit(_) => {
                let probs: Vec<f32> = logits.iter().map(|&v| sigmoid(v)).collect();
                bilinear(&probs, lw, lh, w, h)
                    .iter()
                    .map(|&v| (v > 0.5) as u8)
                    .collect()
            }
        }
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// sigmoid(v) > 0.5, as the official pipeline thresholds masks, with an exp only for v within
/// 1e-5 above 0 (sigmoid is at most 0.5 for v ≤ 0 and above it past that in f32): a scalar exp
/// per pixel was ≈ 3 % of the page's decode.
fn above_half(v: f32) -> bool {
    v > 1e-5 || (v > 0.0 && sigmoid(v) > 0.5)
}

#[cfg(test)]
mod tests {
    use super::{above_half, sigmoid};

    /// The shortcut thresholds as sigmoid does, on every float from −1e-4 to 1e-4 around 0 and on
    /// logits across the range.
    #[test]
    fn above_half_is_sigmoid_above_half() {
        let near = (0..=f32::to_bits(1e-4)).step_by(7).map(f32::from_bits);
        let wide = (-20_000..=20_000).map(|i| i as f32 * 1.37e-3);
        for v in near.clone().chain(near.map(|v| -v)).chain(wide) {
            assert_eq!(above_half(v), sigmoid(v) > 0.5, "logit {v:e}");
        }
    }
}
