//! Handing checkpoint tensors to burn modules, and reading tensors back.

use super::StateDict;
use crate::error::{Error, Result};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeSet;

/// Hands named tensors from a state dict to model constructors, checking shapes as it goes.
pub struct Loader<'a> {
    src: &'a StateDict,
    device: Device,
    problems: Vec<String>,
    used: BTreeSet<String>,
}

impl<'a> Loader<'a> {
    pub fn new(src: &'a StateDict, device: &Device) -> Self {
        Loader {
            src,
            device: device.clone(),
            problems: vec![],
            used: BTreeSet::new(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The host values of `name`, which must have `shape`. On a problem, records it and returns
    /// zeros so that loading can go on and report every problem together.
    pub fn host(&mut self, name: &str, shape: &[usize]) -> Vec<f32> {
        self.used.insert(name.to_owned());
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
