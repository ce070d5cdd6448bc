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

fn assert_clean_failure(out: &Output, want: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(want), "stderr should mention {want:?}: {err}");
}

#[test]
fn segments_a_ct_slice_and_evaluates_it() {
    let out_mask = tmp("lung2.png");
    let img = shared("fixtures/litemedsam_lung2_z22_image.png");
    let out = medseg(&[
        "segment",
        "--model",
        &model(),
        "--image",
        s(&img),
        "--box",
        "321,334,392,398",
        "--out",
        s(&out_mask),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let official = shared("fixtures/litemedsam_lung2_z22_official_mask.png");
    let out = medseg(&["eval", "--pred", s(&out_mask), "--gt", s(&official)]);
    let text = String::from_utf8_lossy(&out.stdout);
    let dsc: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("DSC "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(dsc >= 0.995, "CLI mask vs official: {text}");
    assert!(text.contains("NSD"), "{text}");
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
}

#[test]
fn help_explains_the_commands() {
    let out = medseg(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["convert", "segment", "eval", "bench"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}
