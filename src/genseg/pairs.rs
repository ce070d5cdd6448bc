//! Labelled pairs into training form, with the checks a user needs to hear about.

use super::train::Pair;
use crate::error::{Error, Result};
use crate::imaging::GrayImage;
use crate::imaging::resize::{resize_nearest, resize_pil_bilinear};
use crate::pipeline::universeg::check_binary;
use crate::random::SplitMix;

/// Fewest pairs a run accepts: one to train on and one held out for the architecture step.
pub const MIN_PAIRS: usize = 2;

/// One named pair at training size: image min-max normalised to [0, 1], mask 0/1.
pub fn prepare(name: &str, image: &GrayImage, mask: &GrayImage, size: usize) -> Result<Pair> {
    if (image.width, image.height) != (mask.width, mask.height) {
        return Err(Error::Input(format!(
            "{name}: the image is {}×{} but its mask is {}×{}; each pair needs both at the same size",
            image.width, image.height, mask.width, mask.height
        )));
    }
    let m = prepare_mask(name, mask, size)?;
    let image = prepare_image(image, size).map_err(|e| Error::Input(format!("{name}: {e}")))?;
    Ok(Pair { image, mask: m })
}

/// A mask at training size, 0/1 (nearest neighbour); refuses non-binary and empty masks.
pub fn prepare_mask(name: &str, mask: &GrayImage, size: usize) -> Result<Vec<f32>> {
    check_binary(mask).map_err(|e| Error::Input(format!("{name}: {e}")))?;
    let m: Vec<f32> = resize_nearest(mask, size, size)
        .data
        .iter()
        .map(|&v| f32::from(v > 0))
        .collect();
    if !m.iter().any(|&v| v > 0.0) {
        return Err(Error::Input(format!(
            "{name}: the mask is empty{}; GenSeg learns images from masks, so every pair needs an object",
            if mask.data.iter().any(|&v| v > 0) {
                " at training size (the object is too small)"
            } else {
                ""
            }
        )));
    }
    Ok(m)
}

/// An image at training size, min-max normalised to [0, 1] (Pillow bilinear resize, as the
/// UniverSeg inputs, so one image serves both models).
pub fn prepare_image(image: &GrayImage, size: usize) -> Result<Vec<f32>> {
    let img = resize_pil_bilinear(image, size, size);
    let (lo, hi) = img
        .data
        .iter()
        .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo == hi {
        return Err(Error::Input("the image is one flat grey level".into()));
    }
    let scale = 1.0 / f32::from(hi - lo);
    Ok(img
        .data
        .iter()
        .map(|&v| f32::from(v - lo) * scale)
        .collect())
}

impl Pair {
    /// Side of the square pair.
    pub fn side(&self) -> usize {
        (self.image.len() as f64).sqrt() as usize
    }

    /// The pair as 8-bit images (image 0..255, mask 0/1): for PNG files and support sets.
    pub fn to_gray(&self) -> (GrayImage, GrayImage) {
        let n = self.side();
        let image = self
            .image
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        let mask = self.mask.iter().map(|&v| u8::from(v > 0.5));
        (
            GrayImage::new(n, n, image.collect()),
            GrayImage::new(n, n, mask.collect()),
        )
    }
}

/// Splits pairs into training and held-out sets as GenSeg's 7 + 2 and 32 + 8: a fifth
/// (at least one) held out, chosen by `seed`.
pub fn split(pairs: Vec<Pair>, seed: u64) -> Result<(Vec<Pair>, Vec<Pair>)> {
    if pairs.len() < MIN_PAIRS {
        return Err(Error::Input(format!(
            "GenSeg needs at least {MIN_PAIRS} labelled pairs (one to learn from, one held out to tune the generator); got {}",
            pairs.len()
        )));
    }
    let n_val = ((pairs.len() as f32 * 0.2).round() as usize).max(1);
    let held = SplitMix(seed).sample(pairs.len(), n_val);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, p) in pairs.into_iter().enumerate() {
        if held.contains(&i) {
            val.push(p)
        } else {
            train.push(p)
        }
    }
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> GrayImage {
        GrayImage::new(w, h, (0..w * h).map(|i| f(i % w, i / w)).collect())
    }

    #[test]
    fn pairs_are_resized_normalised_and_checked() {
        let image = img(40, 20, |x, _| (50 + x * 2) as u8);
        let mask = img(40, 20, |x, y| {
            if (10..30).contains(&x) && (5..15).contains(&y) {
                255
            } else {
                0
            }
        });
        let p = prepare("a", &image, &mask, 32).unwrap();
        assert_eq!((p.image.len(), p.mask.len()), (1024, 1024));
        let (lo, hi) = p
            .image
            .iter()
            .fold((1f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        assert_eq!((lo, hi), (0.0, 1.0));
        assert!(p.mask.iter().all(|&v| v == 0.0 || v == 1.0));
        assert_eq!(p.mask.iter().sum::<f32>(), 16.0 * 16.0);

        let e = prepare("b", &image, &img(20, 20, |_, _| 1), 32)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b: the image is 40×20 but its mask is 20×20"),
            "{e}"
        );
        let e = prepare("c", &image, &img(40, 20, |_, _| 0), 32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("c: the mask is empty;"), "{e}");
        let e = prepare(
            "d",
            &image,
            &img(40, 20, |x, y| u8::from(x == 3 && y == 3)),
            8,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("too small"), "{e}");
        let e = prepare("e", &image, &img(40, 20, |x, _| (x % 3) as u8), 32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not binary"), "{e}");
    }

    #[test]
    fn split_holds_out_a_fifth_and_refuses_a_single_pair() {
        let p = |v: f32| Pair {
            image: vec![v],
            mask: vec![1.0],
        };
        let (t, v) = split((0..8).map(|i| p(i as f32)).collect(), 1).unwrap();
        assert_eq!((t.len(), v.len()), (6, 2));
        let (t, v) = split((0..4).map(|i| p(i as f32)).collect(), 1).unwrap();
        assert_eq!((t.len(), v.len()), (3, 1));
        let e = split(vec![p(0.0)], 1).unwrap_err().to_string();
        assert!(
            e.contains("at least 2 labelled pairs") && e.contains("got 1"),
            "{e}"
        );
    }
}
