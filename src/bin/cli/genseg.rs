//! `medseg genseg train|generate|segment`: GenSeg on folders of NAME_image.png + NAME_mask.png.

use super::{Backend, device, list_dir, read, write};
use clap::Subcommand;
use medseg::genseg::nets::NetConfig;
use medseg::genseg::{GenSegModel, Pair, TrainConfig, Trainer, pairs};
use medseg::imaging::GrayImage;
use medseg::imaging::decode::{
    decode_image, encode_gray_png, encode_mask_png, has_image_extension,
};
use medseg::pipeline::universeg::pair_files;
use medseg::random::SplitMix;
use medseg::{Error, Result};
use pollster::block_on;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub enum GensegCmd {
    /// Train a generator of image–mask pairs together with a segmenter on a few labelled
    /// pairs (a fifth held out to tune the generator); writes the trained weights.
    Train {
        /// Folder of NAME_image.png + NAME_mask.png pairs (at least 2).
        #[arg(long)]
        pairs: PathBuf,
        /// Output weights (a medseg model file).
        #[arg(long)]
        out: PathBuf,
        /// Training size in pixels (32, 64, 128 or 256).
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Network width (generator and discriminator; the segmenter gets half). GenSeg: 64.
        #[arg(long, default_value_t = 16)]
        width: usize,
        #[arg(long, default_value_t = 500)]
        iterations: usize,
        /// Train the segmenter on the real pairs only (the baseline GenSeg is compared with).
        #[arg(long)]
        no_synthetic: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write every iteration's losses here as CSV.
        #[arg(long)]
        log: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
    },
    /// Write synthetic pairs: new masks augmented from the given masks, images from the
    /// trained generator. The folder can serve as a UniverSeg support set.
    Generate {
        #[arg(long)]
        model: PathBuf,
        /// Folder of pairs (or of *_mask.png files) whose masks seed the augmentation.
        #[arg(long)]
        masks: PathBuf,
        #[arg(long, default_value_t = 16)]
        count: usize,
        /// Output folder (synth_NNN_image.png + synth_NNN_mask.png at the model's size).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
    },
    /// Time a training iteration (real pairs only, and GenSeg with synthetic pairs and the
    /// architecture step) on synthetic discs: medians after warm-up.
    Bench {
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 16)]
        width: usize,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
    },
    /// Segment images with the trained segmenter (mask 0/255 at each image's size).
    Segment {
        #[arg(long)]
        model: PathBuf,
        /// An image, or a folder of images (files ending in _mask are skipped).
        #[arg(long)]
        image: PathBuf,
        /// Output mask PNG, or a folder when --image is one.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
    },
}

fn gray(path: &str) -> Result<GrayImage> {
    Ok(decode_image(&read(Path::new(path))?)?.luma())
}

/// Every pair in `dir`, prepared at `size`, each error naming its pair.
fn load_pairs(dir: &Path, size: usize) -> Result<Vec<Pair>> {
    pair_files(&list_dir(dir)?)?
        .iter()
        .map(|(name, img, mask)| pairs::prepare(name, &gray(img)?, &gray(mask)?, size))
        .collect()
}

/// Masks (0/1 at `size`) from a folder of pairs or of *_mask files.
fn load_masks(dir: &Path, size: usize) -> Result<Vec<Vec<f32>>> {
    let files: Vec<String> = list_dir(dir)?
        .into_iter()
        .filter(|p| has_image_extension(p) && p.to_ascii_lowercase().contains("_mask."))
        .collect();
    if files.is_empty() {
        return Err(Error::Input(format!(
            "no NAME_mask.png files in {}",
            dir.display()
        )));
    }
    files
        .iter()
        .map(|f| pairs::prepare_mask(f, &gray(f)?, size))
        .collect()
}

fn load_model(path: &Path, backend: Backend) -> Result<GenSegModel> {
    GenSegModel::from_bytes(&read(path)?, &device(backend)?)
}

