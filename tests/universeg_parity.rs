//! UniverSeg v1 parity with the official implementation (fixture: official code, seeded random
//! weights in the official layout), through our checkpoint converter and model file.

mod common;

use burn::tensor::Device;
use common::*;
use medseg::imaging::GrayImage;
use medseg::metrics::dice;
use medseg::pipeline::universeg::{Ensemble, SupportItem, UniverSeg};
use medseg::weights::convert::convert_universeg;
use medseg::weights::model_file::Precision;

const N: usize = 128 * 128;

fn checkpoint() -> Vec<u8> {
    std::fs::read(shared("fixtures/universeg_v1_random_seed20261126.pt")).unwrap()
}

fn support(f: &Fixture) -> Vec<SupportItem> {
    let (im, lb) = (f.get("support_images"), f.get("support_labels"));
    (0..im.len() / N)
        .map(|i| SupportItem {
            image: im[i * N..(i + 1) * N].to_vec(),
            label: lb[i * N..(i + 1) * N].to_vec(),
        })
        .collect()
}

fn logits(m: &UniverSeg, target: &[f32], support: &[SupportItem]) -> Vec<f32> {
    let refs: Vec<&SupportItem> = support.iter().collect();
    pollster::block_on(m.logits(target, &refs)).unwrap()
}

fn mask(logits: &[f32]) -> Vec<bool> {
    logits.iter().map(|&v| v > 0.0).collect()
}

fn model(precision: Precision, device: &Device) -> (UniverSeg, usize) {
    let file = convert_universeg(&checkpoint(), precision).unwrap();
    (
        UniverSeg::from_model_file(&file, device).unwrap(),
        file.len(),
    )
}

/// All three fixture outputs on one device, with the support split into chunks of `chunk`.
fn check_parity(device: &Device, label: &str, chunk: usize) {
    let f = Fixture::load("universeg_v1_random_seed20261126.safetensors");
    let (mut m, _) = model(Precision::F32, device);
    m.chunk = chunk;
    let sup = support(&f);

    let out = logits(&m, f.get("target"), &sup);
    let r = rel_max_diff(&out, f.get("logits"));
    assert!(r <= 1e-4, "{label}: logits rel. max diff {r}");

    let tb = f.get("target_batch");
    let lb = f.get("logits_batch");
    for b in 0..2 {
        let out = logits(&m, &tb[b * N..(b + 1) * N], &sup);
        let r = rel_max_diff(&out, &lb[b * N..(b + 1) * N]);
        assert!(r <= 1e-4, "{label}: logits_batch[{b}] rel. max diff {r}");
    }

    let out = logits(&m, f.get("target"), &sup[..1]);
    let r = rel_max_diff(&out, f.get("logits_support1"));
    assert!(r <= 1e-4, "{label}: logits_support1 rel. max diff {r}");
    eprintln!("{label}: parity ok (chunk {chunk})");
}

#[test]
fn fp32_parity_on_cpu_whole_and_chunked_support() {
    check_parity(&cpu(), "flex", 16);
    check_parity(&cpu(), "flex", 2);
}

#[test]
fn fp32_parity_on_wgpu() {
    check_parity(&wgpu(), "wgpu", 3);
}

#[test]
fn int8_file_is_small_and_agrees_with_fp32() {
    let f = Fixture::load("universeg_v1_random_seed20261126.safetensors");
    let (m32, size32) = model(Precision::F32, &cpu());
    let (m8, size8) = model(Precision::Int8, &cpu());
    let sup = support(&f);
    let (a, b) = (
        logits(&m32, f.get("target"), &sup),
        logits(&m8, f.get("target"), &sup),
    );
    let d = dice(&mask(&a), &mask(&b));
    eprintln!(
        "int8 {size8} bytes (fp32 {size32}); mask Dice vs fp32 {d:.4}; logits rel. diff {:.2e}",
        rel_max_diff(&b, &a)
    );
    assert!(size8 <= 1_500_000, "int8 model file is {size8} bytes");
    assert!(d >= 0.98, "int8 vs fp32 mask Dice {d}");
}

#[test]
fn ensemble_of_whole_set_equals_single_prediction_and_subsets_differ() {
    let f = Fixture::load("universeg_v1_random_seed20261126.safetensors");
    let (m, _) = model(Precision::F32, &cpu());
    let sup = support(&f);
    let single =
        pollster::block_on(m.probabilities(f.get("target"), &sup, &Ensemble::default())).unwrap();
    let reference: Vec<f32> = f
        .get("logits")
        .iter()
        .map(|&l| 1.0 / (1.0 + (-l).exp()))
        .collect();
    assert!(rel_max_diff(&single, &reference) <= 1e-4);
    let ens = Ensemble {
        members: 3,
        subset: 2,
        seed: 1,
    };
    let a = pollster::block_on(m.probabilities(f.get("target"), &sup, &ens)).unwrap();
    let b = pollster::block_on(m.probabilities(f.get("target"), &sup, &ens)).unwrap();
    assert_eq!(a, b, "same seed, same ensemble");
    assert!(
        rel_max_diff(&a, &single) > 1e-4,
        "subsets should change the prediction"
    );
}

#[test]
fn bad_inputs_give_clear_errors() {
    let f = Fixture::load("universeg_v1_random_seed20261126.safetensors");
    let (m, _) = model(Precision::F32, &cpu());
    let err = |r: medseg::Result<Vec<f32>>| r.unwrap_err().to_string();

    let e = err(pollster::block_on(m.logits(f.get("target"), &[])));
    assert!(e.contains("support set is empty"), "{e}");

    let small = SupportItem {
        image: vec![0.0; 64 * 64],
        label: vec![0.0; 64 * 64],
    };
    let e = err(pollster::block_on(m.logits(f.get("target"), &[&small])));
    assert!(e.contains("support item 1 is not 128×128"), "{e}");

    // Pairs of different sizes are resized to the model's; an image and its mask must agree.
    let img = |w, h| GrayImage::new(w, h, vec![100; w * h]);
    let mut mk = GrayImage::new(40, 30, vec![0; 1200]);
    mk.data[5] = 255;
    assert!(m.prepare_pair(&img(40, 30), &mk).is_ok());
    assert!(
        m.prepare_pair(&img(300, 200), &GrayImage::new(300, 200, vec![1; 60000]))
            .is_ok()
    );
    let e = m.prepare_pair(&img(40, 31), &mk).unwrap_err().to_string();
    assert!(e.contains("same size"), "{e}");
    mk.data[6] = 128;
    let e = m.prepare_pair(&img(40, 30), &mk).unwrap_err().to_string();
    assert!(e.contains("not binary"), "{e}");

    // A MedSAM checkpoint given as UniverSeg weights (the reverse is in medsam_parity).
    let e = convert_universeg(&lite_medsam_pth(), Precision::Int8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a UniverSeg checkpoint"), "{e}");
    // A MedSAM model file given to UniverSeg.
    let medsam_file = std::fs::read(root().join("models/litemedsam.int8.medseg")).unwrap();
    let e = UniverSeg::from_model_file(&medsam_file, &cpu())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds litemedsam, not universeg_v1"), "{e}");
}
