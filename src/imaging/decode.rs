//! Decoding user files into grey 8-bit planes, with limits that keep a tab alive.

use super::GrayImage;
use crate::error::{Error, Result};
use image::{ImageDecoder, ImageReader};
use std::io::Cursor;

/// Largest side accepted; LiteMedSAM works at 256 px and MedSAM at 1024 px, so larger images
/// gain nothing and would cost hundreds of MB in a browser tab.
pub const MAX_SIDE: usize = 16384;
/// Largest pixel count accepted (64 MP).
pub const MAX_PIXELS: usize = 64 << 20;

/// A decoded image: one plane for grey images, three (R, G, B) for colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub planes: Vec<GrayImage>,
}

impl Planes {
    pub fn gray(img: GrayImage) -> Self {
        Planes { planes: vec![img] }
    }
    pub fn width(&self) -> usize {
        self.planes[0].width
    }
    pub fn height(&self) -> usize {
        self.planes[0].height
    }
    /// A grey view (the first plane for grey images, luma for colour ones) for display.
    pub fn luma(&self) -> GrayImage {
        if self.planes.len() == 1 {
            return self.planes[0].clone();
        }
        let (r, g, b) = (
            &self.planes[0].data,
            &self.planes[1].data,
            &self.planes[2].data,
        );
        let data = (0..r.len())
            .map(|i| {
                ((r[i] as u32 * 299 + g[i] as u32 * 587 + b[i] as u32 * 114 + 500) / 1000) as u8
            })
            .collect();
        GrayImage::new(self.width(), self.height(), data)
    }
}

/// True when `name` ends in an extension of a 2D format we decode (PNG, JPEG).
pub fn has_image_extension(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg"].iter().any(|e| l.ends_with(e))
}

pub fn check_size(w: usize, h: usize) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::Decode("the image is empty (0 pixels)".into()));
    }
    if w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS {
        return Err(Error::Input(format!(
            "the image is {w}×{h} pixels; the largest supported is {MAX_SIDE}×{MAX_SIDE} and {} megapixels",
            MAX_PIXELS >> 20
        )));
    }
    Ok(())
}

/// Decodes PNG or JPEG bytes. Grey (8/16-bit) images give one plane, colour ones three; 16-bit
/// values are scaled to 8 bits; alpha is dropped.
pub fn decode_image(bytes: &[u8]) -> Result<Planes> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::Decode("not a PNG or JPEG file".into()));
    }
    let decoder = reader
        .into_decoder()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    check_size(w as usize, h as usize)?;
    let color = decoder.color_type();
    let img = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| Error::Decode(format!("the file is damaged or truncated ({e})")))?;
    let (w, h) = (w as usize, h as usize);
    if color.has_color() {
        let rgb = img.to_rgb8().into_raw();
        let planes = (0..3)
            .map(|c| GrayImage::new(w, h, rgb.iter().skip(c).step_by(3).copied().collect()))
            .collect();
        Ok(Planes { planes })
    } else {
        Ok(Planes::gray(GrayImage::new(
            w,
            h,
            img.to_luma8().into_raw(),
        )))
    }
}

/// Encodes a 0/1 mask as a 0/255 grey PNG.
pub fn encode_mask_png(mask: &[u8], w: usize, h: usize) -> Result<Vec<u8>> {
    let data: Vec<u8> = mask.iter().map(|&v| if v > 0 { 255 } else { 0 }).collect();
    encode_gray_png(&GrayImage::new(w, h, data))
}

pub fn encode_gray_png(img: &GrayImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let buf = image::GrayImage::from_raw(img.width as u32, img.height as u32, img.data.clone())
        .ok_or_else(|| Error::Input("mask size mismatch".into()))?;
    buf.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| Error::Io(format!("cannot encode PNG: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_grey_png() {
        let img = GrayImage::new(3, 2, vec![0, 10, 20, 30, 40, 255]);
        let png = encode_gray_png(&img).unwrap();
        assert_eq!(decode_image(&png).unwrap(), Planes::gray(img));
    }

    #[test]
    fn rejects_text_truncation_and_giants() {
        assert!(matches!(
            decode_image(b"hello, not an image"),
            Err(Error::Decode(_))
        ));
        let png = encode_gray_png(&GrayImage::new(64, 64, vec![7; 4096])).unwrap();
        assert!(matches!(
            decode_image(&png[..png.len() / 2]),
            Err(Error::Decode(_))
        ));
        assert!(matches!(check_size(20000, 20000), Err(Error::Input(_))));
        assert!(matches!(check_size(0, 5), Err(Error::Decode(_))));
    }
}
