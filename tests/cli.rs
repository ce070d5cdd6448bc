//! The `medseg` command line: real segmentation through the binary, and clear errors (non-zero
//! exit, a message, never a panic) for bad input.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Output};

fn medseg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medseg"))
        .args(args)
        .output()
        .expect("run medseg")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("medseg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn s(p: &PathBuf) -> &str {
    p.to_str().unwrap()
}

fn model() -> String {
    let p = root().join("models/lite_medsam.pth");
    assert!(p.exists(), "run scripts/fetch-weights.sh first");
    p.to_string_lossy().into_owned()
}

#[test]
fn segments_a_ct_slice_and_evaluates_it() {
    let img = shared("fixtures/litemedsam_lung2_z22_image.png");
    let official = shared("fixtures/litemedsam_lung2_z22_official_mask.png");
    // The CPU in f32, and a GPU computing in f16 (lavapipe has `shader-f16`).
    for (backend, min_dsc) in [("cpu", 0.995), ("wgpu-f16", 0.98)] {
        let out_mask = tmp(&format!("lung2-{backend}.png"));
        let out = medseg(&[
            "segment",
            "--model",
            &model(),
            "--image",
            s(&img),
            "--box",
            "321,334,392,398",
            "--backend",
            backend,
            "--out",
            s(&out_mask),
        ]);
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = medseg(&["eval", "--pred", s(&out_mask), "--gt", s(&official)]);
        let text = String::from_utf8_lossy(&out.stdout);
        let dsc: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("DSC "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(dsc >= min_dsc, "{backend}: CLI mask vs official: {text}");
        assert!(text.contains("NSD"), "{text}");
    }
}

fn segment(model: &str, image: &str, bbox: &str, out: &str) -> Output {
    medseg(&[
        "segment", "--model", model, "--image", image, "--box", bbox, "--out", out,
    ])
}

#[test]
fn bad_input_fails_cleanly() {
    let img = shared("fixtures/litemedsam_lung2_z22_image.png");
    let out_mask = tmp("never.png");
    let not_png = tmp("notes.png");
    std::fs::write(&not_png, b"just some text").unwrap();
    let universeg = shared("fixtures/universeg_v1_random_seed20261126.pt");
    let (m, i, o) = (model(), s(&img).to_owned(), s(&out_mask).to_owned());
    let cases: [(&str, &str, &str, &str); 6] = [
        (&m, s(&not_png), "1,1,9,9", "cannot read image"),
        (&m, &i, "600,600,700,700", "outside"),
        (&m, &i, "40,40,40,90", "empty"),
        (s(&universeg), &i, "1,1,9,9", "not a LiteMedSAM checkpoint"),
        (&m, &i, "1,2,3", "x0,y0,x1,y1"),
        ("/nonexistent/model.medseg", &i, "1,1,9,9", "cannot read"),
    ];
    for (model, image, bbox, want) in cases {
        assert_clean_failure(&segment(model, image, bbox, &o), want);
    }
    assert!(!out_mask.exists(), "no mask may be written on failure");

    // Calibration scans that are not volumes, or for a model that takes none.
    let out_model = tmp("never.medseg");
    let convert = |ck: &str, arch: &str, scan: &str| {
        let args = [
            "convert",
            "--checkpoint",
            ck,
            "--arch",
            arch,
            "--out",
            s(&out_model),
        ];
        medseg(&[&args[..], &["--calibrate", scan]].concat())
    };
    let scan = scan("brain2_image.nrrd");
    assert_clean_failure(&convert(&m, "litemedsam", s(&not_png)), "--calibrate");
    assert_clean_failure(
        &convert(s(&universeg), "universeg", s(&scan)),
        "MedSAM models only",
    );
    assert!(!out_model.exists(), "no model may be written on failure");
}

#[test]
fn help_explains_the_commands() {
    let out = medseg(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["convert", "segment", "universeg", "genseg", "eval", "bench"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

/// Writes the UniverSeg fixture's support set and target as 8-bit PNGs into `dir`.
fn universeg_pngs(dir: &std::path::Path) -> Fixture {
    use medseg::imaging::{GrayImage, decode::encode_gray_png};
    const N: usize = 128 * 128;
    let f = Fixture::load("universeg_v1_random_seed20261126.safetensors");
    std::fs::create_dir_all(dir).unwrap();
    let png = |v: &[f32], scale: f32, name: &str| {
        let px = v.iter().map(|&x| (x * scale).round() as u8).collect();
        let bytes = encode_gray_png(&GrayImage::new(128, 128, px)).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let (im, lb) = (f.get("support_images"), f.get("support_labels"));
    for i in 0..im.len() / N {
        png(&im[i * N..(i + 1) * N], 255.0, &format!("s{i}_image.png"));
        png(&lb[i * N..(i + 1) * N], 255.0, &format!("s{i}_mask.png"));
    }
    png(f.get("target"), 255.0, "target.png");
    f
}

fn read_mask(p: &std::path::Path) -> Vec<bool> {
    let img = medseg::imaging::decode::decode_image(&std::fs::read(p).unwrap())
        .unwrap()
        .luma();
    img.data.iter().map(|&v| v > 0).collect()
}

#[test]
fn universeg_segments_from_a_folder_of_pairs() {
    let dir = tmp("universeg/support");
    let f = universeg_pngs(&dir);
    let weights = shared("fixtures/universeg_v1_random_seed20261126.pt");
    let out_mask = tmp("universeg/target_mask.png");
    let run = |query: &PathBuf, out: &PathBuf| {
        let o = medseg(&[
            "universeg",
            "--weights",
            s(&weights),
            "--support",
            s(&dir),
            "--query",
            s(query),
            "--out",
            s(out),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&dir.join("target.png"), &out_mask);
    let mask = read_mask(&out_mask);
    let official: Vec<bool> = f.get("logits").iter().map(|&v| v > 0.0).collect();
    // The PNGs round the fixture's float inputs to 8 bits; the random-weight logits sit
    // close to 0, so a few pixels flip.
    let d = medseg::metrics::dice(&official, &mask);
    eprintln!("UniverSeg CLI mask vs official (float inputs): Dice {d:.4}");
    assert!(d >= 0.95, "Dice {d}");

    // A folder of queries writes one mask per image, the same as the single run.
    let out_dir = tmp("universeg/out");
    run(&dir, &out_dir);
    assert_eq!(read_mask(&out_dir.join("target_mask.png")), mask);
    assert!(out_dir.join("s0_image_mask.png").exists());
}

#[test]
fn universeg_bad_input_fails_cleanly() {
    let good = tmp("universeg-bad/good");
    universeg_pngs(&good);
    let weights = shared("fixtures/universeg_v1_random_seed20261126.pt");
    let target = good.join("target.png");
    let empty = tmp("universeg-bad/empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mixed = tmp("universeg-bad/mixed");
    universeg_pngs(&mixed);
    std::fs::copy(
        shared("fixtures/litemedsam_lung2_z22_gt.png"),
        mixed.join("s1_mask.png"),
    )
    .unwrap();
    let grey = tmp("universeg-bad/grey");
    universeg_pngs(&grey);
    std::fs::copy(grey.join("s2_image.png"), grey.join("s2_mask.png")).unwrap();
    let lite = model();
    let out = s(&tmp("universeg-bad/never.png")).to_owned();
    let cases = [
        (lite.as_str(), s(&good), "not a UniverSeg checkpoint"),
        (s(&weights), s(&empty), "no support pairs"),
        (
            s(&weights),
            s(&mixed),
            "input: support pair s1: the mask is 512×512",
        ),
        (
            s(&weights),
            s(&grey),
            "input: support pair s2: the mask is not binary",
        ),
    ];
    for (w, support, want) in cases {
        let o = medseg(&[
            "universeg",
            "--weights",
            w,
            "--support",
            support,
            "--query",
            s(&target),
            "--out",
            &out,
        ]);
        assert_clean_failure(&o, want);
    }
}

#[test]
fn genseg_trains_generates_and_segments_from_folders() {
    let dir = tmp("genseg/pairs");
    universeg_pngs(&dir);
    let weights = tmp("genseg/genseg.medseg");
    let log = tmp("genseg/losses.csv");
    let out = medseg(&[
        "genseg",
        "train",
        "--pairs",
        s(&dir),
        "--out",
        s(&weights),
        "--size",
        "32",
        "--width",
        "4",
        "--iterations",
        "6",
        "--log",
        s(&log),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("5 pairs: 4 to train on, 1 held out"),
        "{text}"
    );
    assert!(text.contains("up-convolution mix per level"), "{text}");
    // One CSV row per iteration, every loss finite.
    let csv = std::fs::read_to_string(&log).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|r| r
            .split(',')
            .skip(1)
            .all(|v| v.parse::<f32>().unwrap().is_finite())),
        "{csv}"
    );

    let synth = tmp("genseg/synthetic");
    let out = medseg(&[
        "genseg",
        "generate",
        "--model",
        s(&weights),
        "--masks",
        s(&dir),
        "--count",
        "3",
        "--out",
        s(&synth),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in 0..3 {
        let m = read_mask(&synth.join(format!("synth_{k:03}_mask.png")));
        assert_eq!(m.len(), 32 * 32);
        assert!(m.iter().any(|&v| v), "synthetic mask {k} is empty");
        assert!(synth.join(format!("synth_{k:03}_image.png")).exists());
    }
    // The synthetic folder is itself a valid pair folder (e.g. a UniverSeg support set).
    let mask = tmp("genseg/target_mask.png");
    let out = medseg(&[
        "genseg",
        "segment",
        "--model",
        s(&weights),
        "--image",
        s(&dir.join("target.png")),
        "--out",
        s(&mask),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_mask(&mask).len(), 128 * 128);
}

#[test]
fn genseg_bad_input_fails_cleanly() {
    let dir = tmp("genseg-bad/pairs");
    universeg_pngs(&dir);
    for k in 1..5 {
        std::fs::remove_file(dir.join(format!("s{k}_image.png"))).unwrap();
        std::fs::remove_file(dir.join(format!("s{k}_mask.png"))).unwrap();
    }
    let w = tmp("genseg-bad/w.medseg");
    let not_model = dir.join("s0_image.png");
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "genseg",
                "train",
                "--pairs",
                s(&dir),
                "--out",
                s(&w),
                "--size",
                "32",
            ],
            "at least 2 labelled pairs",
        ),
        (
            &[
                "genseg",
                "train",
                "--pairs",
                s(&dir),
                "--out",
                s(&w),
                "--size",
                "48",
            ],
            "size must be 32, 64, 128 or 256",
        ),
        (
            &[
                "genseg",
                "generate",
                "--model",
                s(&not_model),
                "--masks",
                s(&dir),
                "--out",
                s(&w),
            ],
            "model file",
        ),
        (
            &["genseg", "train", "--pairs", "/nonexistent", "--out", s(&w)],
            "cannot read folder",
        ),
    ];
    for (args, want) in cases {
        let out = medseg(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
