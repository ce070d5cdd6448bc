//! GenSeg on real scans: does training with synthetic pairs help a segmenter that has only
//! N = 4 or 8 labelled slices? Native, CPU (flex) unless `--wgpu`.
//!
//! Data: the pyradiomics tumour volumes (brain1, brain2 MR; lung1, lung2 CT; `--task all` pools
//! them: 24 tumour slices) (`scripts/fetch-data.sh` puts them in
//! `.cache/data/pyradiomics`). Per volume, a square region around the tumour (twice its
//! largest in-plane extent, same crop on every slice) and every slice where the tumour covers
//! at least 5 pixels is a pair. For each seed, N pairs are drawn for training; every other
//! pair is held out for testing. Arms: the segmenter trained on the N real pairs alone, and
//! GenSeg (segmenter on real + synthetic pairs, generator trained with it, a fifth of the N
//! held out for the architecture step). Both arms get the same number of segmenter updates.
//!
//! `cargo run --release --example genseg_experiment -- [--task all|brain|lung] [--iterations 300]
//!  [--size 64] [--width 16] [--seeds 3] [--n 4,8] [--wgpu]`; prints a Markdown table.

use burn::tensor::{Device, DeviceKind};
use medseg::genseg::nets::NetConfig;
use medseg::genseg::{Pair, TrainConfig, Trainer, pairs};
use medseg::imaging::GrayImage;
use medseg::imaging::volume::read_volume;
use medseg::imaging::window::{self, Window};
use medseg::metrics::dice;
use medseg::random::SplitMix;
use pollster::block_on;
use std::time::Instant;

struct Args {
    task: String,
    iterations: usize,
    size: usize,
    width: usize,
    seeds: u64,
    ns: Vec<usize>,
    wgpu: bool,
}

