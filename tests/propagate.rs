//! 3D MedSAM on real volumes: our propagation against the official LiteMedSAM 3D procedure's
//! output (fixtures from the official code, real weights, pyradiomics lung2 CT and brain1 MR).

mod common;

use common::*;
use medseg::imaging::GrayImage;
use medseg::imaging::decode::Planes;
use medseg::models::sam::SamArch;
use medseg::models::sam::tiny_vit::TinyVitConfig;
use medseg::pipeline::medsam::{MedSam, UserPrompt};
use medseg::pipeline::propagate::{
    Box3d, EmbeddingCache, Outcome, Propagation, SliceMasks, SliceStack, propagate, segmented_range,
};
use medseg::weights::torch;

struct Case {
    volume: Vec<u8>,
    width: usize,
    height: usize,
    /// The box with z relative to the slab.
    box3d: Box3d,
    official: Vec<bool>,
    truth: Vec<bool>,
    official_vs_truth: f64,
}

fn case(name: &'static str) -> Case {
    let f = Fixture::load(&format!("litemedsam3d_{name}.safetensors"));
    let z_off: usize = f.meta["z_offset"].parse().unwrap();
    let s = f.shape("volume_u8").to_vec();
    let b: [f32; 6] = f.get("box3d").try_into().unwrap();
    let mut box3d = Box3d::from_official(b).unwrap();
    box3d.z0 -= z_off;
    box3d.z1 -= z_off;
    assert_eq!(box3d.z1 + 1, s[0], "{name}: the slab is the box's z range");
    Case {
        volume: f.get("volume_u8").iter().map(|&v| v as u8).collect(),
        width: s[2],
        height: s[1],
        box3d,
        official: f.get("segmentation").iter().map(|&v| v > 0.5).collect(),
        truth: f.get("ground_truth").iter().map(|&v| v > 0.5).collect(),
        official_vs_truth: f.meta["dsc_official_vs_gt"].parse().unwrap(),
    }
}

fn run(m: &MedSam, c: &Case, cache: &mut EmbeddingCache) -> SliceMasks {
    let stack = SliceStack {
        width: c.width,
        height: c.height,
        data: &c.volume,
    };
    let mut masks = vec![None; stack.depth()];
    let out = pollster::block_on(propagate(
        m,
        &mut async |_, p: &Planes| m.embed(p),
        &stack,
        &c.box3d,
        Propagation::default(),
        cache,
        &mut masks,
        &mut async |_, _| true,
    ))
    .unwrap();
    assert_eq!(out, Outcome::Done);
    masks
}

fn flat(masks: &SliceMasks, n: usize) -> Vec<bool> {
    masks
        .iter()
        .flat_map(|m| match m {
            Some(m) => m.iter().map(|&v| v > 0).collect(),
            None => vec![false; n],
        })
        .collect()
}

fn lite() -> SamArch {
    SamArch::LiteMedsam(TinyVitConfig::lite_medsam())
}

