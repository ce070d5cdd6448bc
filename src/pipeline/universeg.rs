//! In-context segmentation with UniverSeg v1: a support set of image–mask pairs defines the task.
//!
//! Preprocessing as the official example loaders: grey 8-bit image resized to 128×128 with
//! Pillow's bilinear filter, divided by 255; labels resized with nearest-neighbour and kept 0/1.
//! Output: logits → sigmoid, averaged over ensemble members, bilinear back to the image size,
//! > 0.5. Ensembling predicts from several random subsets of the support set, as the paper does.

use crate::error::{Error, Result};
use crate::imaging::GrayImage;
use crate::imaging::decode::has_image_extension;
use crate::imaging::resize::{bilinear, resize_nearest, resize_pil_bilinear};
use crate::models::universeg::{UniverSegConfig, UniverSegNet};
use crate::random::SplitMix;
use crate::weights::{self, Loader, StateDict, model_file};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeSet;

/// The architecture name in model files.
pub const ARCH: &str = "universeg_v1";
/// Support items per device batch: bounds the transient memory of one block to roughly
/// `CHUNK × 64 channels × 128² × 4 bytes × 3` (≈ 200 MB at 16).
pub const DEFAULT_CHUNK: usize = 16;

/// One support example at model resolution: image in [0, 1] and label in {0, 1}.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportItem {
    pub image: Vec<f32>,
    pub label: Vec<f32>,
}

/// How many predictions to average and from how many support items each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ensemble {
    /// Number of predictions averaged (1 = no ensembling: one prediction from the whole set).
    pub members: usize,
    /// Support items per prediction when `members` > 1 (clamped to the set's size).
    pub subset: usize,
    pub seed: u64,
}

