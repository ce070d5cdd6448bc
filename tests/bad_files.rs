//! The bad-file corpus (`tests/corpus/bad`, written by `make_bad.py`, one file per failure
//! mode): each gives its own specific error through the library and through the CLI — a
//! non-zero exit and a message, never a panic. The browser e2e feeds the same files to the page.

mod common;

use common::*;
use medseg::pipeline::medsam::MedSam;
use std::path::PathBuf;
use std::process::Command;

struct Case {
    file: String,
    kind: String,
    /// Alternatives separated by `|`: the message must contain one of them.
    expect: String,
}

fn corpus() -> (PathBuf, Vec<Case>) {
    let dir = root().join("tests/corpus/bad");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            file: c["file"].as_str().unwrap().into(),
            kind: c["kind"].as_str().unwrap().into(),
            expect: c["expect"].as_str().unwrap().into(),
        })
        .collect();
    (dir, cases)
}

fn mentions(msg: &str, expect: &str) -> bool {
    expect.split('|').any(|alt| msg.contains(alt))
}

/// The library's message for one file, read the way its kind is read in the app.
fn library_error(case: &Case, bytes: &[u8]) -> Option<String> {
    let err = |r: Result<(), medseg::Error>| r.err().map(|e| e.to_string());
    match case.kind.as_str() {
        "image" => err(medseg::imaging::decode::decode_image(bytes).map(|_| ())),
        "volume" => err(medseg::imaging::volume::read_volume(bytes).map(|_| ())),
        "model" => err(MedSam::from_model_file(bytes, &cpu()).map(|_| ())),
        "checkpoint" => err(medseg::weights::torch::read_state_dict(bytes).map(|_| ())),
        "zip" => err(medseg::archive::read_zip(bytes).map(|_| ())),
        k => panic!("unknown kind {k}"),
    }
}

#[test]
fn each_bad_file_has_its_own_clear_error_in_the_library() {
    let (dir, cases) = corpus();
    assert!(cases.len() >= 30, "the corpus has {} files", cases.len());
    let mut failures = vec![];
    for case in &cases {
        let bytes = std::fs::read(dir.join(&case.file)).unwrap();
        let got = std::panic::catch_unwind(|| library_error(case, &bytes));
        match got {
            Ok(Some(msg)) if mentions(&msg, &case.expect) => {
                println!("{:28} {msg}", case.file)
            }
            Ok(Some(msg)) => {
                failures.push(format!("{}: {msg:?} lacks {:?}", case.file, case.expect))
            }
            Ok(None) => failures.push(format!("{}: accepted", case.file)),
            Err(_) => failures.push(format!("{}: panicked", case.file)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_bad_file_fails_cleanly_in_the_cli() {
    let (dir, cases) = corpus();
    let model = root().join("models/litemedsam.int8.medseg");
    assert!(model.exists(), "run the README's set-up first (models/)");
    let image = shared("fixtures/litemedsam_lung2_z22_image.png");
    let out = std::env::temp_dir().join(format!("medseg-bad-{}.png", std::process::id()));
    for case in cases.iter().filter(|c| c.kind != "zip") {
        let file = dir.join(&case.file);
        let (m, i) = match case.kind.as_str() {
            "model" | "checkpoint" => (&file, &image),
            _ => (&model, &file),
        };
        let mut args = vec!["segment", "--model", m.to_str().unwrap()];
        args.extend(["--image", i.to_str().unwrap(), "--box", "1,1,9,9"]);
        args.extend(["--out", out.to_str().unwrap()]);
        if case.kind == "volume" {
            args.extend(["--slice", "0"]);
        }
        let o = Command::new(env!("CARGO_BIN_EXE_medseg"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{}: accepted", case.file);
        assert!(!err.contains("panicked"), "{}: panicked: {err}", case.file);
        assert!(
            mentions(&err, &case.expect),
            "{}: {err:?} lacks {:?}",
            case.file,
            case.expect
        );
        assert!(!out.exists(), "{}: a mask was written", case.file);
    }
}
