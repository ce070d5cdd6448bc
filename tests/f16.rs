//! The models computing in f16 on a wgpu adapter with `shader-f16` (lavapipe has it), as the
//! app does on such GPUs: LiteMedSAM (checkpoint and the shipped int8 file) against the official
//! masks, SAM's ViT and UniverSeg against the official outputs, GenSeg's segmenter against f32. One device for
//! the whole binary: a device's float type is fixed before its first tensor.

mod common;

use std::sync::OnceLock;

use burn::tensor::{DType, Device};
use common::*;
use medseg::genseg::nets::NetConfig;
use medseg::genseg::{Pair, TrainConfig, Trainer};
use medseg::imaging::GrayImage;
use medseg::imaging::decode::Planes;
use medseg::metrics::dice;
use medseg::models::compute_in_f16;
use medseg::models::sam::SamArch;
use medseg::models::sam::tiny_vit::TinyVitConfig;
use medseg::pipeline::medsam::{MedSam, UserPrompt};
use medseg::pipeline::universeg::{SupportItem, UniverSeg};
use medseg::weights::convert::convert_universeg;
use medseg::weights::model_file::Precision;
use medseg::weights::torch;

fn f16_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut d = wgpu();
            assert!(compute_in_f16(&mut d), "lavapipe has shader-f16");
            assert!(!compute_in_f16(&mut d), "a device's float type is set once");
            d
        })
        .clone()
}

fn bools(v: &[f32]) -> Vec<bool> {
    v.iter().map(|&x| x > 0.5).collect()
}

/// Each fixture slice segmented from its official box: Dice vs the official mask ≥ `min_dice`,
/// vs the ground truth within 0.02 of the official's.
fn check_litemedsam(m: &MedSam, label: &str, min_dice: f64) {
    let official_vs_truth = [0.945, 0.848, 0.655];
    for (name, off_gt) in [
        "litemedsam_lung2_z22",
        "litemedsam_brain1_z16",
        "litemedsam_lung1_z33",
    ]
    .into_iter()
    .zip(official_vs_truth)
    {
        let f = Fixture::load(&format!("{name}.safetensors"));
        let s = f.shape("image_u8");
        let pixels = f.get("image_u8").iter().map(|&v| v as u8).collect();
        let emb = m
            .embed(&Planes::gray(GrayImage::new(s[1], s[0], pixels)))
            .unwrap();
        assert_eq!(
            emb.tensor.dtype(),
            DType::F16,
            "{label}: the embedding is f16"
        );
        let bx: [f32; 4] = f.get("box").try_into().unwrap();
        let pred = pollster::block_on(m.predict(&emb, &UserPrompt::from_box(bx))).unwrap();
        let mask: Vec<bool> = pred.mask.iter().map(|&v| v > 0).collect();
        let d_off = dice(&mask, &bools(f.get("mask")));
        let d_gt = dice(&mask, &bools(f.get("ground_truth")));
        let rl = rel_max_diff(&pred.low_res_logits, f.get("low_res_logits"));
        eprintln!(
            "{label} {name}: logits rel. max diff {rl:.2e}, IoU {:.3} (official {:.3}), Dice vs official {d_off:.4}, vs truth {d_gt:.4} (official {off_gt})",
            pred.iou,
            f.get("iou_pred")[0]
        );
        assert!(
            d_off >= min_dice,
            "{label} {name}: Dice vs official {d_off}"
        );
        assert!(
            (d_gt - off_gt).abs() <= 0.02,
            "{label} {name}: Dice vs truth {d_gt}, official {off_gt}"
        );
    }
}

#[test]
fn litemedsam_in_f16_keeps_the_official_masks() {
    let dev = f16_device();
    let arch = SamArch::LiteMedsam(TinyVitConfig::lite_medsam());
    let ckpt = lite_medsam_pth();
    let sd = torch::read_state_dict(&ckpt).unwrap();
    check_litemedsam(
        &MedSam::from_state_dict(&sd, &arch, &dev).unwrap(),
        "f16",
        0.98,
    );
    // What the app runs on such a GPU: the int8 file, computed in f16.
    check_litemedsam(
        &MedSam::from_model_file(&lite_medsam_int8(), &dev).unwrap(),
        "int8 in f16",
        0.98,
    );
}

#[test]
fn universeg_in_f16_keeps_the_official_masks() {
    const N: usize = 128 * 128;
    let f = Fixture::load("universeg_v1_random_seed20261126.safetensors");
    let (im, lb) = (f.get("support_images"), f.get("support_labels"));
    let support: Vec<SupportItem> = (0..im.len() / N)
        .map(|i| SupportItem {
            image: im[i * N..(i + 1) * N].to_vec(),
            label: lb[i * N..(i + 1) * N].to_vec(),
        })
        .collect();
    let refs: Vec<&SupportItem> = support.iter().collect();
    let ckpt = std::fs::read(shared("fixtures/universeg_v1_random_seed20261126.pt")).unwrap();
    let file = convert_universeg(&ckpt, Precision::F32).unwrap();
    let m = UniverSeg::from_model_file(&file, &f16_device()).unwrap();
    let out = pollster::block_on(m.logits(f.get("target"), &refs)).unwrap();
    let official = f.get("logits");
    let d = dice(
        &out.iter().map(|&v| v > 0.0).collect::<Vec<_>>(),
        &official.iter().map(|&v| v > 0.0).collect::<Vec<_>>(),
    );
    let r = rel_max_diff(&out, official);
    eprintln!("UniverSeg in f16: logits rel. max diff {r:.2e}, mask Dice vs official {d:.4}");
    assert!(d >= 0.98, "UniverSeg f16 mask Dice vs official {d}");
    assert!(r <= 0.05, "UniverSeg f16 logits rel. max diff {r}");
}

#[test]
fn genseg_segmenter_in_f16_agrees_with_f32() {
    let s = 32;
    let disc: Vec<f32> = (0..s * s)
        .map(|i| f32::from(((i % s) as f32 - 15.5).hypot((i / s) as f32 - 15.5) < 9.0))
        .collect();
    let pair = Pair {
        image: disc.iter().map(|&m| 0.2 + 0.6 * m).collect(),
        mask: disc.clone(),
    };
    let config = TrainConfig::new(NetConfig {
        size: s,
        ngf: 8,
        ndf: 8,
        seg_width: 4,
    });
    let trainer = Trainer::new(config, vec![pair.clone()], vec![], &cpu()).unwrap();
    let bytes = pollster::block_on(trainer.model.to_bytes()).unwrap();
    let on = |d: &Device| {
        let m = medseg::genseg::GenSegModel::from_bytes(&bytes, d).unwrap();
        pollster::block_on(m.segment(&pair.image)).unwrap()
    };
    let (a, b) = (on(&cpu()), on(&f16_device()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    eprintln!("GenSeg segmenter f16 vs f32: max probability diff {diff:.2e}");
    assert!(diff <= 0.01, "GenSeg f16 probabilities differ by {diff}");
}

#[test]
fn sam_vit_in_f16_stays_close_to_official() {
    let (out, official) = sam_vit_small_embedding(&f16_device());
    let r = rel_max_diff(&out, &official);
    eprintln!("SAM ViT small in f16: rel. max diff {r:.2e}");
    assert!(r <= 0.05, "SAM ViT f16 rel. max diff {r}");
}
