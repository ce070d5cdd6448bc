//! medseg: medical image segmentation that runs entirely on the user's machine.
//!
//! Data flows one way: bytes → [`imaging`] → [`pipeline`] → [`models`] → [`pipeline`] → app/CLI.
//! [`weights`] reads official checkpoints and our quantized model files.
//!
//! Without the default `compute` feature only the file formats build (imaging, weights files,
//! archives): what the fuzz targets in `fuzz/` need, without burn.

#[cfg(all(target_family = "wasm", feature = "compute"))]
pub mod app;
pub mod archive;
pub mod error;
#[cfg(feature = "compute")]
pub mod genseg;
pub mod imaging;
pub mod metrics;
#[cfg(feature = "compute")]
pub mod models;
#[cfg(feature = "compute")]
pub mod pipeline;
pub mod random;
pub mod weights;

pub use error::{Error, Result};
