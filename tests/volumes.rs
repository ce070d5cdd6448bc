//! Real volumes: the pyradiomics NRRD scans read by our loader and windowed as the official
//! preprocessing does must equal the volumes the official 3D pipeline saw (fixtures), and a
//! CLI run on a volume slice must give the official mask.

mod common;

use common::*;
use medseg::imaging::volume::read_volume;
use medseg::imaging::window::{self, Window};

fn check_windowed(scan_name: &str, fixture: &str, window: Window) {
    let vol = read_volume(&std::fs::read(scan(scan_name)).unwrap()).unwrap();
    let f = Fixture::load(fixture);
    let shape = f.shape("volume_u8").to_vec();
    let z0: usize = f.meta["z_offset"].parse().unwrap();
    let [w, h, _] = vol.size;
    assert_eq!((shape[2], shape[1]), (w, h), "{scan_name}: slice size");
    let u8s = window::apply(&vol.data, window);
    let want = f.get("volume_u8");
    let n = w * h;
    let got = &u8s[z0 * n..(z0 + shape[0]) * n];
    let differing = got
        .iter()
        .zip(want)
        .filter(|(a, b)| **a as f32 != **b)
        .count();
    assert_eq!(
        differing, 0,
        "{scan_name}: {differing} voxels differ from the official volume"
    );
}

#[test]
fn nrrd_volumes_window_exactly_as_the_official_pipeline() {
    let lung = read_volume(&std::fs::read(scan("lung2_image.nrrd")).unwrap()).unwrap();
    assert_eq!(lung.size, [512, 512, 61]);
    assert!((lung.spacing[0] - 0.6269531).abs() < 1e-6 && lung.spacing[2] == 5.0);
    assert_eq!(lung.origin, [-170.5, -324.5, -359.99999999999989]);
    // The 2D fixture's raw HU slice is slice 22 of this volume.
    let raw = Fixture::load("litemedsam_lung2_z22.safetensors");
    assert_eq!(lung.slice(22).unwrap().data, raw.get("image_raw"));

    let brain = read_volume(&std::fs::read(scan("brain1_image.nrrd")).unwrap()).unwrap();
    assert_eq!(
        brain.direction[1],
        [0.0, -1.0, 0.0],
        "brain1's y axis runs backwards"
    );

    check_windowed(
        "lung2_image.nrrd",
        "litemedsam3d_lung2.safetensors",
        Window::CT_SOFT_TISSUE,
    );
    check_windowed(
        "brain1_image.nrrd",
        "litemedsam3d_brain1.safetensors",
        Window::MrPercentile,
    );
}

