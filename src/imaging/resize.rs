//! Resampling exactly as the official pipelines do it.
//!
//! LiteMedSAM resizes with OpenCV's `cv2.resize(..., INTER_AREA)` on uint8, which is three
//! different algorithms: an integer box filter when both factors are whole numbers, fractional
//! area weights when shrinking otherwise, and, when either axis grows, a fixed-point linear
//! interpolation with OpenCV's own "area" coefficients. All three are reproduced here, with
//! OpenCV's rounding. Postprocessing uses PyTorch's bilinear (`align_corners=False`).

use super::GrayImage;

/// OpenCV's cvRound on float: round half to even.
fn round_even(v: f32) -> i32 {
    v.round_ties_even() as i32
}

fn sat_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_AREA)` for one uint8 channel.
pub fn resize_area(src: &GrayImage, dw: usize, dh: usize) -> GrayImage {
    let (w, h) = (src.width, src.height);
    assert!(
        w > 0 && h > 0 && dw > 0 && dh > 0,
        "resize needs non-empty sizes"
    );
    if dw == w && dh == h {
        return src.clone();
    }
    let inv_x = dw as f64 / w as f64;
    let inv_y = dh as f64 / h as f64;
    let (sx, sy) = (1.0 / inv_x, 1.0 / inv_y);
    let (isx, isy) = (sx.round() as i64, sy.round() as i64);
    let fast = (sx - isx as f64).abs() < f64::EPSILON && (sy - isy as f64).abs() < f64::EPSILON;
    let data = if sx >= 1.0 && sy >= 1.0 {
        if fast {
            area_fast(src, dw, dh, isx as usize, isy as usize)
        } else {
            area_general(src, dw, dh, sx, sy)
        }
    } else {
        area_upscale(src, dw, dh, sx, sy, inv_x, inv_y)
    };
    GrayImage::new(dw, dh, data)
}

/// Whole-number shrink factors: plain block averages.
fn area_fast(src: &GrayImage, dw: usize, dh: usize, kx: usize, ky: usize) -> Vec<u8> {
    let (w, h) = (src.width, src.height);
    let px = |x: usize, y: usize| src.data[y * w + x] as i32;
    let area = (kx * ky) as i32;
    let scale = 1.0f32 / area as f32;
    let full_w = w / kx;
    let mut out = vec![0u8; dw * dh];
    for dy in 0..dh {
        let y0 = dy * ky;
        let full_row = y0 + ky <= h;
        for dx in 0..dw {
            let x0 = dx * kx;
            out[dy * dw + dx] = if full_row && dx < full_w {
                let mut sum = 0;
                for yy in 0..ky {
                    for xx in 0..kx {
                        sum += px(x0 + xx, y0 + yy);
                    }
                }
                if kx == 2 && ky == 2 {
                    // OpenCV's dedicated 2×2 kernel rounds half up.
                    ((sum + 2) >> 2) as u8
                } else {
                    sat_u8(round_even(sum as f32 * scale))
                }
            } else {
                // Cells cut by the image border average what lies inside.
                let (mut sum, mut count) = (0, 0);
                for yy in y0..(y0 + ky).min(h) {
                    for xx in x0..(x0 + kx).min(w) {
                        sum += px(xx, yy);
                        count += 1;
                    }
                }
                if count == 0 {
                    0
                } else {
                    sat_u8(round_even(sum as f32 / count as f32))
                }
            };
        }
    }
    out
}

/// One source/destination weight of OpenCV's area table.
struct Tap {
    d: usize,
    s: usize,
    alpha: f32,
}

/// OpenCV's computeResizeAreaTab: the fractional coverage of each source pixel per output pixel.
fn area_taps(ssize: usize, dsize: usize, scale: f64) -> Vec<Tap> {
    let mut taps = Vec::new();
    for d in 0..dsize {
        let f1 = d as f64 * scale;
        let f2 = f1 + scale;
        let cell = scale.min(ssize as f64 - f1);
        let s2 = (f2.floor() as i64).min(ssize as i64 - 1);
        let s1 = (f1.ceil() as i64).min(s2);
        if s1 as f64 - f1 > 1e-3 {
            taps.push(Tap {
                d,
                s: (s1 - 1) as usize,
                alpha: ((s1 as f64 - f1) / cell) as f32,
            });
        }
        for s in s1..s2 {
            taps.push(Tap {
                d,
                s: s as usize,
                alpha: (1.0 / cell) as f32,
            });
        }
        if f2 - s2 as f64 > 1e-3 {
            taps.push(Tap {
                d,
                s: s2 as usize,
                alpha: ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    taps
}

/// Fractional shrink factors: area-weighted sums in f32, rows accumulated in table order.
fn area_general(src: &GrayImage, dw: usize, dh: usize, sx: f64, sy: f64) -> Vec<u8> {
    let w = src.width;
    let xt = area_taps(w, dw, sx);
    let yt = area_taps(src.height, dh, sy);
    let mut out = vec![0u8; dw * dh];
    let mut buf = vec![0f32; dw];
    let mut sum = vec![0f32; dw];
    let mut cur = yt.first().map(|t| t.d).unwrap_or(0);
    let flush = |out: &mut [u8], row: usize, sum: &[f32]| {
        for (o, s) in out[row * dw..(row + 1) * dw].iter_mut().zip(sum) {
            *o = sat_u8(round_even(*s));
        }
    };
    for t in &yt {
        buf.iter_mut().for_each(|b| *b = 0.0);
        let row = &src.data[t.s * w..(t.s + 1) * w];
        for x in &xt {
            buf[x.d] += row[x.s] as f32 * x.alpha;
        }
        if t.d != cur {
            flush(&mut out, cur, &sum);
            sum.iter_mut().zip(&buf).for_each(|(s, b)| *s = t.alpha * b);
            cur = t.d;
        } else {
            sum.iter_mut()
                .zip(&buf)
                .for_each(|(s, b)| *s += t.alpha * b);
        }
    }
    flush(&mut out, cur, &sum);
    out
}

/// Fixed-point weights (×2048) of OpenCV's INTER_AREA when enlarging: each output pixel takes
/// the source pixel it starts in, blended with the next only over the fraction it overhangs.
fn upscale_coeffs(
    ssize: usize,
    dsize: usize,
    scale: f64,
    inv: f64,
) -> Vec<(usize, i32, i32, bool)> {
    (0..dsize)
        .map(|d| {
            let mut s = (d as f64 * scale).floor() as i64;
            let mut f = ((d + 1) as f64 - (s + 1) as f64 * inv) as f32;
            f = if f <= 0.0 { 0.0 } else { f - f.floor() };
            // Past the last pair only the last pixel is used (OpenCV's xmax).
            let edge = s + 1 >= ssize as i64;
            if s >= ssize as i64 - 1 {
                f = 0.0;
                s = ssize as i64 - 1;
            }
            let a0 = round_even((1.0 - f) * 2048.0);
            let a1 = round_even(f * 2048.0);
            (s as usize, a0, a1, edge)
        })
        .collect()
}

fn area_upscale(
    src: &GrayImage,
    dw: usize,
    dh: usize,
    sx: f64,
    sy: f64,
    inv_x: f64,
    inv_y: f64,
) -> Vec<u8> {
    let (w, h) = (src.width, src.height);
    let xc = upscale_coeffs(w, dw, sx, inv_x);
    let yc = upscale_coeffs(h, dh, sy, inv_y);
    // Horizontal pass per source row, in OpenCV's integer domain.
    let hrow = |y: usize| -> Vec<i32> {
        let row = &src.data[y * w..(y + 1) * w];
        xc.iter()
            .map(|&(s, a0, a1, edge)| {
                if edge {
                    row[s] as i32 * 2048
                } else {
                    row[s] as i32 * a0 + row[s + 1] as i32 * a1
                }
            })
            .collect()
    };
    let mut out = vec![0u8; dw * dh];
    for (dy, &(s, b0, b1, _)) in yc.iter().enumerate() {
        let r0 = hrow(s.min(h - 1));
        let r1 = hrow((s + 1).min(h - 1));
        for dx in 0..dw {
            // OpenCV's SIMD vertical pass: (((r0>>4)·b0)>>16 + ((r1>>4)·b1)>>16 + 2) >> 2.
            let v = (((r0[dx] >> 4) * b0) >> 16) + (((r1[dx] >> 4) * b1) >> 16);
            out[dy * dw + dx] = sat_u8((v + 2) >> 2);
        }
    }
    out
}

/// PyTorch `F.interpolate(mode="bilinear", align_corners=False)` of one f32 plane.
pub fn bilinear(src: &[f32], w: usize, h: usize, dw: usize, dh: usize) -> Vec<f32> {
    let axis = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|o| {
                let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (x.floor() as usize).min(n_in - 1);
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, x - i0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (axis(w, dw), axis(h, dh));
    let mut out = Vec::with_capacity(dw * dh);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bot = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bot * fy);
        }
    }
    out
}

/// Pillow's `Image.resize(size, BILINEAR)` on an 8-bit image (UniverSeg's example loaders):
/// a triangle filter widened by the scale when shrinking (so it antialiases), applied
/// horizontally then vertically with Pillow's 22-bit fixed-point weights and 8-bit rounding
/// between the passes.
pub fn resize_pil_bilinear(src: &GrayImage, dw: usize, dh: usize) -> GrayImage {
    assert!(src.width > 0 && src.height > 0 && dw > 0 && dh > 0);
    let (w, h) = (src.width, src.height);
    let mut cur = src.clone();
    if dw != w {
        let taps = pil_taps(w, dw);
        let mut out = vec![0u8; dw * h];
        for y in 0..h {
            let row = &cur.data[y * w..(y + 1) * w];
            for (x, (start, k)) in taps.iter().enumerate() {
                out[y * dw + x] = pil_apply(k, |i| row[start + i]);
            }
        }
        cur = GrayImage::new(dw, h, out);
    }
    if dh != h {
        let taps = pil_taps(h, dh);
        let mut out = vec![0u8; dw * dh];
        for (y, (start, k)) in taps.iter().enumerate() {
            for x in 0..dw {
                out[y * dw + x] = pil_apply(k, |i| cur.data[(start + i) * dw + x]);
            }
        }
        cur = GrayImage::new(dw, dh, out);
    }
    cur
}

/// Pillow's fixed-point precision for 8-bit resampling.
const PIL_BITS: u32 = 22;

/// Per output pixel: first source index and fixed-point weights (Pillow's `precompute_coeffs`
/// and `normalize_coeffs_8bpc`).
fn pil_taps(n_in: usize, n_out: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = n_in as f64 / n_out as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle's support is 1
    (0..n_out)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(n_in as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| (1.0 - ((x as f64 - center + 0.5) / filterscale).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let f = v * (1u64 << PIL_BITS) as f64;
                    (if v < 0.0 { f - 0.5 } else { f + 0.5 }) as i64
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn pil_apply(k: &[i64], px: impl Fn(usize) -> u8) -> u8 {
    let acc = k
        .iter()
        .enumerate()
        .fold(1i64 << (PIL_BITS - 1), |a, (i, &w)| a + px(i) as i64 * w);
    (acc >> PIL_BITS).clamp(0, 255) as u8
}

/// Nearest-neighbour resize sampling at pixel centres (Pillow's NEAREST), for label maps.
pub fn resize_nearest(src: &GrayImage, dw: usize, dh: usize) -> GrayImage {
    let index = |o: usize, n_in: usize, n_out: usize| {
        (((o as f64 + 0.5) * n_in as f64 / n_out as f64) as usize).min(n_in - 1)
    };
    let xs: Vec<usize> = (0..dw).map(|x| index(x, src.width, dw)).collect();
    let data = (0..dh)
        .flat_map(|y| {
            let row = index(y, src.height, dh) * src.width;
            xs.iter().map(move |&x| row + x)
        })
        .map(|i| src.data[i])
        .collect();
    GrayImage::new(dw, dh, data)
}

/// Longest-side target size with the official rounding: int(x·s + 0.5).
pub fn longest_side_size(w: usize, h: usize, target: usize) -> (usize, usize) {
    let s = target as f64 / w.max(h) as f64;
    let nw = (w as f64 * s + 0.5) as usize;
    let nh = (h as f64 * s + 0.5) as usize;
    (nw.max(1), nh.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> GrayImage {
        GrayImage::new(
            w,
            h,
            (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| f(x, y))
                .collect(),
        )
    }

    #[test]
    fn halving_averages_2x2_blocks_rounding_half_up() {
        let src = GrayImage::new(2, 2, vec![0, 1, 0, 1]); // mean 0.5 → 1 in OpenCV's 2×2 kernel
        assert_eq!(resize_area(&src, 1, 1).data, vec![1]);
        let src = img(4, 4, |x, y| (x * 10 + y * 40) as u8);
        assert_eq!(resize_area(&src, 2, 2).data, vec![25, 45, 105, 125]);
    }

    #[test]
    fn thirds_round_half_to_even() {
        let mut d = vec![4u8; 9];
        d[0] = 8;
        d[1] = 5; // sum 41 → 41·(1/9) = 4.56 → 5
        assert_eq!(resize_area(&GrayImage::new(3, 3, d), 1, 1).data, vec![5]);
    }

    #[test]
    fn fractional_shrink_weights_cover_each_source_once() {
        for (s, d) in [(5usize, 3usize), (7, 4), (300, 256), (513, 256)] {
            let taps = area_taps(s, d, s as f64 / d as f64);
            for o in 0..d {
                let total: f32 = taps.iter().filter(|t| t.d == o).map(|t| t.alpha).sum();
                assert!(
                    (total - 1.0).abs() < 1e-4,
                    "{s}->{d} out {o}: weights sum {total}"
                );
            }
        }
        let flat = img(300, 200, |_, _| 77);
        assert!(resize_area(&flat, 256, 171).data.iter().all(|&v| v == 77));
    }

    #[test]
    fn enlarging_keeps_flat_images_flat_and_edges_sharp_inside_cells() {
        let flat = img(100, 60, |_, _| 200);
        assert!(resize_area(&flat, 256, 154).data.iter().all(|&v| v == 200));
        // 2× enlargement with INTER_AREA duplicates pixels (no blending at integer factors).
        let src = GrayImage::new(2, 1, vec![0, 100]);
        assert_eq!(
            resize_area(&src, 4, 2).data,
            vec![0, 0, 100, 100, 0, 0, 100, 100]
        );
    }

    #[test]
    fn bilinear_matches_pytorch_half_pixel_rule() {
        // Upsampling [0, 1] by 2 with align_corners=False gives [0, .25, .75, 1].
        let out = bilinear(&[0.0, 1.0], 2, 1, 4, 1);
        assert_eq!(out, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn longest_side_rounds_like_the_official_code() {
        assert_eq!(longest_side_size(512, 512, 256), (256, 256));
        assert_eq!(longest_side_size(512, 301, 256), (256, 151));
        assert_eq!(longest_side_size(100, 30, 256), (256, 77));
    }

    #[test]
    fn pil_bilinear_matches_pillow() {
        // Values from Pillow 13: Image.fromarray(a).resize((2, 1), Image.BILINEAR) etc.
        let src = GrayImage::new(4, 1, vec![0, 100, 200, 255]);
        // Halving: support 2 around centres 1 and 3, triangle weights .75/.75/.25 renormalised.
        assert_eq!(resize_pil_bilinear(&src, 2, 1).data, vec![71, 209]);
        let flat = img(300, 200, |_, _| 91);
        assert!(
            resize_pil_bilinear(&flat, 128, 128)
                .data
                .iter()
                .all(|&v| v == 91)
        );
        // Enlarging [0, 100] to 4 is plain linear interpolation at pixel centres.
        let src = GrayImage::new(2, 1, vec![0, 100]);
        assert_eq!(resize_pil_bilinear(&src, 4, 1).data, vec![0, 25, 75, 100]);
    }

    #[test]
    fn nearest_samples_pixel_centres() {
        let src = img(4, 4, |x, y| (y * 4 + x) as u8);
        assert_eq!(resize_nearest(&src, 2, 2).data, vec![5, 7, 13, 15]);
        let src = GrayImage::new(2, 1, vec![0, 255]);
        assert_eq!(resize_nearest(&src, 4, 1).data, vec![0, 0, 255, 255]);
    }
}
