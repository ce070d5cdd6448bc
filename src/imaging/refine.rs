//! Whole-mask corrections (the app's Refine buttons): fill holes, keep the largest piece, grow or
//! shrink by one pixel, keep the pixels in a value range, fill the slices between two masks of a
//! volume. Masks are 0/1 bytes, row-major, `w × h` per slice.
//!
//! Pieces are face-connected (4 neighbours in a slice, 6 across slices), so a hole is background
//! that no 8-connected path of background joins to the slice's border: the two notions are each
//! other's complement, and a ring closed only by a diagonal step neither holds a hole nor counts
//! as two pieces joined.

/// Turns the background enclosed by the mask into mask; returns the pixels added.
pub fn fill_holes(mask: &mut [u8], w: usize, h: usize) -> usize {
    debug_assert_eq!(mask.len(), w * h);
    // Flood the background from the border (marked 2), then what it did not reach is a hole.
    let mut stack: Vec<usize> = (0..w * h)
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            x == 0 || y == 0 || x + 1 == w || y + 1 == h
        })
        .filter(|&i| mask[i] == 0)
        .collect();
    stack.iter().for_each(|&i| mask[i] = 2);
    while let Some(i) = stack.pop() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        for (dx, dy) in [
            (-1, -1),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            let (nx, ny) = (x + dx, y + dy);
            if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                let j = ny as usize * w + nx as usize;
                if mask[j] == 0 {
                    mask[j] = 2;
                    stack.push(j);
                }
            }
        }
    }
    let mut added = 0;
    for v in mask.iter_mut() {
        *v = match *v {
            2 => 0,
            0 => {
                added += 1;
                1
            }
            _ => 1,
        };
    }
    added
}

/// Adds every background pixel that touches the mask (4 neighbours); returns the pixels added.
pub fn grow(mask: &mut [u8], w: usize, h: usize) -> usize {
    step(mask, w, h, 0)
}

/// Removes every mask pixel that touches the background (4 neighbours; the image's edge is not
/// background); returns the pixels removed.
pub fn shrink(mask: &mut [u8], w: usize, h: usize) -> usize {
    step(mask, w, h, 1)
}

/// Flips each pixel of value `from` that has a 4-neighbour of the other value.
fn step(mask: &mut [u8], w: usize, h: usize, from: u8) -> usize {
    debug_assert_eq!(mask.len(), w * h);
    let flip: Vec<usize> = (0..w * h)
        .filter(|&i| mask[i] == from)
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            let other = |j: usize| mask[j] != from;
            (x > 0 && other(i - 1))
                || (x + 1 < w && other(i + 1))
                || (y > 0 && other(i - w))
                || (y + 1 < h && other(i + w))
        })
        .collect();
    flip.iter().for_each(|&i| mask[i] = 1 - from);
    flip.len()
}

/// Fills each run of empty slices between two slices with mask by shape-based interpolation
/// (Raya & Udupa) about the masks' centroids: a slice a fraction `t` of the way gets the pixels
/// where the signed distances to the two masks' boundaries, each mask moved to the centroid
/// interpolated for that slice, mixed `1 − t : t`, are negative. Moving them first keeps a shape
/// that shifts from slice to slice its size (mixed in place, two offset discs give a narrower
/// lens between them). The ends of the mix are the two masks themselves, so two equal masks
/// fill the gap with copies. `spacing` is the (row, column) pixel size. Returns the slices
/// filled.
pub fn fill_between(
    slices: &mut [Option<Vec<u8>>],
    w: usize,
    h: usize,
    spacing: (f64, f64),
) -> usize {
    let masked: Vec<usize> = (0..slices.len())
        .filter(|&z| slices[z].as_ref().is_some_and(|m| m.contains(&1)))
        .collect();
    let far = (w as f64 * spacing.1).hypot(h as f64 * spacing.0);
    let mut filled = 0;
    for pair in masked.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b - a < 2 {
            continue;
        }
        let ends = [a, b].map(|z| {
            let m = slices[z].as_deref().unwrap();
            (signed_distance(m, w, h, spacing), centroid(m, w))
        });
        for z in a + 1..b {
            let t = (z - a) as f64 / (b - a) as f64;
            let c = (
                (1.0 - t) * ends[0].1.0 + t * ends[1].1.0,
                (1.0 - t) * ends[0].1.1 + t * ends[1].1.1,
            );
            // Each end's distance at the pixel that its move to `c` brings here.
            let moved = |(d, (cx, cy)): &(Vec<f64>, (f64, f64)), x: usize, y: usize| {
                let sx = x as isize - (c.0 - cx).round() as isize;
                let sy = y as isize - (c.1 - cy).round() as isize;
                if sx < 0 || sy < 0 || sx as usize >= w || sy as usize >= h {
                    far
                } else {
                    d[sy as usize * w + sx as usize]
                }
            };
            let m: Vec<u8> = (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    ((1.0 - t) * moved(&ends[0], x, y) + t * moved(&ends[1], x, y) < 0.0) as u8
                })
                .collect();
            if m.contains(&1) {
                slices[z] = Some(m);
                filled += 1;
            }
        }
    }
    filled
}

