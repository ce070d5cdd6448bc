//! medseg: medical image segmentation that runs entirely on the user's machine.
//!
//! Data flows one way: bytes → [`imaging`] → [`pipeline`] → [`models`] → [`pipeline`] → app/CLI.
//! [`weights`] reads official checkpoints and our quantized model files.

#[cfg(target_family = "wasm")]
pub mod app;
pub mod archive;
pub mod error;
pub mod genseg;
pub mod imaging;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod random;
pub mod weights;

pub use error::{Error, Result};