impl Default for Ensemble {
    /// One prediction from the whole support set.
    fn default() -> Self {
        Ensemble {
            members: 1,
            subset: usize::MAX,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct UniverSeg {
    net: UniverSegNet,
    device: Device,
    /// Support items per device batch.
    pub chunk: usize,
}

impl UniverSeg {
    /// Builds the model from a state dict (official checkpoint or model file), checking every
    /// tensor; also returns the names of the tensors used.
    pub fn load(
        sd: &StateDict,
        config: &UniverSegConfig,
        device: &Device,
    ) -> Result<(Self, BTreeSet<String>)> {
        let mut l = Loader::new(sd, device);
        let net = UniverSegNet::load(&mut l, config);
        let used = l.finish("UniverSeg")?;
        let model = UniverSeg {
            net,
            device: device.clone(),
            chunk: DEFAULT_CHUNK,
        };
        Ok((model, used))
    }

    /// Loads one of our model files (any precision).
    pub fn from_model_file(bytes: &[u8], device: &Device) -> Result<Self> {
        let (header, sd) = model_file::read(bytes, ARCH)?;
        let config: UniverSegConfig = serde_json::from_value(header.config)
            .map_err(|e| Error::Weights(format!("model file config is invalid: {e}")))?;
        Ok(Self::load(&sd, &config, device)?.0)
    }

    /// Side of the square model input.
    pub fn size(&self) -> usize {
        self.net.config.size
    }

    /// A grey image at model resolution, in [0, 1].
    pub fn prepare_image(&self, img: &GrayImage) -> Vec<f32> {
        prepare_image(img, self.size())
    }

    /// An image and its mask (0 = background, one other value = foreground) as a support item.
    pub fn prepare_pair(&self, img: &GrayImage, mask: &GrayImage) -> Result<SupportItem> {
        prepare_pair(img, mask, self.size())
    }

    /// Logits (size²) for one prepared target given the whole support set.
    pub async fn logits(&self, target: &[f32], support: &[&SupportItem]) -> Result<Vec<f32>> {
        self.logits_paced(target, support, &mut async |_| {}).await
    }

    /// As [`Self::logits`], awaiting `pace(fraction done)` between steps (the page yields there).
    pub async fn logits_paced(
        &self,
        target: &[f32],
        support: &[&SupportItem],
        pace: &mut impl AsyncFnMut(f32),
    ) -> Result<Vec<f32>> {
        let s = self.size();
        let n = s * s;
        if support.is_empty() {
            return Err(Error::Input(
                "the support set is empty: add at least one image with its mask".into(),
            ));
        }
        if target.len() != n {
            return Err(Error::Input(format!(
                "the target has {} pixels, expected {s}×{s}",
                target.len()
            )));
        }
        for (i, item) in support.iter().enumerate() {
            if item.image.len() != n || item.label.len() != n {
                return Err(Error::Input(format!(
                    "support item {} is not {s}×{s} (image {} and label {} pixels)",
                    i + 1,
                    item.image.len(),
                    item.label.len()
                )));
            }
        }
        let t = Tensor::from_data(TensorData::new(target.to_vec(), [1, 1, s, s]), &self.device);
        let chunks = support
            .chunks(self.chunk.max(1))
            .map(|c| {
                let mut host = Vec::with_capacity(c.len() * 2 * n);
                for item in c {
                    host.extend_from_slice(&item.image);
                    host.extend_from_slice(&item.label);
                }
                Tensor::from_data(TensorData::new(host, [c.len(), 2, s, s]), &self.device)
            })
            .collect::<Vec<_>>();
        let total = self.net.steps(chunks.len()).max(1) as f32;
        let mut done = 0usize;
        let mut step = async || {
            done += 1;
            pace(done as f32 / total).await
        };
        let logits = self.net.forward(t, chunks, &mut step).await;
        weights::to_host_async(logits).await
    }

    /// Foreground probabilities (size²): the mean of the ensemble members' sigmoids.
    pub async fn probabilities(
        &self,
        target: &[f32],
        support: &[SupportItem],
        ens: &Ensemble,
    ) -> Result<Vec<f32>> {
        self.probabilities_paced(target, support, ens, &mut async |_| {})
            .await
    }

    /// As [`Self::probabilities`], awaiting `pace(fraction done)` between steps.
    pub async fn probabilities_paced(
        &self,
        target: &[f32],
        support: &[SupportItem],
        ens: &Ensemble,
        pace: &mut impl AsyncFnMut(f32),
    ) -> Result<Vec<f32>> {
        // One member means no ensembling: the whole set, whatever the subset size says.
        let subset = if ens.members <= 1 {
            support.len()
        } else {
            ens.subset.clamp(1, support.len().max(1))
        };
        let members = if subset >= support.len() {
            1
        } else {
            ens.members
        };
        let mut rng = SplitMix(ens.seed);
        let mut mean = vec![0f32; target.len()];
        for member in 0..members {
            let picked: Vec<&SupportItem> = if subset >= support.len() {
                support.iter().collect()
            } else {
                rng.sample(support.len(), subset)
                    .into_iter()
                    .map(|i| &support[i])
                    .collect()
            };
            let mut member_pace = async |f: f32| pace((member as f32 + f) / members as f32).await;
            let logits = self.logits_paced(target, &picked, &mut member_pace).await?;
            for (m, l) in mean.iter_mut().zip(logits) {
                *m += sigmoid(l) / members as f32;
            }
        }
        Ok(mean)
    }

    /// 0/1 mask at the image's size; `pace(fraction done)` is awaited between steps.
    pub async fn segment(
        &self,
        img: &GrayImage,
        support: &[SupportItem],
        ens: &Ensemble,
        pace: &mut impl AsyncFnMut(f32),
    ) -> Result<Vec<u8>> {
        let probs = self
            .probabilities_paced(&self.prepare_image(img), support, ens, pace)
            .await?;
        Ok(self.postprocess(&probs, img.width, img.height))
    }

    /// Probabilities at model resolution → 0/1 mask at w×h (bilinear, half-pixel centres).
    pub fn postprocess(&self, probs: &[f32], w: usize, h: usize) -> Vec<u8> {
        let s = self.size();
        bilinear(probs, s, s, w, h)
            .iter()
            .map(|&v| (v > 0.5) as u8)
            .collect()
    }
}

/// Side of UniverSeg v1's input: support sets are kept at this size, with or without weights.
pub const SIZE: usize = 128;

/// A grey image at `size`², in [0, 1].
pub fn prepare_image(img: &GrayImage, size: usize) -> Vec<f32> {
    resize_pil_bilinear(img, size, size)
        .data
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect()
}

/// An image and its mask (0 = background, one other value = foreground) as a support item at
/// `size`² (no weights needed: a support set can be built before UniverSeg is installed).
pub fn prepare_pair(img: &GrayImage, mask: &GrayImage, size: usize) -> Result<SupportItem> {
    if (img.width, img.height) != (mask.width, mask.height) {
        return Err(Error::Input(format!(
            "the mask is {}×{} but its image is {}×{}: a support pair needs both at the same size",
            mask.width, mask.height, img.width, img.height
        )));
    }
    check_binary(mask)?;
    let label = resize_nearest(mask, size, size)
        .data
        .iter()
        .map(|&v| (v > 0) as u8 as f32)
        .collect();
    Ok(SupportItem {
        image: prepare_image(img, size),
        label,
    })
}

/// Pairs support files by name: `NAME_image.EXT` with `NAME_mask.EXT` (any NAME, PNG/JPEG,
/// case-insensitive). Returns (NAME, image file, mask file) sorted by NAME; a file
/// without its partner is an error that names it. Other files are ignored.
pub fn pair_files(names: &[String]) -> Result<Vec<(String, String, String)>> {
    use std::collections::BTreeMap;
    let mut pairs: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for name in names {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let Some((stem, _)) = base.rsplit_once('.').filter(|_| has_image_extension(base)) else {
            continue;
        };
        let lower = stem.to_ascii_lowercase();
        let (key, is_mask) = if let Some(k) = lower.strip_suffix("_mask") {
            (&stem[..k.len()], true)
        } else if let Some(k) = lower.strip_suffix("_image") {
            (&stem[..k.len()], false)
        } else {
            continue;
        };
        let slot = pairs.entry(key.to_owned()).or_default();
        let side = if is_mask { &mut slot.1 } else { &mut slot.0 };
        if let Some(prev) = side.replace(name.clone()) {
            return Err(Error::Input(format!(
                "two files claim the same role: {prev} and {name}"
            )));
        }
    }
    if pairs.is_empty() {
        return Err(Error::Input(
            "no support pairs found: name them NAME_image.png and NAME_mask.png".into(),
        ));
    }
    pairs
        .into_iter()
        .map(|(key, pair)| match pair {
            (Some(i), Some(m)) => Ok((key, i, m)),
            (Some(i), None) => Err(Error::Input(format!("{i} has no mask ({key}_mask.png)"))),
            (None, Some(m)) => Err(Error::Input(format!("{m} has no image ({key}_image.png)"))),
            (None, None) => unreachable!("an entry exists only once a file claimed it"),
        })
        .collect()
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Masks must have one foreground value: 0/1, 0/255, or any single non-zero grey level.
pub(crate) fn check_binary(mask: &GrayImage) -> Result<()> {
    let mut seen = [false; 256];
    mask.data.iter().for_each(|&v| seen[v as usize] = true);
    let levels: Vec<usize> = (1..256).filter(|&v| seen[v]).collect();
    if levels.len() > 1 {
        let shown: Vec<String> = levels.iter().take(5).map(|v| v.to_string()).collect();
        return Err(Error::Input(format!(
            "the mask is not binary: it has {} foreground levels ({}{}); use 0 for background and one value for the object",
            levels.len(),
            shown.join(", "),
            if levels.len() > 5 { ", …" } else { "" }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_masks_accept_one_foreground_level() {
        assert!(check_binary(&GrayImage::new(3, 1, vec![0, 255, 255])).is_ok());
        assert!(check_binary(&GrayImage::new(2, 1, vec![0, 0])).is_ok());
        let e = check_binary(&GrayImage::new(3, 1, vec![0, 1, 2])).unwrap_err();
        assert!(e.to_string().contains("not binary"), "{e}");
    }

    #[test]
    fn support_files_pair_by_prefix() {
        let names: Vec<String> = [
            "b_mask.png",
            "dir/a_image.PNG",
            "a_mask.png",
            "b_image.jpg",
            "notes.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = pair_files(&names).unwrap();
        assert_eq!(
            p[0],
            ("a".into(), "dir/a_image.PNG".into(), "a_mask.png".into())
        );
        assert_eq!(p[1].0, "b");
        let e = pair_files(&["c_image.png".to_string()]).unwrap_err();
        assert!(e.to_string().contains("c_image.png has no mask"), "{e}");
        assert!(pair_files(&["x.png".to_string()]).is_err());
    }
}