/// Mean pixel position (x, y) of a non-empty mask.
fn centroid(mask: &[u8], w: usize) -> (f64, f64) {
    let (mut n, mut sx, mut sy) = (0f64, 0f64, 0f64);
    for (i, _) in mask.iter().enumerate().filter(|(_, v)| **v > 0) {
        n += 1.0;
        sx += (i % w) as f64;
        sy += (i / w) as f64;
    }
    (sx / n, sy / n)
}

/// Distance to the mask's boundary, negative inside and positive outside (between pixel
/// centres, so the boundary lies half-way between an inside and an outside pixel).
fn signed_distance(mask: &[u8], w: usize, h: usize, spacing: (f64, f64)) -> Vec<f64> {
    use crate::metrics::distance_to;
    let inside: Vec<bool> = mask.iter().map(|&v| v > 0).collect();
    let outside: Vec<bool> = inside.iter().map(|v| !v).collect();
    // A mask filling its whole slice has no outside: no distance is further than the diagonal.
    let far = (w as f64 * spacing.1).hypot(h as f64 * spacing.0);
    let (to_inside, to_outside) = (
        distance_to(&inside, w, h, spacing),
        distance_to(&outside, w, h, spacing),
    );
    to_inside
        .iter()
        .zip(&to_outside)
        .map(|(i, o)| i.min(far) - o.min(far))
        .collect()
}

/// Removes the mask's pixels whose image value lies outside `lo..=hi` (either end may be
/// unbounded: `f32::NEG_INFINITY`, `f32::INFINITY`); returns the pixels removed.
pub fn keep_in_range(mask: &mut [u8], values: &[f32], lo: f32, hi: f32) -> usize {
    debug_assert_eq!(mask.len(), values.len());
    let mut removed = 0;
    for (m, v) in mask.iter_mut().zip(values) {
        if *m > 0 && !(lo..=hi).contains(v) {
            *m = 0;
            removed += 1;
        }
    }
    removed
}

/// What [`keep_largest`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub pieces: usize,
    pub pixels: usize,
}

/// Keeps only the largest face-connected piece of a mask given as slices (a 2D mask is one
/// slice; `None` is an empty slice). Where it removes anything, slices left without mask become
/// `None`.
pub fn keep_largest(slices: &mut [Option<Vec<u8>>], w: usize, h: usize) -> Removed {
    let n = w * h;
    // Label in place (1 → 2 when visited) so a 512² × 300 volume needs no label array; note
    // each piece's size and a seed.
    let mut pieces: Vec<(usize, (usize, usize))> = vec![];
    let mut stack = vec![];
    for z in 0..slices.len() {
        for i in 0..n {
            if slices[z].as_ref().is_some_and(|m| m[i] == 1) {
                let size = flood(slices, w, h, (z, i), 1, 2, &mut stack);
                pieces.push((size, (z, i)));
            }
        }
    }
    let Some(&(_, seed)) = pieces.iter().max_by_key(|(size, _)| *size) else {
        return Removed {
            pieces: 0,
            pixels: 0,
        };
    };
    let kept = flood(slices, w, h, seed, 2, 3, &mut stack);
    let total: usize = pieces.iter().map(|(size, _)| size).sum();
    for s in slices.iter_mut() {
        if let Some(m) = s {
            m.iter_mut().for_each(|v| *v = (*v == 3) as u8);
            if !m.contains(&1) {
                *s = None;
            }
        }
    }
    Removed {
        pieces: pieces.len() - 1,
        pixels: total - kept,
    }
}