/// Propagates the named fixture volumes, asserting 3D Dice vs the official output for each;
/// returns the last one's case, masks and embedding cache for further checks.
fn check(
    m: &MedSam,
    label: &str,
    cases: &[(&'static str, f64)],
) -> (Case, SliceMasks, EmbeddingCache) {
    let mut last = None;
    for &(name, min_dice) in cases {
        let c = case(name);
        let mut cache = EmbeddingCache::new(16);
        let masks = run(m, &c, &mut cache);
        assert!(
            masks.iter().all(Option::is_some),
            "{name}: every slice in range is segmented"
        );
        let got = flat(&masks, c.width * c.height);
        let d_off = medseg::metrics::dice(&got, &c.official);
        let d_gt = medseg::metrics::dice(&got, &c.truth);
        let n = c.width * c.height;
        let per_slice: Vec<String> = (0..masks.len())
            .map(|z| {
                let r = z * n..(z + 1) * n;
                format!(
                    "{:.3}",
                    medseg::metrics::dice(&got[r.clone()], &c.official[r])
                )
            })
            .collect();
        eprintln!(
            "{label} {name}: 3D Dice vs official {d_off:.4}, vs truth {d_gt:.4} (official {:.3}); per slice {per_slice:?}",
            c.official_vs_truth
        );
        assert!(
            d_off >= min_dice,
            "{label} {name}: 3D Dice vs official {d_off}"
        );
        last = Some((c, masks, cache));
    }
    last.unwrap()
}

#[test]
fn fp32_propagation_matches_the_official_3d_procedure() {
    let sd = torch::read_state_dict(&lite_medsam_pth()).unwrap();
    check(
        &MedSam::from_state_dict(&sd, &lite(), &cpu()).unwrap(),
        "fp32",
        // brain1 in fp32 runs through the CLI (tests/volumes.rs), also against ≥ 0.99.
        &[("lung2", 0.99)],
    );
}

/// int8 accuracy, then re-propagation, cancel and the sweep past the box on the same model.
#[test]
fn int8_propagation_edits_cancel_and_sweeps_past_the_box() {
    let m = MedSam::from_model_file(&lite_medsam_int8(), &cpu()).unwrap();
    // The shipped file's rounding is calibrated (GPTQ, `weights::gptq`) on other scans; plain
    // rounding to the nearest step gave brain1 0.796. brain1's box (the tumour's whole 3D
    // extent) is loose on the middle slice and the model unsure there (IoU 0.57): a logit shift
    // of ±0.1 alone costs 4 Dice points on it, and a worse middle mask is carried on to the last
    // slices. With calibration the encoder's embeddings are 1.4 % off fp32 (plain: 5.2 %), but
    // other calibration sets gave brain1 0.92–0.99 (session 25): still a sensitive case.
    let (c, first, mut cache) = check(&m, "int8", &[("lung2", 0.97), ("brain1", 0.97)]);

    // Re-propagating from the middle slice, unchanged, gives the same masks from cached embeddings.
    let stack = SliceStack {
        width: c.width,
        height: c.height,
        data: &c.volume,
    };
    let mut masks = first.clone();
    let embedded = cache.len();
    let mut calls = vec![];
    let out = pollster::block_on(propagate(
        &m,
        &mut async |_, p: &Planes| m.embed(p),
        &stack,
        &c.box3d,
        Propagation {
            from_edited: Some(c.box3d.middle()),
            ..Propagation::default()
        },
        &mut cache,
        &mut masks,
        &mut async |done, planned| {
            calls.push((done, planned));
            true
        },
    ))
    .unwrap();
    assert_eq!(out, Outcome::Done);
    assert_eq!(
        masks, first,
        "re-propagation from an unchanged slice is stable"
    );
    let depth = stack.depth();
    assert_eq!(
        calls.last(),
        Some(&(depth - 1, depth - 1)),
        "progress reaches its plan"
    );
    assert_eq!(cache.len(), embedded, "no slice embedded twice");

    // Cancelling keeps what was done and stops.
    let mut masks = vec![None; depth];
    let out = pollster::block_on(propagate(
        &m,
        &mut async |_, p: &Planes| m.embed(p),
        &stack,
        &c.box3d,
        Propagation::default(),
        &mut cache,
        &mut masks,
        &mut async |done, _| done < 2,
    ))
    .unwrap();
    assert_eq!(out, Outcome::Cancelled);
    assert_eq!(masks.iter().filter(|m| m.is_some()).count(), 2);

    // Editing a slice above the middle re-segments only the slices above it.
    let mut masks = first.clone();
    let edited = c.box3d.middle() + 1;
    masks[edited] = Some(vec![0; c.width * c.height]);
    pollster::block_on(propagate(
        &m,
        &mut async |_, p: &Planes| m.embed(p),
        &stack,
        &c.box3d,
        Propagation {
            from_edited: Some(edited),
            ..Propagation::default()
        },
        &mut cache,
        &mut masks,
        &mut async |_, _| true,
    ))
    .unwrap();
    for z in 0..edited {
        assert_eq!(masks[z], first[z], "slice {z} below the edit is untouched");
    }
    assert_eq!(
        masks[edited],
        Some(vec![0; c.width * c.height]),
        "the edit is kept"
    );
    // An erased slice makes its neighbour fall back to the user's box.
    let n = c.width * c.height;
    let above = Planes::gray(GrayImage::new(
        c.width,
        c.height,
        c.volume[(edited + 1) * n..(edited + 2) * n].to_vec(),
    ));
    let direct = pollster::block_on(m.predict(
        &m.embed(&above).unwrap(),
        &UserPrompt::from_box(c.box3d.rect),
    ))
    .unwrap();
    assert_eq!(masks[edited + 1].as_ref(), Some(&direct.mask));

    // Past the box (the walk's logic is unit-tested): with the upper limit lowered to the
    // middle + 1, the sweep goes on with the real model to the slab's end, from cached embeddings.
    let mut box3d = c.box3d;
    box3d.z1 = box3d.middle() + 1;
    let mut masks = vec![None; depth];
    pollster::block_on(propagate(
        &m,
        &mut async |_, p: &Planes| m.embed(p),
        &stack,
        &box3d,
        Propagation {
            beyond: true,
            ..Propagation::default()
        },
        &mut cache,
        &mut masks,
        &mut async |_, _| true,
    ))
    .unwrap();
    assert_eq!(segmented_range(&masks), Some((0, depth - 1)));
    assert_eq!(cache.len(), embedded, "no slice embedded twice");
}
