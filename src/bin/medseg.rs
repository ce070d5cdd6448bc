//! `medseg`: the command line over medseg's pipelines. Run `medseg --help`.

#[cfg(target_family = "wasm")]
fn main() {}

#[cfg(not(target_family = "wasm"))]
#[path = "cli/alloc.rs"]
mod alloc;

#[cfg(not(target_family = "wasm"))]
#[global_allocator]
static ALLOC: alloc::CachingAlloc = alloc::CachingAlloc::new();

#[cfg(not(target_family = "wasm"))]
fn main() {
    // mimalloc's `mi_option_purge_delay` (15 in its v3 option enum; the Rust bindings do not name
    // it): −1 keeps freed memory mapped, so the next op's buffer needs no fresh zeroed pages.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    std::process::exit(cli::run());
}

#[cfg(not(target_family = "wasm"))]
mod cli {
    #[path = "../cli/genseg.rs"]
    mod genseg;

    use burn::tensor::{Device, DeviceKind, Tensor};
    use clap::{Parser, Subcommand, ValueEnum};
    use medseg::imaging::GrayImage;
    use medseg::imaging::decode::{Planes, decode_image, encode_mask_png, has_image_extension};
    use medseg::imaging::dicom::{is_dicom, read_series};
    use medseg::imaging::dicom_seg::{SeriesReference, write_seg};
    use medseg::imaging::volume::{Volume, has_volume_extension, read_volume, write_nifti_labels};
    use medseg::imaging::window::{self, Window};
    use medseg::metrics::{area_mm2, dice, nsd, volume_ml};
    use medseg::models::sam::SamArch;
    use medseg::models::sam::tiny_vit::TinyVitConfig;
    use medseg::models::sam::vit::VitConfig;
    use medseg::models::universeg::UniverSegConfig;
    use medseg::pipeline::medsam::{MedSam, UserPrompt};
    use medseg::pipeline::propagate::{Box3d, EmbeddingCache, Propagation, SliceStack, propagate};
    use medseg::pipeline::universeg::{self, Ensemble, SupportItem, UniverSeg, pair_files};
    use medseg::weights::convert::{
        SLICES_PER_SCAN, calibration_slices, convert_sam, convert_universeg,
    };
    use medseg::weights::model_file::{self, Precision};
    use medseg::{Error, Result};
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    #[derive(Parser)]
    #[command(
        name = "medseg",
        version,
        about = "Medical image segmentation with MedSAM / LiteMedSAM, UniverSeg and GenSeg, on your own machine.",
        long_about = "Medical image segmentation with MedSAM / LiteMedSAM, UniverSeg and GenSeg, on your own machine.\n\n\
Typical use:\n  \
medseg convert --checkpoint lite_medsam.pth --out models/litemedsam.int8.medseg\n  \
medseg segment --model models/litemedsam.int8.medseg --image ct.png --box 321,334,392,398 --out mask.png\n  \
medseg propagate --model models/litemedsam.int8.medseg --volume ct.nrrd --box 318,333,15,404,398,25 --out tumour.nii.gz\n  \
medseg eval --pred mask.png --gt truth.png\n  \
medseg universeg --weights universeg_v1_nf64_ss64_STA.pt --support pairs/ --query new.png --out new_mask.png\n  \
medseg genseg train --pairs pairs/ --out genseg.medseg --size 64 --iterations 300\n  \
medseg genseg generate --model genseg.medseg --masks pairs/ --count 32 --out synthetic/"
    )]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum Backend {
        /// Pure-Rust CPU backend (burn flex); always available.
        Cpu,
        /// GPU through wgpu (Vulkan/Metal/DX12); falls back to an error if no adapter exists.
        Wgpu,
        /// wgpu computing in f16; needs an adapter with `shader-f16`.
        WgpuF16,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum WindowArg {
        Auto,
        Ct,
        Mr,
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum Arch {
        /// LiteMedSAM (TinyViT encoder, 256×256 input), `lite_medsam.pth`.
        Litemedsam,
        /// MedSAM ViT-B (1024×1024 input), `medsam_vit_b.pth`.
        MedsamVitB,
        /// UniverSeg v1, `universeg_v1_nf64_ss64_STA.pt`.
        Universeg,
    }

    #[derive(Subcommand)]
    enum Cmd {
        /// Convert an official PyTorch checkpoint into a medseg model file (int8 by default).
        Convert {
            /// The official checkpoint, e.g. lite_medsam.pth, medsam_vit_b.pth or
            /// universeg_v1_nf64_ss64_STA.pt.
            #[arg(long)]
            checkpoint: PathBuf,
            #[arg(long, value_enum, default_value = "litemedsam")]
            arch: Arch,
            /// Keep full-precision weights (4× larger file).
            #[arg(long)]
            fp32: bool,
            /// Output model file.
            #[arg(long)]
            out: PathBuf,
            /// Volumes (NRRD, NIfTI) whose slices calibrate the int8 rounding of a MedSAM image
            /// encoder (GPTQ); without them each weight is rounded to its nearest step.
            #[arg(long, num_args = 1..)]
            calibrate: Vec<PathBuf>,
        },
        /// Segment one object inside a box and write the mask as a 0/255 PNG.
        Segment {
            /// A medseg model file (from `medseg convert`) or an official .pth checkpoint.
            #[arg(long)]
            model: PathBuf,
            /// PNG or JPEG image, or a volume (.nrrd, .nii, .nii.gz) with --slice.
            #[arg(long)]
            image: PathBuf,
            /// Axial slice of a volume (0-based, file order).
            #[arg(long)]
            slice: Option<usize>,
            /// Intensity window for volumes: ct (WL 40/WW 400), mr (0.5–99.5 percentiles), or
            /// auto (ct when the volume has air below −500, as HU do).
            #[arg(long, value_enum, default_value = "auto")]
            window: WindowArg,
            /// Box in image pixels: x0,y0,x1,y1.
            #[arg(long, value_parser = parse_box)]
            r#box: [f32; 4],
            /// Output mask PNG (same size as the image).
            #[arg(long)]
            out: PathBuf,
            #[arg(long, value_enum, default_value = "cpu")]
            backend: Backend,
        },
        /// Segment an object through a volume from one 3D box (the official LiteMedSAM 3D
        /// procedure: middle slice first, each next slice boxed from its neighbour's mask) and
        /// write the label volume as NIfTI or DICOM SEG aligned with the scan; prints areas
        /// and the volume.
        Propagate {
            /// A medseg model file (from `medseg convert`) or an official .pth checkpoint.
            #[arg(long)]
            model: PathBuf,
            /// The scan: .nrrd, .nii or .nii.gz, a DICOM file or a folder of DICOM files.
            #[arg(long)]
            volume: PathBuf,
            /// 3D box in voxels, x0,y0,z0,x1,y1,z1 (slices z0..z1 inclusive, file order).
            #[arg(long, value_parser = parse_box3d)]
            r#box: [f32; 6],
            #[arg(long, value_enum, default_value = "auto")]
            window: WindowArg,
            /// Go on past z0/z1 until a slice's mask comes out empty.
            #[arg(long)]
            beyond: bool,
            /// Output labels, same geometry as the scan: .nii.gz or .nii (1 = object), or .dcm
            /// for a DICOM SEG (in the scan's study when the scan is DICOM).
            #[arg(long)]
            out: PathBuf,
            #[arg(long, value_enum, default_value = "cpu")]
            backend: Backend,
        },
        /// Segment new images from examples (UniverSeg): a folder of NAME_image.png /
        /// NAME_mask.png pairs defines the task; no training.
        Universeg {
            /// UniverSeg weights: the official .pt or a medseg model file.
            #[arg(long)]
            weights: PathBuf,
            /// Folder of support pairs NAME_image.png + NAME_mask.png (mask 0 = background).
            #[arg(long)]
            support: PathBuf,
            /// An image, or a folder of images (files ending in _mask are skipped).
            #[arg(long)]
            query: PathBuf,
            /// Output mask PNG (0/255, the query's size), or a folder when --query is one.
            #[arg(long)]
            out: PathBuf,
            /// Average this many predictions, each from a random subset of the support.
            #[arg(long, default_value_t = 1)]
            ensemble: usize,
            /// Support items per ensemble member (default: all).
            #[arg(long)]
            subset: Option<usize>,
            #[arg(long, default_value_t = 0)]
            seed: u64,
            #[arg(long, value_enum, default_value = "cpu")]
            backend: Backend,
        },
        /// Compare a predicted mask with a reference: Dice (DSC) and normalized surface distance.
        Eval {
            #[arg(long)]
            pred: PathBuf,
            #[arg(long)]
            gt: PathBuf,
            /// NSD tolerance, in the units of --spacing (pixels by default).
            #[arg(long, default_value_t = 2.0)]
            tau: f64,
            /// Pixel size as row,column (e.g. millimetres); default 1,1.
            #[arg(long, value_parser = parse_pair, default_value = "1,1")]
            spacing: (f64, f64),
        },
        /// Time a model: MedSAM encoder and decoder, or UniverSeg per query at S = 1, 8, 32, 64
        /// (medians over several runs).
        Bench {
            #[arg(long, required_unless_present = "random", conflicts_with = "random")]
            model: Option<PathBuf>,
            /// Time this MedSAM architecture with seeded random weights of the real size instead
            /// of a model file (e.g. medsam-vit-b when its checkpoint is not at hand).
            #[arg(long, value_enum)]
            random: Option<Arch>,
            #[arg(long, value_enum, default_value = "cpu")]
            backend: Backend,
            #[arg(long, default_value_t = 10)]
            runs: usize,
            /// Decodes timed per encode (the app decodes every box against one embedding): the
            /// first runs the whole decoder (reported as "decoder"), the third and later reuse its
            /// image-only part (reported apart); many make a profile of the decoder alone.
            #[arg(long, default_value_t = 1)]
            decodes: usize,
        },
        /// GenSeg: train a generator of image–mask pairs with a segmenter on a few labelled
        /// pairs, generate synthetic pairs, segment with the trained segmenter.
        Genseg {
            #[command(subcommand)]
            cmd: genseg::GensegCmd,
        },
        /// Show what a model file holds.
        Info {
            #[arg(long)]
            model: PathBuf,
        },
    }

    fn parse_box(s: &str) -> std::result::Result<[f32; 4], String> {
        let v: Vec<f32> = s
            .split(',')
            .map(|p| p.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("expected four numbers x0,y0,x1,y1, got {s:?}"))?;
        v.try_into()
            .map_err(|_| format!("expected four numbers x0,y0,x1,y1, got {s:?}"))
    }

    fn parse_box3d(s: &str) -> std::result::Result<[f32; 6], String> {
        let msg = || format!("expected six numbers x0,y0,z0,x1,y1,z1, got {s:?}");
        let v: Vec<f32> = s
            .split(',')
            .map(|p| p.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| msg())?;
        v.try_into().map_err(|_| msg())
    }

    fn parse_pair(s: &str) -> std::result::Result<(f64, f64), String> {
        let v: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("expected two numbers a,b, got {s:?}"))?;
        match v.as_slice() {
            [a, b] if *a > 0.0 && *b > 0.0 => Ok((*a, *b)),
            _ => Err(format!("expected two positive numbers a,b, got {s:?}")),
        }
    }

    pub fn run() -> i32 {
        let cli = Cli::parse();
        match dispatch(cli.cmd) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(path, bytes)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
    }

    fn device(b: Backend) -> Result<Device> {
        match b {
            Backend::Cpu => Ok(Device::flex()),
            Backend::Wgpu | Backend::WgpuF16 => {
                // wgpu panics when no adapter exists; turn that into an error.
                let hook = std::panic::take_hook();
                std::panic::set_hook(Box::new(|_| {}));
                let probe = std::panic::catch_unwind(|| {
                    let mut d = Device::wgpu(DeviceKind::DefaultDevice);
                    // Before the device's first tensor, which fixes its float type.
                    let f16 =
                        matches!(b, Backend::WgpuF16) && medseg::models::compute_in_f16(&mut d);
                    let _ = Tensor::<1>::ones([1], &d).into_data();
                    (d, f16)
                });
                std::panic::set_hook(hook);
                match probe {
                    Err(_) => Err(Error::Device(
                        "no GPU adapter found for wgpu; use --backend cpu".into(),
                    )),
                    Ok((_, false)) if matches!(b, Backend::WgpuF16) => Err(Error::Device(
                        "this GPU adapter cannot compute in f16 (no shader-f16); use --backend wgpu"
                            .into(),
                    )),
                    Ok((d, _)) => Ok(d),
                }
            }
        }
    }

    fn arch(a: Arch) -> SamArch {
        match a {
            Arch::MedsamVitB => SamArch::MedsamVit(VitConfig::medsam_vit_b()),
            _ => SamArch::LiteMedsam(TinyVitConfig::lite_medsam()),
        }
    }

    /// An official PyTorch checkpoint (by content, else by name) rather than our model file.
    fn is_checkpoint(path: &Path, bytes: &[u8]) -> bool {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        bytes.starts_with(b"PK") || (!bytes.starts_with(b"MEDSEGM1") && matches!(ext, "pth" | "pt"))
    }

    fn load_universeg(path: &Path, dev: &Device) -> Result<UniverSeg> {
        let bytes = read(path)?;
        if is_checkpoint(path, &bytes) {
            let sd = medseg::weights::torch::read_state_dict(&bytes)?;
            return Ok(UniverSeg::load(&sd, &UniverSegConfig::v1(), dev)?.0);
        }
        UniverSeg::from_model_file(&bytes, dev)
    }

    fn list_dir(dir: &Path) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::Io(format!("cannot read folder {}: {e}", dir.display())))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.path().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// (image, output mask) paths: one image, or every image in a folder (files ending in
    /// `_mask` skipped) with `NAME_mask.png` in the output folder.
    fn mask_jobs(input: &Path, out: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
        let jobs: Vec<(PathBuf, PathBuf)> = if input.is_dir() {
            list_dir(input)?
                .into_iter()
                .filter(|p| has_image_extension(p) && !p.to_ascii_lowercase().contains("_mask."))
                .map(|p| {
                    let p = PathBuf::from(p);
                    let name = p
                        .file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    (p, out.join(format!("{name}_mask.png")))
                })
                .collect()
        } else {
            vec![(input.to_path_buf(), out.to_path_buf())]
        };
        if jobs.is_empty() {
            return Err(Error::Input(format!("no images in {}", input.display())));
        }
        Ok(jobs)
    }

    /// Support pairs from a folder, each checked (sizes, binary mask) with the file named.
    fn load_support(m: &UniverSeg, dir: &Path) -> Result<Vec<SupportItem>> {
        let pairs = pair_files(&list_dir(dir)?)?;
        pairs
            .iter()
            .map(|(name, img, mask)| {
                let named = |e: Error| e.context(&format!("support pair {name}"));
                let i = decode_image(&read(Path::new(img))?).map_err(named)?.luma();
                let k = decode_image(&read(Path::new(mask))?).map_err(named)?.luma();
                m.prepare_pair(&i, &k).map_err(named)
            })
            .collect()
    }

    /// Loads a model file, or converts an official checkpoint on the fly (LiteMedSAM layout
    /// unless the keys say ViT-B).
    fn load_model(path: &Path, dev: &Device) -> Result<MedSam> {
        let bytes = read(path)?;
        if is_checkpoint(path, &bytes) {
            let sd = medseg::weights::torch::read_state_dict(&bytes)?;
            let a = if sd.contains_key("image_encoder.pos_embed") {
                Arch::MedsamVitB
            } else {
                Arch::Litemedsam
            };
            return MedSam::from_state_dict(&sd, &arch(a), dev);
        }
        MedSam::from_model_file(&bytes, dev)
    }

    /// A volume: NRRD/NIfTI, a DICOM file, or a folder of DICOM files (a series).
    fn is_volume_name(p: &Path) -> bool {
        let name = p.to_string_lossy().to_lowercase();
        has_volume_extension(&name) || name.ends_with(".dcm") || p.is_dir()
    }

    /// The volume, and for DICOM what a SEG of it refers to.
    fn load_volume(path: &Path) -> Result<(Volume, Option<SeriesReference>)> {
        let files: Vec<(String, Vec<u8>)> = if path.is_dir() {
            list_dir(path)?
                .into_iter()
                .map(|n| {
                    let p = Path::new(&n);
                    let name = p
                        .file_name()
                        .map_or(n.clone(), |f| f.to_string_lossy().into());
                    Ok((name, read(p)?))
                })
                .collect::<Result<_>>()?
        } else {
            let bytes = read(path)?;
            if !is_dicom(&bytes) && !path.to_string_lossy().to_lowercase().ends_with(".dcm") {
                return Ok((read_volume(&bytes)?, None));
            }
            vec![(path.display().to_string(), bytes)]
        };
        let series = read_series(&files)?;
        for note in &series.notes {
            eprintln!("note: {note}");
        }
        Ok((series.volume, Some(series.reference)))
    }

    /// A 2D image, or one slice of a volume windowed over the whole volume (as the official
    /// 3D preprocessing does).
    fn load_image(path: &Path, slice: Option<usize>, w: WindowArg) -> Result<Planes> {
        if !is_volume_name(path) {
            if slice.is_some() {
                return Err(Error::Input(
                    "--slice is for volumes (.nrrd, .nii, .nii.gz, DICOM)".into(),
                ));
            }
            return decode_image(&read(path)?);
        }
        let (vol, _) = load_volume(path)?;
        let [width, height, depth] = vol.size;
        let z = slice.ok_or_else(|| {
            Error::Input(format!(
                "{} is a volume of {depth} slices: choose one with --slice 0..{}",
                path.display(),
                depth.saturating_sub(1)
            ))
        })?;
        vol.slice(z)?; // a clear error before windowing the whole volume
        let u8s = window::apply(&vol.data, choose_window(&vol.data, w));
        let n = width * height;
        Ok(Planes::gray(GrayImage::new(
            width,
            height,
            u8s[z * n..(z + 1) * n].to_vec(),
        )))
    }

    fn choose_window(values: &[f32], w: WindowArg) -> Window {
        match w {
            WindowArg::Ct => Window::CT_SOFT_TISSUE,
            WindowArg::Mr => Window::MrPercentile,
            WindowArg::Auto => Window::official_for(values),
        }
    }

    fn load_mask(path: &Path) -> Result<(Vec<bool>, usize, usize)> {
        let img = decode_image(&read(path)?)?.luma();
        Ok((
            img.data.iter().map(|&v| v > 0).collect(),
            img.width,
            img.height,
        ))
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    fn backend_name(b: Backend) -> &'static str {
        match b {
            Backend::Cpu => "cpu (flex)",
            Backend::Wgpu => "wgpu",
            Backend::WgpuF16 => "wgpu (f16)",
        }
    }

    /// Peak resident memory of this process in MB since the last reset (Linux; 0 elsewhere).
    fn peak_rss_mb(reset: bool) -> f64 {
        if reset {
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            return 0.0;
        }
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Time per query for support sets of 1, 8, 32 and 64 (synthetic discs), with peak memory.
    fn bench_universeg(bytes: &[u8], dev: &Device, backend: Backend, runs: usize) -> Result<()> {
        let m = UniverSeg::from_model_file(bytes, dev)?;
        let n = m.size();
        let item = |k: usize| {
            let (cx, cy, r) = (
                40.0 + (k % 7) as f32 * 7.0,
                50.0 + (k % 5) as f32 * 6.0,
                20.0,
            );
            let label: Vec<f32> = (0..n * n)
                .map(|i| {
                    let (x, y) = ((i % n) as f32 - cx, (i / n) as f32 - cy);
                    (x * x + y * y <= r * r) as u8 as f32
                })
                .collect();
            let image = label
                .iter()
                .enumerate()
                .map(|(i, &l)| 0.2 + 0.6 * l + (i % 13) as f32 * 0.01)
                .collect();
            SupportItem { image, label }
        };
        let support: Vec<SupportItem> = (0..64).map(item).collect();
        let target = item(99).image;
        println!(
            "model UniverSeg v1 on {} (chunk {})",
            backend_name(backend),
            m.chunk
        );
        for s in [1usize, 8, 32, 64] {
            let refs: Vec<&SupportItem> = support[..s].iter().collect();
            pollster::block_on(m.logits(&target, &refs))?; // warm-up
            peak_rss_mb(true);
            let mut times = vec![];
            for _ in 0..runs.max(1) {
                let t = Instant::now();
                pollster::block_on(m.logits(&target, &refs))?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "S={s:<3} query median {:.1} ms (min {:.1}, max {:.1}), peak RSS {:.0} MB",
                median(times.clone()),
                times.iter().cloned().fold(f64::INFINITY, f64::min),
                times.iter().cloned().fold(0.0, f64::max),
                peak_rss_mb(false)
            );
        }
        Ok(())
    }

    fn dispatch(cmd: Cmd) -> Result<()> {
        match cmd {
            Cmd::Convert {
                checkpoint,
                arch: a,
                fp32,
                out,
                calibrate,
            } => {
                let precision = if fp32 {
                    Precision::F32
                } else {
                    Precision::Int8
                };
                let ck = read(&checkpoint)?;
                let bytes = match a {
                    Arch::Universeg if !calibrate.is_empty() => {
                        return Err(Error::Input(
                            "--calibrate applies to MedSAM models only".into(),
                        ));
                    }
                    Arch::Universeg => convert_universeg(&ck, precision)?,
                    _ => {
                        let mut slices = vec![];
                        for path in &calibrate {
                            let vol = read_volume(&read(path)?).map_err(|e| {
                                Error::Input(format!("--calibrate {}: {e}", path.display()))
                            })?;
                            slices.extend(calibration_slices(&vol, SLICES_PER_SCAN));
                        }
                        if !slices.is_empty() {
                            println!("calibrating the int8 rounding on {} slices", slices.len());
                        }
                        convert_sam(&ck, &arch(a), precision, &slices)?
                    }
                };
                write(&out, &bytes)?;
                println!(
                    "wrote {} ({:.1} MB, {:?})",
                    out.display(),
                    bytes.len() as f64 / 1e6,
                    precision
                );
            }
            Cmd::Segment {
                model,
                image,
                slice,
                window,
                r#box,
                out,
                backend,
            } => {
                let dev = device(backend)?;
                let img = load_image(&image, slice, window)?;
                let m = load_model(&model, &dev)?;
                let emb = m.embed(&img)?;
                let pred = pollster::block_on(m.predict(&emb, &UserPrompt::from_box(r#box)))?;
                write(
                    &out,
                    &encode_mask_png(&pred.mask, img.width(), img.height())?,
                )?;
                let area = pred.mask.iter().filter(|&&v| v > 0).count();
                println!(
                    "wrote {} ({area} pixels, predicted IoU {:.3})",
                    out.display(),
                    pred.iou
                );
            }
            Cmd::Propagate {
                model,
                volume,
                r#box,
                window,
                beyond,
                out,
                backend,
            } => {
                let name = out.to_string_lossy().to_ascii_lowercase();
                let seg = name.ends_with(".dcm");
                if !name.ends_with(".nii") && !name.ends_with(".nii.gz") && !seg {
                    return Err(Error::Input(
                        "--out must name a .nii.gz or .nii file, or a .dcm file (DICOM SEG)".into(),
                    ));
                }
                if !is_volume_name(&volume) {
                    return Err(Error::Input(
                        "--volume must be a .nrrd, .nii or .nii.gz scan, a DICOM file or a folder of DICOM files".into(),
                    ));
                }
                let (vol, reference) = load_volume(&volume)?;
                let [w, h, d] = vol.size;
                let box3d = Box3d::from_official(r#box)?;
                let u8s = window::apply(&vol.data, choose_window(&vol.data, window));
                let dev = device(backend)?;
                let m = load_model(&model, &dev)?;
                let stack = SliceStack {
                    width: w,
                    height: h,
                    data: &u8s,
                };
                let mut masks = vec![None; d];
                let t = Instant::now();
                pollster::block_on(propagate(
                    &m,
                    &mut async |_, p: &Planes| m.embed(p),
                    &stack,
                    &box3d,
                    Propagation {
                        beyond,
                        ..Propagation::default()
                    },
                    &mut EmbeddingCache::new(1),
                    &mut masks,
                    &mut async |done, planned| {
                        // With --beyond the total is an upper bound that shrinks.
                        let most = if beyond { " at most" } else { "" };
                        eprint!("\rslice {done} of{most} {planned}    ");
                        true
                    },
                ))?;
                eprintln!();
                let n = w * h;
                let mut labels = vec![0u8; n * d];
                let [sx, sy, _] = vol.spacing;
                for (z, mask) in masks.iter().enumerate() {
                    if let Some(mask) = mask {
                        labels[z * n..(z + 1) * n].copy_from_slice(mask);
                        let area = area_mm2(mask, [sx, sy]);
                        if area > 0.0 {
                            println!("slice {z}: {area:.1} mm²");
                        }
                    }
                }
                let voxels = labels.iter().filter(|&&v| v > 0).count();
                let bytes = if seg {
                    write_seg(&vol, &labels, &["Object 1".into()], reference.as_ref())?
                } else {
                    write_nifti_labels(&vol, &labels, name.ends_with(".gz"))?
                };
                write(&out, &bytes)?;
                println!(
                    "wrote {}: {voxels} voxels, {:.2} mL, {:.1} s",
                    out.display(),
                    volume_ml(voxels, vol.spacing),
                    t.elapsed().as_secs_f64()
                );
            }
            Cmd::Universeg {
                weights,
                support,
                query,
                out,
                ensemble,
                subset,
                seed,
                backend,
            } => {
                let dev = device(backend)?;
                let m = load_universeg(&weights, &dev)?;
                let sup = load_support(&m, &support)?;
                let ens = Ensemble {
                    members: ensemble,
                    subset: subset.unwrap_or(usize::MAX),
                    seed,
                };
                let jobs = mask_jobs(&query, &out)?;
                for (img_path, out_path) in jobs {
                    let img = decode_image(&read(&img_path)?)?.luma();
                    let mask = pollster::block_on(m.segment(&img, &sup, &ens, &mut async |_| {}))?;
                    write(&out_path, &encode_mask_png(&mask, img.width, img.height)?)?;
                    let area = mask.iter().filter(|&&v| v > 0).count();
                    println!(
                        "wrote {} ({area} pixels, support of {})",
                        out_path.display(),
                        sup.len()
                    );
                }
            }
            Cmd::Genseg { cmd } => genseg::dispatch(cmd)?,
            Cmd::Eval {
                pred,
                gt,
                tau,
                spacing,
            } => {
                let (p, w, h) = load_mask(&pred)?;
                let (g, gw, gh) = load_mask(&gt)?;
                if (w, h) != (gw, gh) {
                    return Err(Error::Input(format!(
                        "mask sizes differ: {w}×{h} vs {gw}×{gh}"
                    )));
                }
                println!("DSC {:.4}", dice(&g, &p));
                println!(
                    "NSD {:.4} (tolerance {tau})",
                    nsd(&g, &p, w, h, spacing, tau)
                );
            }
            Cmd::Bench {
                model,
                random,
                backend,
                runs,
                decodes,
            } => {
                let dev = device(backend)?;
                let m = match (model, random) {
                    (_, Some(Arch::Universeg)) => {
                        return Err(Error::Input(
                            "--random is for MedSAM architectures; time UniverSeg with --model"
                                .into(),
                        ));
                    }
                    (_, Some(a)) => MedSam::random(&arch(a), 7, &dev)?,
                    (Some(model), None) => {
                        let bytes = read(&model)?;
                        if model_file::read_header(&bytes)
                            .is_ok_and(|(h, _)| h.arch == universeg::ARCH)
                        {
                            return bench_universeg(&bytes, &dev, backend, runs);
                        }
                        load_model(&model, &dev)?
                    }
                    (None, None) => {
                        return Err(Error::Input("give --model FILE or --random ARCH".into()));
                    }
                };
                let s = m.arch().input_size();
                let img = Planes::gray(medseg::imaging::GrayImage::new(
                    s,
                    s,
                    (0..s * s).map(|i| (i % 251) as u8).collect(),
                ));
                let prompt = UserPrompt::from_box([
                    s as f32 * 0.3,
                    s as f32 * 0.3,
                    s as f32 * 0.6,
                    s as f32 * 0.7,
                ]);
                let sync = |t: Tensor<4>| -> Result<()> {
                    medseg::weights::to_host(t.slice([0..1, 0..1, 0..1, 0..1])).map(|_| ())
                };
                // Warm-up (kernel compilation, allocation).
                let emb = m.embed(&img)?;
                sync(emb.tensor.clone())?;
                pollster::block_on(m.predict(&emb, &prompt))?;
                let (mut enc, mut dec, mut later) = (vec![], vec![], vec![]);
                for _ in 0..runs.max(1) {
                    let t = Instant::now();
                    let emb = m.embed(&img)?;
                    sync(emb.tensor.clone())?;
                    enc.push(t.elapsed().as_secs_f64() * 1e3);
                    for k in 0..decodes.max(1) {
                        let t = Instant::now();
                        pollster::block_on(m.predict(&emb, &prompt))?;
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        match k {
                            0 => dec.push(ms),
                            1 => {} // keeps the image-only part: neither kind
                            _ => later.push(ms),
                        }
                    }
                }
                println!("model {} on {}", m.arch().display(), backend_name(backend));
                let report = |what: &str, v: &[f64]| {
                    println!(
                        "{what} median {:.1} ms (min {:.1}, max {:.1})",
                        median(v.to_vec()),
                        v.iter().cloned().fold(f64::INFINITY, f64::min),
                        v.iter().cloned().fold(0.0, f64::max)
                    )
                };
                report("encoder", &enc);
                report("decoder", &dec);
                if !later.is_empty() {
                    report("decoder, third and later boxes on an image,", &later);
                }
            }
            Cmd::Info { model } => {
                let bytes = read(&model)?;
                let (h, _) = model_file::read_header(&bytes)?;
                println!(
                    "arch {} ({:?}), {:.1} MB",
                    h.arch,
                    h.precision,
                    bytes.len() as f64 / 1e6
                );
                println!("converted from checkpoint sha256 {}", h.source_sha256);
                println!("config {}", h.config);
            }
        }
        Ok(())
    }
}
