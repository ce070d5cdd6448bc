//! GenSeg: synthetic image–mask pairs for the ultra low-data regime.
//!
//! A few labelled pairs train a mask-to-image generator together with a segmenter; new masks
//! (augmented real ones) then give new images, and the pairs train the segmenter or extend a
//! UniverSeg support set. Data flows: [`pairs`] → [`train`] (nets in [`nets`], new masks from
//! [`augment`]) → a [`train::GenSegModel`] saved with [`store`] in our model-file format.

pub mod augment;
pub mod nets;
pub mod pairs;
pub mod store;
pub mod train;

pub use train::{GenSegModel, Losses, Pair, TrainConfig, Trainer};
