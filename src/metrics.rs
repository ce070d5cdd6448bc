//! Segmentation metrics used by MedSAM and the CVPR 2024 challenge: DSC and NSD.

/// Dice similarity coefficient 2|G∩S| / (|G|+|S|); 1 when both masks are empty.
/// Area of the non-zero pixels of a mask in mm², given the pixel size (x, y) in mm.
pub fn area_mm2(mask: &[u8], spacing: [f64; 2]) -> f64 {
    mask.iter().filter(|&&v| v > 0).count() as f64 * spacing[0] * spacing[1]
}

/// Volume of `voxels` voxels of size `spacing` (mm) in millilitres (1 mL = 1000 mm³).
pub fn volume_ml(voxels: usize, spacing: [f64; 3]) -> f64 {
    voxels as f64 * spacing.iter().product::<f64>() / 1000.0
}

pub fn dice(a: &[bool], b: &[bool]) -> f64 {
    assert_eq!(a.len(), b.len(), "masks must have the same size");
    let (mut inter, mut sa, mut sb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        inter += (x && y) as usize;
        sa += x as usize;
        sb += y as usize;
    }
    if sa + sb == 0 {
        1.0
    } else {
        2.0 * inter as f64 / (sa + sb) as f64
    }
}

/// Foreground pixels with a 4-neighbour in the background or on the image border.
fn boundary(m: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = vec![false; m.len()];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !m[i] {
                continue;
            }
            let edge = x == 0 || y == 0 || x + 1 == w || y + 1 == h;
            out[i] = edge || !m[i - 1] || !m[i + 1] || !m[i - w] || !m[i + w];
        }
    }
    out
}

/// Squared Euclidean distance transform in 1-D (Felzenszwalb & Huttenlocher), in place.
fn edt_1d(f: &mut [f64], step: f64) {
    let n = f.len();
    let mut v = vec![0usize; n];
    let mut z = vec![0f64; n + 1];
    let g = f.to_vec();
    let pos = |q: usize| q as f64 * step;
    let mut k = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        if g[q].is_infinite() {
            continue;
        }
        if g[v[k]].is_infinite() {
            v[k] = q;
            continue;
        }
        loop {
            let p = v[k];
            let s =
                ((g[q] + pos(q) * pos(q)) - (g[p] + pos(p) * pos(p))) / (2.0 * (pos(q) - pos(p)));
            if s <= z[k] && k > 0 {
                k -= 1;
                continue;
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f64::INFINITY;
            break;
        }
    }
    if g[v[0]].is_infinite() {
        return; // no seed on this line
    }
    let mut k = 0;
    for q in 0..n {
        while z[k + 1] < pos(q) {
            k += 1;
        }
        let d = pos(q) - pos(v[k]);
        f[q] = d * d + g[v[k]];
    }
}

/// Distance (in spacing units) from every pixel to the nearest `true` pixel of `seeds`.
fn distance_to(seeds: &[bool], w: usize, h: usize, spacing: (f64, f64)) -> Vec<f64> {
    let mut d: Vec<f64> = seeds
        .iter()
        .map(|&s| if s { 0.0 } else { f64::INFINITY })
        .collect();
    let mut col = vec![0f64; h];
    for x in 0..w {
        (0..h).for_each(|y| col[y] = d[y * w + x]);
        edt_1d(&mut col, spacing.0);
        (0..h).for_each(|y| d[y * w + x] = col[y]);
    }
    for row in d.chunks_mut(w) {
        edt_1d(row, spacing.1);
    }
    d.iter().map(|v| v.sqrt()).collect()
}

