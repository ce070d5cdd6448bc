//! GenSeg's mask augmentation: new masks from a few real ones, the generator's inputs.
//!
//! The released GenSeg script runs an imgaug sequence in random order: flip left–right with
//! probability 0.5, crop-and-pad 0–10 % per side (positive percentages pad, then the image is
//! resized back), affine scale 0.8–1.2 per axis, translate ±10 % per axis, rotate, shear; then
//! binarises at 0.1. Ranges for rotation (±15°) and shear (±8°) follow our issue. Each step
//! resamples the float mask bilinearly (zero outside) as imgaug does, so the steps' order
//! matters, which is why the order is drawn too.

use crate::random::SplitMix;

/// One geometric step with its parameters drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    FlipLr,
    /// Pixels added on each side as fractions of the size (top, right, bottom, left), then
    /// the padded image is resized back to the original size.
    Pad {
        top: f32,
        right: f32,
        bottom: f32,
        left: f32,
    },
    Scale {
        x: f32,
        y: f32,
    },
    /// Shift as fractions of the width and height.
    Translate {
        x: f32,
        y: f32,
    },
    /// Degrees, clockwise on screen (y down), about the image centre.
    Rotate(f32),
    /// Degrees of x-shear about the image centre (positive: rows above the centre slide right).
    Shear(f32),
}

/// The ranges the steps are drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranges {
    pub flip_p: f32,
    pub pad: f32,
    pub scale: (f32, f32),
    pub translate: f32,
    pub rotate: f32,
    pub shear: f32,
    pub threshold: f32,
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges {
            flip_p: 0.5,
            pad: 0.10,
            scale: (0.8, 1.2),
            translate: 0.10,
            rotate: 15.0,
            shear: 8.0,
            threshold: 0.1,
        }
    }
}

impl Ranges {
    /// The steps for one augmentation, in a random order (a skipped flip is left out).
    pub fn draw(&self, rng: &mut SplitMix) -> Vec<Op> {
        let mut ops = Vec::with_capacity(6);
        if rng.unit() < self.flip_p {
            ops.push(Op::FlipLr);
        }
        let p = self.pad;
        ops.push(Op::Pad {
            top: rng.uniform(0.0, p),
            right: rng.uniform(0.0, p),
            bottom: rng.uniform(0.0, p),
            left: rng.uniform(0.0, p),
        });
        let (s0, s1) = self.scale;
        ops.push(Op::Scale {
            x: rng.uniform(s0, s1),
            y: rng.uniform(s0, s1),
        });
        let t = self.translate;
        ops.push(Op::Translate {
            x: rng.uniform(-t, t),
            y: rng.uniform(-t, t),
        });
        ops.push(Op::Rotate(rng.uniform(-self.rotate, self.rotate)));
        ops.push(Op::Shear(rng.uniform(-self.shear, self.shear)));
        let n = ops.len();
        rng.shuffle(&mut ops, n);
        ops
    }

    /// A new binary mask (0/1) from `mask` (0/1, `w`×`h`).
    pub fn augment(&self, mask: &[f32], w: usize, h: usize, rng: &mut SplitMix) -> Vec<f32> {
        let ops = self.draw(rng);
        let soft = ops.iter().fold(mask.to_vec(), |m, op| apply(*op, &m, w, h));
        soft.iter()
            .map(|&v| f32::from(v > self.threshold))
            .collect()
    }
}

/// Applies one step to a float plane, bilinear, zero outside.
pub fn apply(op: Op, src: &[f32], w: usize, h: usize) -> Vec<f32> {
    // Each step as the inverse map: output pixel centre → source position, in pixel
    // coordinates about the centre (cx, cy).
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (wf, hf) = (w as f32, h as f32);
    let inverse: Box<dyn Fn(f32, f32) -> (f32, f32)> = match op {
        Op::FlipLr => Box::new(move |x, y| (wf - x, y)),
        Op::Pad {
            top,
            right,
            bottom,
            left,
        } => {
            // The padded canvas spans (-left·w .. w + right·w) and is squeezed into 0..w.
            let (x0, y0) = (-left * wf, -top * hf);
            let (sx, sy) = ((1.0 + left + right), (1.0 + top + bottom));
            Box::new(move |x, y| (x0 + x * sx, y0 + y * sy))
        }
        Op::Scale { x: sx, y: sy } => {
            Box::new(move |x, y| (cx + (x - cx) / sx, cy + (y - cy) / sy))
        }
        Op::Translate { x: tx, y: ty } => Box::new(move |x, y| (x - tx * wf, y - ty * hf)),
        Op::Rotate(deg) => {
            let (s, c) = deg.to_radians().sin_cos();
            // Forward: clockwise on screen; inverse rotates back.
            Box::new(move |x, y| {
                let (dx, dy) = (x - cx, y - cy);
                (cx + c * dx + s * dy, cy - s * dx + c * dy)
            })
        }
        Op::Shear(deg) => {
            let k = deg.to_radians().tan();
            Box::new(move |x, y| (x + k * (y - cy), y))
        }
    };
    let mut out = vec![0.0; w * h];
    for (oy, row) in out.chunks_exact_mut(w).enumerate() {
        for (ox, o) in row.iter_mut().enumerate() {
            let (sx, sy) = inverse(ox as f32 + 0.5, oy as f32 + 0.5);
            *o = sample(src, w, h, sx - 0.5, sy - 0.5);
        }
    }
    out
}

