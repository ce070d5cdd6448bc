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

/// A lesion's axes on a slice ([`axes_mm`]): their lengths and their ends, all in mm from the
/// image's top-left corner (divide by the pixel size for pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes {
    pub long_mm: f64,
    pub short_mm: f64,
    pub long: [(f64, f64); 2],
    pub short: [(f64, f64); 2],
}

/// A lesion's long axis on a slice and its longest chord across it, in mm, as RECIST / WHO
/// measure them by hand: the longest distance edge to edge (over the corners of its pixels,
/// scaled by the (x, y) pixel size) and, on the mask's convex outline, the longest chord
/// perpendicular to it. None for an empty mask.
pub fn axes_mm(mask: &[u8], w: usize, spacing: [f64; 2]) -> Option<Axes> {
    let set: Vec<bool> = mask.iter().map(|&v| v > 0).collect();
    // Corners of the pixels on the mask's edge (an inner pixel's lie inside the outline).
    let mut corners = vec![];
    for (i, _) in boundary(&set, w, mask.len() / w)
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
    {
        let (x, y) = (i % w, i / w);
        for (cx, cy) in [(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)] {
            corners.push((cx as f64 * spacing[0], cy as f64 * spacing[1]));
        }
    }
    let hull = convex_hull(corners);
    let (mut long, mut ends) = (0.0, ((0.0, 0.0), (0.0, 0.0)));
    for (k, &a) in hull.iter().enumerate() {
        for &b in &hull[k + 1..] {
            let d = (a.0 - b.0).hypot(a.1 - b.1);
            if d > long {
                (long, ends) = (d, (a, b));
            }
        }
    }
    if hull.is_empty() {
        return None;
    }
    // Chords across the long axis: the longest one passes through a vertex of the outline, so
    // cut the outline at each vertex's position along the axis (u) and measure along n.
    let (a, b) = ends;
    let u = ((b.0 - a.0) / long, (b.1 - a.1) / long);
    let n = (-u.1, u.0);
    let dot = |p: (f64, f64), d: (f64, f64)| p.0 * d.0 + p.1 * d.1;
    let mut short = (0f64, [a, a]);
    for &v in &hull {
        let t = dot(v, u);
        let (mut lo, mut hi) = ((f64::INFINITY, v), (f64::NEG_INFINITY, v));
        for (k, &p) in hull.iter().enumerate() {
            let q = hull[(k + 1) % hull.len()];
            let (dp, dq) = (dot(p, u) - t, dot(q, u) - t);
            if dp * dq <= 0.0 {
                let f = if dp == dq { 0.0 } else { dp / (dp - dq) };
                let cut = (p.0 + f * (q.0 - p.0), p.1 + f * (q.1 - p.1));
                // Where an edge lies along the cut, both its ends count.
                for c in [cut, if dp == dq { q } else { cut }] {
                    let across = dot(c, n);
                    if across < lo.0 {
                        lo = (across, c);
                    }
                    if across > hi.0 {
                        hi = (across, c);
                    }
                }
            }
        }
        if hi.0 - lo.0 > short.0 {
            short = (hi.0 - lo.0, [lo.1, hi.1]);
        }
    }
    Some(Axes {
        long_mm: long,
        short_mm: short.0,
        long: [a, b],
        short: short.1,
    })
}

