//! LiteMedSAM and SAM-ViT parity with the official implementation (fixtures computed with the
//! official code on real CT/MR slices and real weights).

mod common;

use burn::tensor::Device;
use common::*;
use medseg::imaging::GrayImage;
use medseg::imaging::decode::Planes;
use medseg::metrics::dice;
use medseg::models::sam::SamArch;
use medseg::models::sam::tiny_vit::TinyVitConfig;
use medseg::pipeline::medsam::{MedSam, UserPrompt};
use medseg::weights::model_file::{self, Precision};
use medseg::weights::{self, convert::convert_sam, torch};

const SLICES: [&str; 3] = [
    "litemedsam_lung2_z22",
    "litemedsam_brain1_z16",
    "litemedsam_lung1_z33",
];

fn lite_arch() -> SamArch {
    SamArch::LiteMedsam(TinyVitConfig::lite_medsam())
}

fn image_of(f: &Fixture) -> Planes {
    let s = f.shape("image_u8");
    Planes::gray(GrayImage::new(
        s[1],
        s[0],
        f.get("image_u8").iter().map(|&v| v as u8).collect(),
    ))
}

fn bools(v: &[f32]) -> Vec<bool> {
    v.iter().map(|&x| x > 0.5).collect()
}

fn official_box(f: &Fixture) -> [f32; 4] {
    f.get("box").try_into().unwrap()
}

/// Full parity check of one model on one device, returning (Dice vs official, Dice vs truth) per slice.
fn check_fp32(m: &MedSam, label: &str) -> Vec<(f64, f64)> {
    let mut out = vec![];
    for (i, name) in SLICES.iter().enumerate() {
        let f = Fixture::load(&format!("{name}.safetensors"));
        let img = image_of(&f);

        let (input, _) = m.preprocess(&img).unwrap();
        let d = input
            .iter()
            .zip(f.get("input_256"))
            .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        assert!(d <= 1e-6, "{label} {name}: preprocessing differs by {d}");

        let emb = m.embed(&img).unwrap();
        let e = weights::to_host(emb.tensor.clone()).unwrap();
        let r = rel_max_diff(&e, f.get("image_embedding"));
        assert!(r <= 1e-3, "{label} {name}: embedding rel. max diff {r}");

        let prompt = m
            .model_prompt(&emb, &UserPrompt::from_box(official_box(&f)))
            .unwrap();
        assert_eq!(
            prompt.bbox.unwrap().to_vec(),
            f.get("box_256"),
            "{name}: box scaling"
        );
        let sparse = m.model.prompt_encoder.sparse(&prompt);
        let rs = rel_max_diff(&sparse.data, f.get("sparse_embedding"));
        assert!(
            rs <= 1e-5,
            "{label} {name}: sparse embedding rel. diff {rs}"
        );

        // The first prompt on an embedding runs the whole decoder; the second and later reuse
        // its image-only part (computed at the second): all three must match the official. On
        // the first slice that part is prepared ahead of the first prompt, as the app does.
        if i == 0 {
            m.prepare_prompts(&emb);
        }
        let predict = || {
            pollster::block_on(m.predict(&emb, &UserPrompt::from_box(official_box(&f)))).unwrap()
        };
        let pred = predict();
        let rl = rel_max_diff(&pred.low_res_logits, f.get("low_res_logits"));
        assert!(
            rl <= 1e-3,
            "{label} {name}: low-res logits rel. max diff {rl}"
        );
        for k in [2, 3] {
            let later = predict();
            let rk = rel_max_diff(&later.low_res_logits, f.get("low_res_logits"));
            assert!(
                rk <= 1e-3,
                "{label} {name}: prompt {k}'s low-res logits rel. max diff {rk}"
            );
            assert_eq!(later.mask, pred.mask, "{label} {name}: prompt {k}'s mask");
        }
        let iou_ref = f.get("iou_pred")[0];
        assert!(
            (pred.iou - iou_ref).abs() < 1e-3,
            "{name}: iou {} vs {iou_ref}",
            pred.iou
        );

        let mask: Vec<bool> = pred.mask.iter().map(|&v| v > 0).collect();
        let d_off = dice(&mask, &bools(f.get("mask")));
        let d_gt = dice(&mask, &bools(f.get("ground_truth")));
        eprintln!(
            "{label} {name}: emb {r:.2e} logits {rl:.2e} Dice vs official {d_off:.4} vs truth {d_gt:.4}"
        );
        assert!(
            d_off >= 0.995,
            "{label} {name}: Dice vs official mask {d_off}"
        );
        out.push((d_off, d_gt));
    }
    out
}

fn fp32_model(device: &Device) -> MedSam {
    let sd = torch::read_state_dict(&lite_medsam_pth()).unwrap();
    MedSam::from_state_dict(&sd, &lite_arch(), device).unwrap()
}

#[test]
fn litemedsam_fp32_matches_official_on_cpu() {
    check_fp32(&fp32_model(&cpu()), "cpu");
}

#[test]
fn litemedsam_fp32_matches_official_on_wgpu() {
    check_fp32(&fp32_model(&wgpu()), "wgpu");
}

