//! Weights: reading official checkpoints, our own model file, and handing tensors to models.
//!
//! Every model builds itself through a [`Loader`], which records each tensor it asks for with its
//! expected shape. The same walk therefore checks a checkpoint (every missing or mis-shaped key is
//! reported at once) and decides what a converted model file must contain.

#[cfg(feature = "compute")]
pub mod convert;
pub mod gptq;
#[cfg(feature = "compute")]
mod loader;
pub mod model_file;
pub mod torch;

#[cfg(feature = "compute")]
pub use loader::*;
use std::collections::BTreeMap;

/// A tensor on the host, f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub type StateDict = BTreeMap<String, HostTensor>;