/// The convex hull's vertices, counter-clockwise (Andrew's monotone chain).
fn convex_hull(mut p: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    p.sort_by(|a, b| a.partial_cmp(b).expect("finite coordinates"));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let turn = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    // The lower chain left to right, then the upper one back, each without its last point.
    let mut hull: Vec<(f64, f64)> = vec![];
    for chain in [p.clone(), p.into_iter().rev().collect()] {
        let start = hull.len();
        for q in chain {
            while hull.len() >= start + 2
                && turn(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
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
    /// The longest long axis over the slices (mm), the short axis on that slice, and that slice
    /// (numbered from 1): see [`axes_mm`].
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    pub axis_slice: usize,
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
        "label,name,pixels,volume_ml,slices,first_slice,last_slice,largest_area_mm2,long_axis_mm,short_axis_mm,axis_slice,mean,sd,min,max\n",
    );
    for (k, r) in rows.iter().enumerate() {
        let mut name = r.name.clone();
        if name.starts_with(['=', '+', '-', '@']) {
            name.insert(0, '\'');
        }
        if name.contains([',', '"', '\n', '\r']) || name.trim() != name {
            name = format!("\"{}\"", name.replace('"', "\"\""));
        }
        let extent = r.extent.map_or(",,,,,,,".to_string(), |e| {
            format!(
                "{:.3},{},{},{},{:.2},{:.2},{:.2},{}",
                e.ml,
                e.slices,
                e.first,
                e.last,
                e.largest_mm2,
                e.long_axis_mm,
                e.short_axis_mm,
                e.axis_slice
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
                    long_axis_mm: 21.5,
                    short_axis_mm: 12.25,
                    axis_slice: 13,
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
            "label,name,pixels,volume_ml,slices,first_slice,last_slice,largest_area_mm2,long_axis_mm,short_axis_mm,axis_slice,mean,sd,min,max\n\
             1,\"Liver, left lobe\",2000,1.000,3,12,14,250.00,21.50,12.25,13,20.00,10.00,10,30\n\
             2,\"'=HYPERLINK(\"\"x\"\")\",0,,,,,,,,,,,,\n"
        );
    }

    #[test]
    fn long_and_short_axes_by_hand() {
        // A 10 × 4 pixel rectangle of 0.5 × 2 mm pixels: 5 × 8 mm. Its long axis is the diagonal,
        // √89; the longest chord across it, from a corner to the far side, is checked against
        // a sweep of cuts along the diagonal.
        let (w, h) = (14, 8);
        let mask: Vec<u8> = (0..w * h)
            .map(|i| ((2..12).contains(&(i % w)) && (2..6).contains(&(i / w))) as u8)
            .collect();
        let axes = axes_mm(&mask, w, [0.5, 2.0]).unwrap();
        let (long, short) = (axes.long_mm, axes.short_mm);
        assert!((long - 89f64.sqrt()).abs() < 1e-9, "long axis {long}");
        // The ends given are those lengths apart, and the short axis crosses the long at right angles.
        let span = |[p, q]: [(f64, f64); 2]| (q.0 - p.0, q.1 - p.1);
        let (l, c) = (span(axes.long), span(axes.short));
        assert!((l.0.hypot(l.1) - long).abs() < 1e-9 && (c.0.hypot(c.1) - short).abs() < 1e-9);
        assert!(
            (l.0 * c.0 + l.1 * c.1).abs() < 1e-9,
            "not perpendicular: {axes:?}"
        );
        let brute = brute_short_axis(&[(0.0, 0.0), (5.0, 0.0), (5.0, 8.0), (0.0, 8.0)]);
        assert!(
            (short - brute).abs() < 2e-3,
            "short axis {short}, brute force {brute}"
        );
        // A disc of radius 10 px: both axes about its diameter (pixel corners: 21 px across).
        let w = 40;
        let disc: Vec<u8> = (0..w * w)
            .map(|i| (((i % w) as f64 - 20.0).hypot((i / w) as f64 - 20.0) <= 10.0) as u8)
            .collect();
        let Axes {
            long_mm: long,
            short_mm: short,
            ..
        } = axes_mm(&disc, w, [1.0, 1.0]).unwrap();
        assert!(
            (20.9..21.6).contains(&long) && (19.5..21.6).contains(&short),
            "{long} {short}"
        );
        // One pixel: its diagonal, and the chord across it through its other corners.
        let Axes {
            long_mm: long,
            short_mm: short,
            ..
        } = axes_mm(&[0, 1, 0, 0], 2, [1.0, 1.0]).unwrap();
        assert!((long - 2f64.sqrt()).abs() < 1e-9 && (short - 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(axes_mm(&[0; 4], 2, [1.0, 1.0]), None);
    }

    /// The longest chord perpendicular to the longest diagonal of a counter-clockwise convex
    /// polygon, by sweeping 20 000 cuts along the diagonal.
    fn brute_short_axis(poly: &[(f64, f64)]) -> f64 {
        let mut best = (0.0, 0, 0);
        for i in 0..poly.len() {
            for j in i + 1..poly.len() {
                let d = (poly[i].0 - poly[j].0).hypot(poly[i].1 - poly[j].1);
                if d > best.0 {
                    best = (d, i, j);
                }
            }
        }
        let (long, a, b) = (best.0, poly[best.1], poly[best.2]);
        let u = ((b.0 - a.0) / long, (b.1 - a.1) / long);
        let n = (-u.1, u.0);
        let mut short = 0f64;
        let steps = 20_000;
        for k in 0..=steps {
            // A point on the axis, then along n both ways while inside (convex: half-planes).
            let p = (
                a.0 + u.0 * long * k as f64 / steps as f64,
                a.1 + u.1 * long * k as f64 / steps as f64,
            );
            let inside = |q: (f64, f64)| {
                (0..poly.len()).all(|e| {
                    let (s, t) = (poly[e], poly[(e + 1) % poly.len()]);
                    (t.0 - s.0) * (q.1 - s.1) - (t.1 - s.1) * (q.0 - s.0) >= -1e-9
                })
            };
            let reach = |sign: f64| {
                let (mut lo, mut hi) = (0.0, 20.0);
                for _ in 0..60 {
                    let mid = (lo + hi) / 2.0;
                    if inside((p.0 + sign * n.0 * mid, p.1 + sign * n.1 * mid)) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                lo
            };
            short = short.max(reach(1.0) + reach(-1.0));
        }
        short
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
