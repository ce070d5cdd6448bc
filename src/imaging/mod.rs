//! Pixels: decoding files into grey images, intensity windowing, resampling, whole-mask corrections.

pub mod decode;
pub mod dicom;
pub mod dicom_seg;
pub mod refine;
pub mod resize;
pub mod spline;
pub mod volume;
pub mod window;

/// A single-channel 8-bit image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl GrayImage {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Self {
        assert_eq!(
            data.len(),
            width * height,
            "pixel count must match the size"
        );
        GrayImage {
            width,
            height,
            data,
        }
    }
}

/// A single-channel image of raw intensities (HU for CT, scanner units for MR), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}
