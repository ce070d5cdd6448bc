//! Handing checkpoint tensors to burn modules, and reading tensors back.

use super::StateDict;
use crate::error::{Error, Result};
use crate::random::SplitMix;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::{BTreeMap, BTreeSet};

static NO_TENSORS: StateDict = BTreeMap::new();

/// Hands named tensors from a state dict to model constructors, checking shapes as it goes.
pub struct Loader<'a> {
    src: &'a StateDict,
    device: Device,
    problems: Vec<String>,
    used: BTreeSet<String>,
    /// Set by `random`: every tensor asked for is made up instead of read.
    fill: Option<SplitMix>,
}

impl<'a> Loader<'a> {
    pub fn new(src: &'a StateDict, device: &Device) -> Self {
        Loader {
            src,
            device: device.clone(),
            problems: vec![],
            used: BTreeSet::new(),
            fill: None,
        }
    }

    /// A loader that makes up every tensor (seeded, PyTorch-like scale: uniform ±1/√fan-in, norm
    /// scales 1) instead of reading a checkpoint: a model of the real size for timing it, when
    /// the weights are not at hand (MedSAM ViT-B). Never for results.
    pub fn random(seed: u64, device: &Device) -> Self {
        Loader {
            fill: Some(SplitMix(seed)),
            ..Self::new(&NO_TENSORS, device)
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The host values of `name`, which must have `shape`. On a problem, records it and returns
    /// zeros so that loading can go on and report every problem together.
    pub fn host(&mut self, name: &str, shape: &[usize]) -> Vec<f32> {
        self.used.insert(name.to_owned());
        if let Some(rng) = &mut self.fill {
            let n: usize = shape.iter().product();
            if shape.len() == 1 && name.contains("norm") && name.ends_with(".weight") {
                return vec![1.0; n];
            }
            let fan_in: usize = shape.iter().skip(1).product();
            let a = if shape.len() > 1 {
                1.0 / (fan_in.max(1) as f32).sqrt()
            } else {
                0.02
            };
            return (0..n).map(|_| rng.uniform(-a, a)).collect();
        }
        match self.src.get(name) {
            None => {
                self.problems.push(format!("missing {name} {shape:?}"));
                vec![0.0; shape.iter().product()]
            }
            Some(t) if t.shape != shape => {
                self.problems
                    .push(format!("{name}: shape {:?}, expected {shape:?}", t.shape));
                vec![0.0; shape.iter().product()]
            }
            Some(t) => t.data.clone(),
        }
    }

    pub fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Tensor<D> {
        let data = self.host(name, &shape);
        self.upload(data, shape)
    }

    pub fn upload<const D: usize>(&self, data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(data, shape), &self.device)
    }

    /// Ends loading: an error listing every problem, or the names of all tensors used.
    pub fn finish(self, model: &str) -> Result<BTreeSet<String>> {
        if self.problems.is_empty() {
            return Ok(self.used);
        }
        let n = self.problems.len();
        let missing = self
            .problems
            .iter()
            .filter(|p| p.starts_with("missing"))
            .count();
        let head = if missing == self.used.len() {
            format!(
                "this file is not a {model} checkpoint: none of its {n} expected tensors are present"
            )
        } else {
            format!(
                "this file does not match {model}: {n} of {} tensors are missing or mis-shaped",
                self.used.len()
            )
        };
        let list: Vec<&str> = self.problems.iter().take(8).map(String::as_str).collect();
        let more = if n > 8 {
            format!("; and {} more", n - 8)
        } else {
            String::new()
        };
        Err(Error::Weights(format!(
            "{head} ({}{more})",
            list.join("; ")
        )))
    }
}

/// Reads a tensor back to the host as f32 (native only: the browser must read asynchronously).
#[cfg(not(target_family = "wasm"))]
pub fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("{e:?}")))
}

/// Reads a tensor back to the host as f32, without blocking (works in the browser).
pub async fn to_host_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_loader_makes_up_seeded_tensors_of_the_asked_shape() {
        let dev = Device::flex();
        let take = |seed| {
            let mut l = Loader::random(seed, &dev);
            let w = l.host("blocks.0.mlp.lin1.weight", &[8, 16]);
            let n = l.host("blocks.0.norm1.weight", &[16]);
            let b = l.host("blocks.0.mlp.lin1.bias", &[8]);
            assert_eq!(l.finish("test").unwrap().len(), 3);
            (w, n, b)
        };
        let (w, n, b) = take(7);
        assert_eq!((w.len(), n.len(), b.len()), (128, 16, 8));
        // ±1/√fan-in for matrices, 1 for norm scales, small for vectors.
        assert!(w.iter().all(|v| v.abs() <= 0.25) && w.iter().any(|v| v.abs() > 0.1));
        assert!(n.iter().all(|&v| v == 1.0));
        assert!(b.iter().all(|v| v.abs() <= 0.02));
        assert_eq!(take(7).0, w);
        assert_ne!(take(8).0, w);
    }
}