#[test]
fn cli_segments_a_slice_of_a_volume_like_the_official_model() {
    let out = std::env::temp_dir().join(format!("medseg-vol-{}.png", std::process::id()));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "segment",
            "--model",
            "models/litemedsam.int8.medseg",
            "--image",
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_medseg"))
            .current_dir(root())
            .args(&args)
            .output()
            .unwrap()
    };
    let lung = scan("lung2_image.nrrd");
    let o = run(&[
        lung.to_str().unwrap(),
        "--slice",
        "22",
        "--box",
        "321,334,392,398",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mask = medseg::imaging::decode::decode_image(&std::fs::read(&out).unwrap())
        .unwrap()
        .luma();
    let official = Fixture::load("litemedsam_lung2_z22.safetensors");
    let a: Vec<bool> = mask.data.iter().map(|&v| v > 0).collect();
    let b: Vec<bool> = official.get("mask").iter().map(|&v| v > 0.5).collect();
    let d = medseg::metrics::dice(&a, &b);
    eprintln!("CLI on lung2_image.nrrd slice 22 (int8): Dice vs official {d:.4}");
    assert!(d >= 0.98, "Dice {d}");

    // A volume without --slice, and a slice past the end, are explained.
    let o = run(&[
        lung.to_str().unwrap(),
        "--box",
        "1,1,9,9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "61 slices");
    assert_clean_failure(&o, "--slice");
    let o = run(&[
        lung.to_str().unwrap(),
        "--slice",
        "61",
        "--box",
        "1,1,9,9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "slice 61 does not exist");
}

#[test]
fn slice_windowing_matches_the_official_2d_inputs() {
    for (name, window) in [
        ("litemedsam_lung2_z22", Window::CT_SOFT_TISSUE),
        ("litemedsam_lung1_z33", Window::CT_SOFT_TISSUE),
        ("litemedsam_brain1_z16", Window::MrPercentile),
    ] {
        let f = Fixture::load(&format!("{name}.safetensors"));
        let got = window::apply(f.get("image_raw"), window);
        let differing = got
            .iter()
            .zip(f.get("image_u8"))
            .filter(|(a, b)| **a as f32 != **b)
            .count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} pixels differ from image_u8"
        );
    }
}

/// `medseg propagate` on the brain1 MR with the official checkpoint: the NIfTI it writes lines
/// up with the scan and holds the official 3D procedure's segmentation; bad boxes are explained.
#[test]
fn cli_propagates_a_box_through_a_volume_and_exports_aligned_nifti() {
    let out = std::env::temp_dir().join(format!("medseg-prop-{}.nii.gz", std::process::id()));
    let scan_path = scan("brain1_image.nrrd");
    let run = |b: &str, out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_medseg"))
            .current_dir(root())
            .args(["propagate", "--model", "models/lite_medsam.pth", "--volume"])
            .arg(&scan_path)
            .args(["--box", b, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let f = Fixture::load("litemedsam3d_brain1.safetensors");
    let b: Vec<String> = f.get("box3d").iter().map(|v| v.to_string()).collect();
    let o = run(&b.join(","), &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let src = read_volume(&std::fs::read(&scan_path).unwrap()).unwrap();
    let labels = read_volume(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(labels.size, src.size);
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
    assert!(close(&labels.spacing, &src.spacing), "{:?}", labels.spacing);
    assert!(close(&labels.origin, &src.origin), "{:?}", labels.origin);
    for axis in 0..3 {
        assert!(close(&labels.direction[axis], &src.direction[axis]));
    }
    // The label volume = the official segmentation inside the slab, nothing outside it.
    let [w, h, _] = src.size;
    let z0: usize = f.meta["z_offset"].parse().unwrap();
    let slab = f.shape("segmentation")[0];
    let (inside, outside) = labels.data.split_at((z0 + slab) * w * h);
    let got: Vec<bool> = inside[z0 * w * h..].iter().map(|&v| v > 0.0).collect();
    let want: Vec<bool> = f.get("segmentation").iter().map(|&v| v > 0.5).collect();
    let d = medseg::metrics::dice(&got, &want);
    eprintln!("CLI propagate brain1 (fp32): 3D Dice vs official {d:.4}\n{stdout}");
    assert!(d >= 0.99, "3D Dice {d}");
    assert!(
        inside[..z0 * w * h]
            .iter()
            .chain(outside)
            .all(|&v| v == 0.0)
    );
    assert!(labels.data.iter().all(|&v| v == 0.0 || v == 1.0));
    // The printed volume is the voxel count times the voxel size.
    let voxels = got.iter().filter(|&&v| v).count();
    let ml = medseg::metrics::volume_ml(voxels, src.spacing);
    assert!(
        stdout.contains(&format!("{voxels} voxels, {ml:.2} mL")),
        "{stdout}"
    );

    let o = run("162,84,11,208,153,60", &out);
    assert_clean_failure(&o, "not inside the volume's 25 slices");
    let o = run("162,84,11,208,153", &out);
    assert_clean_failure(&o, "six numbers");
    let o = run(&b.join(","), std::path::Path::new("labels.png"));
    assert_clean_failure(&o, ".nii.gz");
}