pub fn dispatch(cmd: GensegCmd) -> Result<()> {
    match cmd {
        GensegCmd::Train {
            pairs: dir,
            out,
            size,
            width,
            iterations,
            no_synthetic,
            seed,
            log,
            backend,
        } => {
            let net = NetConfig::with_width(size, width);
            net.check().map_err(Error::Input)?;
            let all = load_pairs(&dir, size)?;
            let n = all.len();
            let (train, val) = pairs::split(all, seed)?;
            let mut cfg = TrainConfig::new(net);
            cfg.synthetic = !no_synthetic;
            cfg.seed = seed;
            let dev = device(backend)?;
            // The baseline trains on every pair: it has no use for a held-out one.
            let (train, val) = if no_synthetic {
                ([train, val].concat(), vec![])
            } else {
                (train, val)
            };
            println!(
                "{n} pairs: {} to train on, {} held out; {size}², width {width}, {iterations} iterations{}",
                train.len(),
                val.len(),
                if no_synthetic {
                    ", real pairs only"
                } else {
                    ""
                }
            );
            let mut t = Trainer::new(cfg, train, val, &dev)?;
            let mut csv =
                String::from("iteration,d_real,d_fake,g_gan,g_l1,seg_real,seg_synth,seg_val\n");
            let start = Instant::now();
            for i in 0..iterations {
                let l = block_on(t.step())?;
                csv += &format!(
                    "{i},{},{},{},{},{},{},{}\n",
                    l.d_real, l.d_fake, l.g_gan, l.g_l1, l.seg_real, l.seg_synth, l.seg_val
                );
                if (i + 1) % 25 == 0 || i + 1 == iterations {
                    let per = start.elapsed().as_secs_f64() / (i + 1) as f64;
                    println!(
                        "iter {:>5}  seg {:.3}  synth {:.3}  held-out {:.3}  G L1 {:.2}  D {:.3}  ({:.0} ms/iter)",
                        i + 1,
                        l.seg_real,
                        l.seg_synth,
                        l.seg_val,
                        l.g_l1,
                        (l.d_real + l.d_fake) / 2.0,
                        per * 1e3
                    );
                }
            }
            if let Some(v) = block_on(t.validation_loss())? {
                println!("held-out segmenter loss (BCE + Dice): {v:.4}");
            }
            let mix = block_on(t.model.upconv_mix())?;
            let shown: Vec<String> = mix
                .iter()
                .map(|m| format!("{:.2}/{:.2}/{:.2}", m[0], m[1], m[2]))
                .collect();
            println!(
                "up-convolution mix per level (k4/k6/k8): {}",
                shown.join("  ")
            );
            write(&out, &block_on(t.model.to_bytes())?)?;
            println!("wrote {}", out.display());
            if let Some(p) = log {
                write(&p, csv.as_bytes())?;
            }
        }
        GensegCmd::Generate {
            model,
            masks,
            count,
            out,
            seed,
            backend,
        } => {
            let m = load_model(&model, backend)?;
            let size = m.config.net.size;
            let seeds = load_masks(&masks, size)?;
            let mut rng = SplitMix(seed);
            for k in 0..count {
                let (img, mask) = block_on(m.synthetic_pair(&seeds, &mut rng))?.to_gray();
                let name = format!("synth_{k:03}");
                write(
                    &out.join(format!("{name}_image.png")),
                    &encode_gray_png(&img)?,
                )?;
                write(
                    &out.join(format!("{name}_mask.png")),
                    &encode_mask_png(&mask.data, mask.width, mask.height)?,
                )?;
            }
            println!("wrote {count} synthetic pairs to {}", out.display());
        }
        GensegCmd::Bench {
            size,
            width,
            runs,
            backend,
        } => {
            let net = NetConfig::with_width(size, width);
            net.check().map_err(Error::Input)?;
            let dev = device(backend)?;
            // Discs of varied place and size with a textured inside: stand-ins for real pairs.
            let disc = |k: usize| {
                let (cx, cy, r) = (
                    size as f32 * (0.35 + 0.07 * k as f32),
                    size as f32 * 0.5,
                    size as f32 * (0.15 + 0.03 * k as f32),
                );
                let mut p = Pair {
                    image: vec![],
                    mask: vec![],
                };
                for i in 0..size * size {
                    let (x, y) = ((i % size) as f32, (i / size) as f32);
                    let inside = (x - cx).hypot(y - cy) < r;
                    p.mask.push(f32::from(inside));
                    p.image
                        .push(if inside { 0.7 } else { 0.2 } + 0.1 * ((i * 7 % 13) as f32 / 13.0));
                }
                p
            };
            let pairs: Vec<Pair> = (0..5).map(disc).collect();
            println!(
                "GenSeg iteration at {size}², width {width}, on {}",
                super::backend_name(backend)
            );
            for synthetic in [false, true] {
                let mut cfg = TrainConfig::new(net);
                cfg.synthetic = synthetic;
                let (train, val) = if synthetic {
                    (pairs[..4].to_vec(), pairs[4..].to_vec())
                } else {
                    (pairs.clone(), vec![])
                };
                let mut t = Trainer::new(cfg, train, val, &dev)?;
                for _ in 0..3 {
                    block_on(t.step())?; // warm-up: kernel compilation, allocation
                }
                let mut ms = vec![];
                for _ in 0..runs.max(1) {
                    let t0 = Instant::now();
                    block_on(t.step())?;
                    ms.push(t0.elapsed().as_secs_f64() * 1e3);
                }
                let (lo, hi) = ms
                    .iter()
                    .fold((f64::MAX, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
                println!(
                    "  {:<36} median {:>8.1} ms  (min {lo:.1}, max {hi:.1}, {} runs)",
                    if synthetic {
                        "GenSeg (pix2pix + segmenter + arch)"
                    } else {
                        "segmenter on real pairs only"
                    },
                    super::median(ms.clone()),
                    ms.len()
                );
            }
        }
        GensegCmd::Segment {
            model,
            image,
            out,
            backend,
        } => {
            let m = load_model(&model, backend)?;
            let jobs = super::mask_jobs(&image, &out)?;
            for (src, dst) in jobs {
                let img = gray(&src.to_string_lossy())?;
                let mask = block_on(m.segment_image(&img))?;
                write(&dst, &encode_mask_png(&mask, img.width, img.height)?)?;
                println!(
                    "wrote {} ({} pixels)",
                    dst.display(),
                    mask.iter().filter(|&&v| v > 0).count()
                );
            }
        }
    }
    Ok(())
}