/// Normalized surface distance at tolerance `tau` (same units as `spacing`, which is
/// (row, column) pixel size; (1, 1) for pixels): the share of both boundaries lying within
/// `tau` of the other boundary. 1 when both masks are empty, 0 when only one is.
pub fn nsd(a: &[bool], b: &[bool], w: usize, h: usize, spacing: (f64, f64), tau: f64) -> f64 {
    assert_eq!(a.len(), w * h);
    assert_eq!(b.len(), w * h);
    let (ba, bb) = (boundary(a, w, h), boundary(b, w, h));
    let (na, nb) = (
        ba.iter().filter(|&&v| v).count(),
        bb.iter().filter(|&&v| v).count(),
    );
    if na + nb == 0 {
        return 1.0;
    }
    if na == 0 || nb == 0 {
        return 0.0;
    }
    let (da, db) = (
        distance_to(&ba, w, h, spacing),
        distance_to(&bb, w, h, spacing),
    );
    let close_a = ba
        .iter()
        .zip(&db)
        .filter(|(on, d)| **on && **d <= tau)
        .count();
    let close_b = bb
        .iter()
        .zip(&da)
        .filter(|(on, d)| **on && **d <= tau)
        .count();
    (close_a + close_b) as f64 / (na + nb) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_volumes_use_the_spacing() {
        assert_eq!(area_mm2(&[0, 1, 1, 255, 0], [0.5, 2.0]), 3.0);
        // 2000 voxels of 0.5 × 0.5 × 2 mm = 1000 mm³ = 1 mL.
        assert!((volume_ml(2000, [0.5, 0.5, 2.0]) - 1.0).abs() < 1e-12);
    }

    fn square(w: usize, h: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<bool> {
        (0..w * h)
            .map(|i| (x0..x1).contains(&(i % w)) && (y0..y1).contains(&(i / w)))
            .collect()
    }

    #[test]
    fn dice_by_hand() {
        // 4×4 square vs the same square shifted by one column: overlap 12, sizes 16 + 16.
        let a = square(10, 10, 2, 2, 6, 6);
        let b = square(10, 10, 3, 2, 7, 6);
        assert!((dice(&a, &b) - 24.0 / 32.0).abs() < 1e-12);
        assert_eq!(dice(&a, &a), 1.0);
        assert_eq!(dice(&[false; 4], &[false; 4]), 1.0);
        assert_eq!(dice(&a, &vec![false; 100]), 0.0);
    }

    #[test]
    fn nsd_by_hand() {
        let a = square(10, 10, 2, 2, 6, 6); // boundary: 12 pixels of a 4×4 square
        let b = square(10, 10, 3, 2, 7, 6);
        // Shift by 1 px: every boundary pixel is within 1 px of the other boundary.
        assert_eq!(nsd(&a, &b, 10, 10, (1.0, 1.0), 1.0), 1.0);
        // At tolerance 0 only shared boundary pixels count: rows y=2 and y=5 for x in 3..6.
        let both = 6;
        assert!((nsd(&a, &b, 10, 10, (1.0, 1.0), 0.0) - (2 * both) as f64 / 24.0).abs() < 1e-12);
        // Anisotropic spacing: a 2 mm column spacing puts the shifted boundary 2 mm away.
        let v = nsd(&a, &b, 10, 10, (1.0, 2.0), 1.0);
        assert!(v < 1.0 && v > 0.0, "{v}");
        assert_eq!(nsd(&a, &a, 10, 10, (1.0, 1.0), 0.0), 1.0);
    }

    #[test]
    fn edt_matches_brute_force() {
        let (w, h) = (13, 9);
        let seeds: Vec<bool> = (0..w * h).map(|i| i % 17 == 3 || i == 50).collect();
        let d = distance_to(&seeds, w, h, (1.5, 0.7));
        for y in 0..h {
            for x in 0..w {
                let best = (0..w * h)
                    .filter(|&j| seeds[j])
                    .map(|j| {
                        let (dy, dx) = ((j / w) as f64 - y as f64, (j % w) as f64 - x as f64);
                        ((dy * 1.5).powi(2) + (dx * 0.7).powi(2)).sqrt()
                    })
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    (d[y * w + x] - best).abs() < 1e-9,
                    "({x},{y}): {} vs {best}",
                    d[y * w + x]
                );
            }
        }
    }
}
