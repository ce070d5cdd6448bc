//! MedSAM ViT-B's input resize against skimage itself: `tests/reference/skimage_resize.py` ran the
//! official call (`transform.resize(img_3c, …, order=3, preserve_range=True, anti_aliasing=True)
//! .astype(np.uint8)`) on inputs built from the lung2 fixture slice and stored the results.
mod common;

use medseg::imaging::decode::decode_image;
use medseg::imaging::spline::resize_skimage_cubic;

fn png(path: &std::path::Path) -> (usize, usize, Vec<Vec<u8>>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let p = decode_image(&bytes).unwrap();
    let planes = p.planes.iter().map(|g| g.data.clone()).collect();
    (p.width(), p.height(), planes)
}

fn lung2() -> (usize, usize, Vec<u8>) {
    let (w, h, mut planes) = png(&common::shared("fixtures/litemedsam_lung2_z22_image.png"));
    (w, h, planes.remove(0))
}

/// Every value of every channel equal to skimage's.
fn assert_same(ours: &[Vec<u8>], name: &str) {
    let (_, _, want) = png(&common::root()
        .join("tests/reference/skimage_resize")
        .join(name));
    let want: Vec<&Vec<u8>> = if want.len() == 1 {
        vec![&want[0]; 3]
    } else {
        want.iter().collect()
    };
    assert_eq!(ours.len(), want.len());
    for (c, (a, b)) in ours.iter().zip(want).enumerate() {
        assert_eq!(a.len(), b.len());
        let diff = a.iter().zip(b).filter(|(x, y)| x != y).count();
        let max = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as i32 - y as i32).abs())
            .max()
            .unwrap();
        assert_eq!(
            diff, 0,
            "{name}, channel {c}: {diff} values differ (max {max})"
        );
    }
}

#[test]
fn ct_slice_up_to_1024_equals_skimage() {
    let (w, h, grey) = lung2();
    let out = resize_skimage_cubic(&[&grey, &grey, &grey], w, h, 1024, 1024);
    assert_same(&out, "lung2_1024.png");
}

#[test]
fn colour_shrunk_along_x_grown_along_y_equals_skimage() {
    let (w, _, grey) = lung2();
    let crop = |y0: usize, x0: usize| -> Vec<u8> {
        (y0..y0 + 120)
            .flat_map(|y| grey[y * w + x0..y * w + x0 + 300].to_vec())
            .collect()
    };
    let r = crop(100, 50);
    let g = crop(200, 150);
    let b: Vec<u8> = r.iter().map(|v| 255 - v).collect();
    let out = resize_skimage_cubic(&[&r, &g, &b], 300, 120, 128, 200);
    assert_same(&out, "rgb_300x120_to_128x200.png");
}

#[test]
fn strong_shrink_with_anti_aliasing_equals_skimage() {
    let (w, h, grey) = lung2();
    let out = resize_skimage_cubic(&[&grey, &grey, &grey], w, h, 100, 90);
    assert_same(&out, "lung2_100x90.png");
}
