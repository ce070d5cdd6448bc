//! Segmentation metrics used by MedSAM and the CVPR 2024 challenge (DSC and NSD), and the
//! measurements a user exports: sizes and the scan's values under each mask.

/// Area of the non-zero pixels of a mask in mm², given the pixel size (x, y) in mm.
pub fn area_mm2(mask: &[u8], spacing: [f64; 2]) -> f64 {
    mask.iter().filter(|&&v| v > 0).count() as f64 * spacing[0] * spacing[1]
}

/// Volume of `voxels` voxels of size `spacing` (mm) in millilitres (1 mL = 1000 mm³).
pub fn volume_ml(voxels: usize, spacing: [f64; 3]) -> f64 {
    voxels as f64 * spacing.iter().product::<f64>() / 1000.0
}

/// Dice similarity coefficient 2|G∩S| / (|G|+|S|); 1 when both masks are empty.
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

/// Distance (in spacing units) from every pixel to the nearest `true` pixel of `seeds`;
/// `spacing` is (row, column) pixel size. Infinite everywhere without a seed.
pub(crate) fn distance_to(seeds: &[bool], w: usize, h: usize, spacing: (f64, f64)) -> Vec<f64> {
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

/// The scan's values under a mask: mean, population standard deviation, range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intensity {
    pub mean: f64,
    pub sd: f64,
    pub min: f32,
    pub max: f32,
}

/// Of `values` (Welford's running sums in f64, stable over millions of voxels); None for none.
pub fn intensity(values: impl IntoIterator<Item = f32>) -> Option<Intensity> {
    let (mut n, mut mean, mut m2) = (0usize, 0f64, 0f64);
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in values {
        n += 1;
        let d = v as f64 - mean;
        mean += d / n as f64;
        m2 += d * (v as f64 - mean);
        min = min.min(v);
        max = max.max(v);
    }
    (n > 0).then(|| Intensity {
        mean,
        sd: (m2 / n as f64).sqrt(),
        min,
        max,
    })
}

/// On a volume: an object's size and extent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extent {
    pub ml: f64,
    /// Slices with mask, and the first and last of them (numbered from 1, as the page shows).
    pub slices: usize,
    pub first: usize,
    pub last: usize,
    /// The largest slice's area (mm²).
    pub largest_mm2: f64,
}

/// One object's row of the measurements table.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectMeasure {
    pub name: String,
    /// Pixels (voxels on a volume) in the mask.
    pub pixels: usize,
    pub extent: Option<Extent>,
    pub intensity: Option<Intensity>,
}

/// The measurements as CSV, one row per object, labelled 1, 2, … as the label exports number
/// them. Cells that do not apply (the extent on a 2D image, values under an empty mask) are
/// empty. Names are quoted where CSV needs it, and ones a spreadsheet would run as a formula
/// (=, +, -, @ first) start with an apostrophe.
pub fn measurements_csv(rows: &[ObjectMeasure]) -> String {
    let mut out = String::from(
        "label,name,pixels,volume_ml,slices,first_slice,last_slice,largest_area_mm2,mean,sd,min,max\n",
    );
    for (k, r) in rows.iter().enumerate() {
        let mut name = r.name.clone();
        if name.starts_with(['=', '+', '-', '@']) {
            name.insert(0, '\'');
        }
        if name.contains([',', '"', '\n', '\r']) || name.trim() != name {
            name = format!("\"{}\"", name.replace('"', "\"\""));
        }
        let extent = r.extent.map_or(",,,,".to_string(), |e| {
            format!(
                "{:.3},{},{},{},{:.2}",
                e.ml, e.slices, e.first, e.last, e.largest_mm2
            )
        });
        let values = r.intensity.map_or(",,,".to_string(), |i| {
            format!("{:.2},{:.2},{},{}", i.mean, i.sd, i.min, i.max)
        });
        out += &format!("{},{name},{},{extent},{values}\n", k + 1, r.pixels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_by_hand() {
        let i = intensity([-1000.0, 40.0, 60.0, 100.0]).unwrap();
        // Mean −200; deviations −800, 240, 260, 300, so the population variance is
        // (640000 + 57600 + 67600 + 90000) / 4 = 213800.
        assert!((i.mean + 200.0).abs() < 1e-9);
        assert!((i.sd - 213800f64.sqrt()).abs() < 1e-9);
        assert_eq!((i.min, i.max), (-1000.0, 100.0));
        assert_eq!(intensity([]), None);
        // A million voxels of HU around 1e3: no cancellation.
        let i = intensity((0..1_000_000).map(|k| 1000.0 + (k % 2) as f32)).unwrap();
        assert!((i.mean - 1000.5).abs() < 1e-9 && (i.sd - 0.5).abs() < 1e-9);
    }

    #[test]
    fn measurements_csv_quotes_names_and_leaves_what_does_not_apply_empty() {
        let rows = [
            ObjectMeasure {
                name: "Liver, left lobe".into(),
                pixels: 2000,
                extent: Some(Extent {
                    ml: 1.0,
                    slices: 3,
                    first: 12,
                    last: 14,
                    largest_mm2: 250.0,
                }),
                intensity: intensity([10.0, 30.0]),
            },
            ObjectMeasure {
                name: "=HYPERLINK(\"x\")".into(),
                pixels: 0,
                extent: None,
                intensity: None,
            },
        ];
        assert_eq!(
            measurements_csv(&rows),
            "label,name,pixels,volume_ml,slices,first_slice,last_slice,largest_area_mm2,mean,sd,min,max\n\
             1,\"Liver, left lobe\",2000,1.000,3,12,14,250.00,20.00,10.00,10,30\n\
             2,\"'=HYPERLINK(\"\"x\"\")\",0,,,,,,,,,\n"
        );
    }

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