/// Sets the face-connected piece of value `from` that holds `seed` to `to`; returns its size.
fn flood(
    slices: &mut [Option<Vec<u8>>],
    w: usize,
    h: usize,
    seed: (usize, usize),
    from: u8,
    to: u8,
    stack: &mut Vec<(usize, usize)>,
) -> usize {
    let mut size = 0;
    let mark = |slices: &mut [Option<Vec<u8>>], z: usize, i: usize, stack: &mut Vec<_>| {
        if let Some(m) = slices[z].as_mut().filter(|m| m[i] == from) {
            m[i] = to;
            stack.push((z, i));
        }
    };
    mark(slices, seed.0, seed.1, stack);
    while let Some((z, i)) = stack.pop() {
        size += 1;
        let (x, y) = (i % w, i / w);
        if x > 0 {
            mark(slices, z, i - 1, stack);
        }
        if x + 1 < w {
            mark(slices, z, i + 1, stack);
        }
        if y > 0 {
            mark(slices, z, i - w, stack);
        }
        if y + 1 < h {
            mark(slices, z, i + w, stack);
        }
        if z > 0 {
            mark(slices, z - 1, i, stack);
        }
        if z + 1 < slices.len() {
            mark(slices, z + 1, i, stack);
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask from rows of '#' (mask) and '.' (background).
    fn parse(rows: &[&str]) -> (Vec<u8>, usize, usize) {
        let w = rows[0].len();
        let m = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| (b == b'#') as u8))
            .collect();
        (m, w, rows.len())
    }

    #[test]
    fn fills_enclosed_background_only() {
        let (mut m, w, h) = parse(&[
            "........", //
            ".####...", //
            ".#..#...", //
            ".####.#.", // a hole of 2 px; the open 'C' on the right holds none
            "......#.", //
            "..#####.", //
            "..#...#.", //
            "..#.....", //
        ]);
        let (want, ..) = parse(&[
            "........", //
            ".####...", //
            ".####...", //
            ".####.#.", //
            "......#.", //
            "..#####.", //
            "..#...#.", //
            "..#.....", //
        ]);
        assert_eq!(fill_holes(&mut m, w, h), 2);
        assert_eq!(m, want);
        assert_eq!(fill_holes(&mut m, w, h), 0, "nothing left to fill");
    }

    #[test]
    fn a_ring_closed_diagonally_holds_no_hole_and_the_border_is_not_a_wall() {
        // The background inside leaks through the diagonal step (8-connected background).
        let (mut m, w, h) = parse(&[
            "......", //
            ".###..", //
            ".#..#.", //
            ".#..#.", //
            ".####.", //
            "......", //
        ]);
        let before = m.clone();
        assert_eq!(fill_holes(&mut m, w, h), 0);
        assert_eq!(m, before);
        // A mask touching the image's edge: the background it cuts off at the edge is no hole.
        let (mut m, w, h) = parse(&["#.#", "#.#", "###"]);
        assert_eq!(fill_holes(&mut m, w, h), 0);
    }

    #[test]
    fn grow_and_shrink_by_four_neighbours() {
        let (mut m, w, h) = parse(&[".....", ".....", "..#..", ".....", "....."]);
        assert_eq!(grow(&mut m, w, h), 4);
        assert_eq!(m, parse(&[".....", "..#..", ".###.", "..#..", "....."]).0);
        assert_eq!(shrink(&mut m, w, h), 4);
        assert_eq!(m, parse(&[".....", ".....", "..#..", ".....", "....."]).0);
        assert_eq!(shrink(&mut m, w, h), 1);
        assert!(!m.contains(&1));
        assert_eq!(grow(&mut m, w, h), 0, "nothing grows from nothing");
        // The image's edge is not background: a full mask does not shrink.
        let mut full = vec![1; 12];
        assert_eq!(shrink(&mut full, 4, 3), 0);
    }

    #[test]
    fn keeps_the_pixels_in_a_value_range() {
        let values = [-1000.0, -50.0, 40.0, 80.0, 400.0, 60.0];
        let mut m = vec![1, 1, 1, 1, 1, 0];
        assert_eq!(keep_in_range(&mut m, &values, -100.0, 80.0), 2);
        assert_eq!(
            m,
            [0, 1, 1, 1, 0, 0],
            "ends included, background left alone"
        );
        assert_eq!(keep_in_range(&mut m, &values, f32::NEG_INFINITY, 50.0), 1);
        assert_eq!(m, [0, 1, 1, 0, 0, 0]);
    }

    fn disc(w: usize, cx: f64, cy: f64, r: f64) -> Vec<u8> {
        (0..w * w)
            .map(|i| ((i % w) as f64 - cx).hypot((i / w) as f64 - cy) <= r)
            .map(u8::from)
            .collect()
    }

    #[test]
    fn fills_between_slices_by_shape() {
        // Discs of radius 8 and 20 (the second moved 12 px right) with three empty slices between:
        // radii 11, 14, 17 and centres a quarter, half, three quarters of the way.
        let w = 64;
        let mut s = vec![
            None,
            Some(disc(w, 20.0, 32.0, 8.0)),
            None,
            Some(vec![0; w * w]),
            None,
            Some(disc(w, 32.0, 32.0, 20.0)),
            None,
        ];
        assert_eq!(fill_between(&mut s, w, w, (1.0, 1.0)), 3);
        for (z, r, cx) in [(2, 11.0, 23.0), (3, 14.0, 26.0), (4, 17.0, 29.0)] {
            let m = s[z].as_ref().unwrap();
            let want = disc(w, cx, 32.0, r);
            let differ = m.iter().zip(&want).filter(|(a, b)| a != b).count();
            let area = m.iter().filter(|&&v| v == 1).count() as f64;
            // Only some of the rim's pixels (about 2πr) may differ: 16 of 69–107 here.
            assert!(
                differ as f64 <= 2.0 * std::f64::consts::PI * r / 3.0,
                "slice {z}: {differ} px differ from a disc of radius {r} at x = {cx} (area {area})"
            );
        }
        assert!(s[0].is_none() && s[6].is_none(), "nothing beyond the ends");
        assert_eq!(fill_between(&mut s, w, w, (1.0, 1.0)), 0, "no gap left");
        // Two equal masks fill the gap with copies of themselves.
        let m = disc(w, 30.0, 30.0, 9.5);
        let mut s = vec![Some(m.clone()), None, None, Some(m.clone())];
        assert_eq!(fill_between(&mut s, w, w, (1.0, 1.0)), 2);
        assert!(s.iter().all(|x| x.as_ref() == Some(&m)));
    }

    #[test]
    fn keeps_the_largest_piece_in_a_slice() {
        let (m, w, h) = parse(&[
            "##....", //
            "##..#.", // the 5-px piece wins; diagonal contact does not join pieces
            "...###", //
            "#...#.", //
        ]);
        let mut s = [Some(m)];
        assert_eq!(
            keep_largest(&mut s, w, h),
            Removed {
                pieces: 2,
                pixels: 5
            }
        );
        assert_eq!(
            s[0].as_ref().unwrap(),
            &parse(&["......", "....#.", "...###", "....#."]).0
        );
    }

    #[test]
    fn keeps_the_largest_piece_across_slices() {
        let a = parse(&["#..", "#..", "..."]).0;
        let b = parse(&["#..", "...", "..#"]).0;
        let c = parse(&["...", "...", "..#"]).0;
        // Slices 0–1 join through the top-left corner (3 px); 1–2 through the bottom-right (2 px);
        // slice 4 holds a piece of its own (4 px) after an empty slice 3.
        let far = parse(&["##.", "##.", "..."]).0;
        let mut s = vec![Some(a), Some(b), Some(c), None, Some(far.clone())];
        let r = keep_largest(&mut s, 3, 3);
        assert_eq!(
            r,
            Removed {
                pieces: 2,
                pixels: 5
            }
        );
        assert_eq!(s, vec![None, None, None, None, Some(far)]);
        // Nothing to remove from one piece, or from nothing.
        assert_eq!(keep_largest(&mut s, 3, 3).pieces, 0);
        let mut empty: Vec<Option<Vec<u8>>> = vec![None, Some(vec![0; 9])];
        assert_eq!(
            keep_largest(&mut empty, 3, 3),
            Removed {
                pieces: 0,
                pixels: 0
            }
        );
    }
}