#[test]
fn litemedsam_int8_model_file_keeps_accuracy() {
    let ckpt = lite_medsam_pth();
    let bytes = lite_medsam_int8();
    eprintln!("int8 model file: {} bytes", bytes.len());
    assert!(
        bytes.len() <= 11_000_000,
        "int8 LiteMedSAM file is {} bytes",
        bytes.len()
    );
    let (header, _) = model_file::read_header(&bytes).unwrap();
    assert_eq!(header.source_sha256, model_file::sha256_hex(&ckpt));

    let m = MedSam::from_model_file(&bytes, &cpu()).unwrap();
    let official_vs_truth = [0.945, 0.848, 0.655];
    for (name, off_gt) in SLICES.iter().zip(official_vs_truth) {
        let f = Fixture::load(&format!("{name}.safetensors"));
        let emb = m.embed(&image_of(&f)).unwrap();
        let pred =
            pollster::block_on(m.predict(&emb, &UserPrompt::from_box(official_box(&f)))).unwrap();
        let mask: Vec<bool> = pred.mask.iter().map(|&v| v > 0).collect();
        let d_off = dice(&mask, &bools(f.get("mask")));
        let d_gt = dice(&mask, &bools(f.get("ground_truth")));
        eprintln!(
            "int8 {name}: Dice vs official {d_off:.4}, vs truth {d_gt:.4} (official {off_gt})"
        );
        assert!(d_off >= 0.98, "{name}: int8 Dice vs official {d_off}");
        assert!(
            (d_gt - off_gt).abs() <= 0.01,
            "{name}: int8 Dice vs truth {d_gt}, official {off_gt}"
        );
    }
}

/// The shipped file's calibrated rounding (GPTQ on other scans) keeps the image embeddings of
/// the fixture slices (brain1, lung2: not calibrated on) far closer to fp32 than rounding each
/// weight to its nearest step does, with the same groups and the same file size.
#[test]
fn calibrated_int8_embeddings_stay_closer_to_fp32() {
    let fp32 = fp32_model(&cpu());
    let plain = convert_sam(&lite_medsam_pth(), &lite_arch(), Precision::Int8, &[]).unwrap();
    let shipped = lite_medsam_int8();
    assert_eq!(plain.len(), shipped.len(), "same layout, same size");
    let plain = MedSam::from_model_file(&plain, &cpu()).unwrap();
    let shipped = MedSam::from_model_file(&shipped, &cpu()).unwrap();
    for name in &SLICES[..2] {
        let img = image_of(&Fixture::load(&format!("{name}.safetensors")));
        let want = fp32.embed(&img).unwrap().tensor;
        let rel = |m: &MedSam| -> f32 {
            let got = m.embed(&img).unwrap().tensor;
            let err: f32 = (got - want.clone()).powi_scalar(2).sum().into_scalar();
            let norm: f32 = want.clone().powi_scalar(2).sum().into_scalar();
            (err / norm).sqrt()
        };
        let (p, c) = (rel(&plain), rel(&shipped));
        eprintln!(
            "{name}: embedding off fp32 by {:.2} % calibrated, {:.2} % plain",
            c * 100.0,
            p * 100.0
        );
        assert!(c < 0.5 * p, "{name}: calibrated {c}, plain {p}");
    }
}

#[test]
fn fp32_model_file_round_trips_exactly() {
    let sd = torch::read_state_dict(&lite_medsam_pth()).unwrap();
    let bytes = convert_sam(&lite_medsam_pth(), &lite_arch(), Precision::F32, &[]).unwrap();
    let (_, back) = model_file::read(&bytes, "litemedsam").unwrap();
    for (k, t) in &back {
        assert_eq!(&sd[k], t, "{k}");
    }
    // Only the unused mask-prompt branch and BatchNorm step counters are left out.
    let left: Vec<&String> = sd.keys().filter(|k| !back.contains_key(*k)).collect();
    assert!(
        left.iter()
            .all(|k| k.contains("mask_downscaling") || k.ends_with("num_batches_tracked")),
        "{left:?}"
    );
}

#[test]
fn sam_vit_small_matches_official() {
    for (label, device) in [("cpu", cpu()), ("wgpu", wgpu())] {
        let (out, official) = sam_vit_small_embedding(&device);
        let r = rel_max_diff(&out, &official);
        eprintln!("SAM ViT small on {label}: rel. max diff {r:.2e}");
        assert!(r <= 1e-3, "{label}: rel. max diff {r}");
    }
}

#[test]
fn wrong_and_damaged_checkpoints_are_named() {
    let universeg = std::fs::read(shared("fixtures/universeg_v1_random_seed20261126.pt")).unwrap();
    let e = convert_sam(&universeg, &lite_arch(), Precision::Int8, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a LiteMedSAM checkpoint"), "{e}");

    let vit_small = std::fs::read(shared("fixtures/sam_vit_small_random_seed7.pt")).unwrap();
    let e = convert_sam(&vit_small, &lite_arch(), Precision::Int8, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("LiteMedSAM") && e.contains("missing"), "{e}");

    let ckpt = lite_medsam_pth();
    let e = convert_sam(&ckpt[..ckpt.len() / 2], &lite_arch(), Precision::Int8, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("damaged") || e.contains("truncated"), "{e}");
    let e = convert_sam(
        b"definitely not a checkpoint",
        &lite_arch(),
        Precision::Int8,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a PyTorch checkpoint"), "{e}");
}

#[test]
fn bad_prompts_are_rejected_clearly() {
    let m = fp32_model(&cpu());
    let f = Fixture::load("litemedsam_brain1_z16.safetensors");
    let emb = m.embed(&image_of(&f)).unwrap();
    for (b, want) in [
        ([300.0, 300.0, 400.0, 400.0], "outside"),
        ([-50.0, -50.0, -10.0, -10.0], "outside"),
        ([100.0, 100.0, 100.0, 150.0], "empty"),
        ([120.0, 100.0, 90.0, 150.0], "empty"),
        ([f32::NAN, 0.0, 10.0, 10.0], "numbers"),
    ] {
        let e = pollster::block_on(m.predict(&emb, &UserPrompt::from_box(b)))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{b:?}: {e}");
    }
    // A box hanging over the border is clipped, not refused.
    let ok =
        pollster::block_on(m.predict(&emb, &UserPrompt::from_box([150.0, 70.0, 400.0, 130.0])));
    assert!(ok.is_ok());
}
