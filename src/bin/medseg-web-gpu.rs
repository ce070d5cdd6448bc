//! The browser app's WebGPU build: the same entry points as `medseg-web`, built with the
//! `webgpu` feature (static/boot.js loads it where the browser has a usable GPU).
include!("medseg-web.rs");