/// Bilinear sample at pixel-index coordinates, zero outside the plane.
fn sample(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= w as f32 || yi >= h as f32 {
            0.0
        } else {
            src[yi as usize * w + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A w×h plane with the rectangle [x0, x1) × [y0, y1) set.
    fn rect(w: usize, h: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<f32> {
        (0..w * h)
            .map(|i| f32::from((x0..x1).contains(&(i % w)) && (y0..y1).contains(&(i / w))))
            .collect()
    }

    fn bbox(m: &[f32], w: usize) -> (usize, usize, usize, usize) {
        let on: Vec<usize> = (0..m.len()).filter(|&i| m[i] > 0.5).collect();
        let xs = on.iter().map(|i| i % w);
        let ys = on.iter().map(|i| i / w);
        (
            xs.clone().min().unwrap(),
            ys.clone().min().unwrap(),
            xs.max().unwrap() + 1,
            ys.max().unwrap() + 1,
        )
    }

    fn area(m: &[f32]) -> f32 {
        m.iter().sum()
    }

    #[test]
    fn flip_mirrors_exactly() {
        let m = rect(10, 6, 1, 2, 4, 5);
        assert_eq!(apply(Op::FlipLr, &m, 10, 6), rect(10, 6, 6, 2, 9, 5));
    }

    #[test]
    fn integer_translation_moves_the_mask() {
        let m = rect(20, 10, 2, 3, 6, 7);
        let t = apply(Op::Translate { x: 0.25, y: -0.2 }, &m, 20, 10); // +5 px, −2 px
        assert_eq!(t, rect(20, 10, 7, 1, 11, 5));
        // Moved out of the plane: gone (zero fill), not wrapped.
        let gone = apply(Op::Translate { x: 0.9, y: 0.0 }, &m, 20, 10);
        assert_eq!(area(&gone), 0.0);
    }

    #[test]
    fn rotate_quarter_turn_is_clockwise() {
        // A bar in the top half becomes a bar in the right half (y down, clockwise).
        let m = rect(8, 8, 2, 0, 6, 3);
        let r = apply(Op::Rotate(90.0), &m, 8, 8);
        assert_eq!(bbox(&r, 8), (5, 2, 8, 6));
        assert!((area(&r) - area(&m)).abs() < 1e-3);
    }

    #[test]
    fn scale_about_the_centre() {
        let m = rect(40, 40, 10, 10, 30, 30);
        let s = apply(Op::Scale { x: 0.5, y: 1.0 }, &m, 40, 40);
        assert_eq!(bbox(&s, 40), (15, 10, 25, 30));
        assert!((area(&s) - 200.0).abs() < 1e-3);
    }

    #[test]
    fn pad_shrinks_toward_the_unpadded_side() {
        // Padding the left by 100 % halves the width and pushes content right.
        let m = rect(40, 20, 0, 0, 40, 20);
        let p = apply(
            Op::Pad {
                top: 0.0,
                right: 0.0,
                bottom: 0.0,
                left: 1.0,
            },
            &m,
            40,
            20,
        );
        assert_eq!(bbox(&p, 40), (20, 0, 40, 20));
    }

    #[test]
    fn shear_keeps_rows_and_area() {
        let m = rect(40, 40, 10, 10, 30, 30);
        let s = apply(Op::Shear(20.0), &m, 40, 40);
        // Rows keep their sum (a shear only slides rows); top rows slide right, bottom rows left.
        for y in 12..28 {
            let row: f32 = s[y * 40..(y + 1) * 40].iter().sum();
            assert!((row - 20.0).abs() < 1e-3, "row {y}: {row}");
        }
        let cx = |y: usize| (0..40).map(|x| x as f32 * s[y * 40 + x]).sum::<f32>() / 20.0;
        assert!(cx(12) > cx(27) + 4.0, "{} {}", cx(12), cx(27));
    }

    #[test]
    fn augmentations_are_seeded_binary_and_plausible() {
        let m = rect(64, 64, 20, 16, 44, 48);
        let r = Ranges::default();
        let a = r.augment(&m, 64, 64, &mut SplitMix(3));
        assert_eq!(a, r.augment(&m, 64, 64, &mut SplitMix(3)));
        assert_ne!(a, r.augment(&m, 64, 64, &mut SplitMix(4)));
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
        // Scale ≤ 1.2² and padding only shrinks: the area stays within sensible bounds.
        for seed in 0..20 {
            let a = r.augment(&m, 64, 64, &mut SplitMix(seed));
            let ratio = area(&a) / area(&m);
            assert!(
                (0.35..1.6).contains(&ratio),
                "seed {seed}: area ratio {ratio}"
            );
        }
        // Every draw has the five always-on steps, in some order.
        let ops = r.draw(&mut SplitMix(9));
        assert!(ops.len() == 5 || ops.len() == 6);
    }
}