fn args() -> Args {
    let mut a = Args {
        task: "all".into(),
        iterations: 300,
        size: 64,
        width: 16,
        seeds: 3,
        ns: vec![4, 8],
        wgpu: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = || v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--task" => a.task = next(),
            "--iterations" => a.iterations = next().parse().expect("--iterations N"),
            "--size" => a.size = next().parse().expect("--size N"),
            "--width" => a.width = next().parse().expect("--width N"),
            "--seeds" => a.seeds = next().parse().expect("--seeds N"),
            "--n" => {
                a.ns = next()
                    .split(',')
                    .map(|s| s.parse().expect("--n 4,8"))
                    .collect()
            }
            "--wgpu" => {
                a.wgpu = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// Tumour slices of one volume as named (image, mask) pairs, cropped around the tumour.
fn volume_pairs(dir: &str, name: &str, ct: bool, size: usize) -> Vec<(String, Pair)> {
    let read = |f: &str| {
        read_volume(
            &std::fs::read(format!("{dir}/{name}_{f}.nrrd")).expect("run scripts/fetch-data.sh"),
        )
        .unwrap()
    };
    let (img, lab) = (read("image"), read("label"));
    let [w, h, d] = img.size;
    assert_eq!(lab.size, img.size, "{name}: label grid differs");
    let win = window::apply(
        &img.data,
        if ct {
            Window::CT_SOFT_TISSUE
        } else {
            Window::MrPercentile
        },
    );
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (i, &v) in lab.data.iter().enumerate() {
        if v > 0.0 {
            let (x, y) = (i % w, (i / w) % h);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    let side = (2 * (x1 - x0).max(y1 - y0)).max(48).min(w.min(h));
    let cx = ((x0 + x1) / 2).saturating_sub(side / 2).min(w - side);
    let cy = ((y0 + y1) / 2).saturating_sub(side / 2).min(h - side);
    let mut out = Vec::new();
    for z in 0..d {
        let crop = |plane: &dyn Fn(usize) -> u8| {
            let mut v = Vec::with_capacity(side * side);
            for y in cy..cy + side {
                for x in cx..cx + side {
                    v.push(plane(z * w * h + y * w + x));
                }
            }
            GrayImage::new(side, side, v)
        };
        let m = crop(&|i| u8::from(lab.data[i] > 0.0));
        if m.data.iter().filter(|&&v| v > 0).count() < MIN_AREA {
            continue;
        }
        let im = crop(&|i| win[i]);
        let label = format!("{name}/z{z}");
        if let Ok(p) = pairs::prepare(&label, &im, &m, size) {
            out.push((label, p));
        }
    }
    out
}

/// Smallest tumour cross-section (pixels at scan resolution) that makes a slice a pair.
const MIN_AREA: usize = 5;

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

fn main() {
    let a = args();
    let dir = ".cache/data/pyradiomics";
    let vols: &[(&str, bool)] = match a.task.as_str() {
        "lung" => &[("lung1", true), ("lung2", true)],
        "brain" => &[("brain1", false), ("brain2", false)],
        _ => &[
            ("brain1", false),
            ("brain2", false),
            ("lung1", true),
            ("lung2", true),
        ],
    };
    let all: Vec<(String, Pair)> = vols
        .iter()
        .flat_map(|&(v, ct)| volume_pairs(dir, v, ct, a.size))
        .collect();
    let names: Vec<&str> = vols.iter().map(|v| v.0).collect();
    let dev = if a.wgpu {
        Device::wgpu(DeviceKind::DefaultDevice)
    } else {
        Device::flex()
    };
    println!(
        "task {} ({} tumour slices from {}), {}², width {}, {} iterations, backend {}",
        a.task,
        all.len(),
        names.join(" + "),
        a.size,
        a.width,
        a.iterations,
        if a.wgpu { "wgpu" } else { "cpu (flex)" }
    );
    let net = NetConfig::with_width(a.size, a.width);
    println!(
        "\n| N | seed | real only: Dice | GenSeg: Dice | ms/iter real only | ms/iter GenSeg |"
    );
    println!("|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    for &n in &a.ns {
        let (mut base, mut with_gs) = (Vec::new(), Vec::new());
        for seed in 0..a.seeds {
            let picked = SplitMix(1000 + seed).sample(all.len(), n);
            let train: Vec<Pair> = picked.iter().map(|&i| all[i].1.clone()).collect();
            let test: Vec<&Pair> = (0..all.len())
                .filter(|i| !picked.contains(i))
                .map(|i| &all[i].1)
                .collect();
            let run = |synthetic: bool| -> (f64, f64) {
                let mut cfg = TrainConfig::new(net);
                cfg.seed = seed;
                cfg.synthetic = synthetic;
                let (tr, val) = if synthetic {
                    pairs::split(train.clone(), seed).unwrap()
                } else {
                    (train.clone(), vec![])
                };
                let mut t = Trainer::new(cfg, tr, val, &dev).unwrap();
                let start = Instant::now();
                for _ in 0..a.iterations {
                    block_on(t.step()).unwrap();
                }
                let ms = start.elapsed().as_secs_f64() * 1e3 / a.iterations as f64;
                let dices: Vec<f64> = test
                    .iter()
                    .map(|p| {
                        let prob = block_on(t.model.segment(&p.image)).unwrap();
                        let pred: Vec<bool> = prob.iter().map(|&v| v > 0.5).collect();
                        let gt: Vec<bool> = p.mask.iter().map(|&v| v > 0.5).collect();
                        dice(&pred, &gt)
                    })
                    .collect();
                (mean_sd(&dices).0, ms)
            };
            let (db, tb) = run(false);
            let (dg, tg) = run(true);
            println!("| {n} | {seed} | {db:.3} | {dg:.3} | {tb:.0} | {tg:.0} |");
            base.push(db);
            with_gs.push(dg);
        }
        summary.push((n, mean_sd(&base), mean_sd(&with_gs)));
    }
    println!("\n| N | real only: Dice mean ± sd | GenSeg: Dice mean ± sd | seeds |");
    println!("|---|---|---|---|");
    for (n, b, g) in summary {
        println!(
            "| {n} | {:.3} ± {:.3} | {:.3} ± {:.3} | {} |",
            b.0, b.1, g.0, g.1, a.seeds
        );
    }
}
