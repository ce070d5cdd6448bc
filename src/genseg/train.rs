//! GenSeg training: a pix2pix generator, its discriminator and a segmenter trained together
//! on a few labelled pairs, with the generator's up-convolution mix learned from the
//! segmenter's loss on held-out real pairs.
//!
//! One iteration, batch 1 as GenSeg:
//! 1. pix2pix on a real pair (m, x): discriminator step on (m, G(m)) vs (m, x), then generator
//!    step on GAN + λ·L1 (λ = 100).
//! 2. Segmenter step on the real pair and on a synthetic pair (m', G(m')) with m' a new
//!    augmentation of a real mask; G(m') min-max normalised to [0, 1] and detached.
//! 3. Architecture step (the outer level). The goal is the held-out loss L_val(w*(α)) of a
//!    segmenter trained on G_α's images. We take the DARTS one-step unrolled approximation,
//!    w' = w − ξ∇_w L_syn(w, α), whose α-gradient is −ξ ∇²_{α,w} L_syn · ∇_{w'} L_val, and compute
//!    the mixed second derivative by finite differences: with v = ∇_w L_val(w) (we evaluate at w,
//!    DARTS' first-order shortcut for w') and w± = w ± εv,
//!    ∇_α ≈ −ξ [∇_α L_syn(w⁺, α) − ∇_α L_syn(w⁻, α)] / 2ε, one backward through G of
//!    L_syn(w⁺) − L_syn(w⁻) on the same generated image. So here the gradient does flow
//!    through the generated image (into α), unlike the released script, which detaches the
//!    image and updates α from the generator's own pix2pix loss on the validation pair: that
//!    path never sees the segmenter, so it cannot tune the generator toward what helps it.

use super::augment::Ranges;
use super::nets::{Discriminator, Generator, NetConfig, Segmenter, UpconvArch};
use super::store;
use crate::error::{Error, Result};
use crate::imaging::GrayImage;
use crate::imaging::resize::bilinear;
use crate::random::SplitMix;
use crate::weights::model_file::Precision;
use crate::weights::{StateDict, to_host_async};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// A labelled example at training size: image in [0, 1], mask in {0, 1}, `size`² row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub image: Vec<f32>,
    pub mask: Vec<f32>,
}

/// Everything that shapes a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub net: NetConfig,
    /// Weight of the L1 term in the generator loss (pix2pix: 100).
    pub lambda_l1: f32,
    /// Adam learning rate of generator and discriminator (pix2pix: 2e-4, β₁ 0.5).
    pub lr_gan: f64,
    /// Adam learning rate of the segmenter; also ξ of the unrolled step.
    pub lr_seg: f64,
    /// Adam learning rate of the architecture weights (β₁ 0.5, weight decay 1e-3 as GenSeg).
    pub lr_arch: f64,
    /// Architecture step every this many iterations (0: never).
    pub arch_every: usize,
    /// Train with synthetic pairs (GenSeg); false trains the segmenter on real pairs alone.
    pub synthetic: bool,
    pub seed: u64,
}

impl TrainConfig {
    /// A laptop-sized default: 128², narrow networks.
    pub fn new(net: NetConfig) -> Self {
        TrainConfig {
            net,
            lambda_l1: 100.0,
            lr_gan: 2e-4,
            lr_seg: 1e-3,
            lr_arch: 3e-4,
            arch_every: 1,
            synthetic: true,
            seed: 0,
        }
    }
}

/// Losses of one iteration (NaN where a part did not run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    pub d_real: f32,
    pub d_fake: f32,
    pub g_gan: f32,
    pub g_l1: f32,
    pub seg_real: f32,
    pub seg_synth: f32,
    /// Segmenter loss on the held-out pair used by the architecture step.
    pub seg_val: f32,
}

/// The trained parts that are kept: what `generate` and `segment` need.
#[derive(Debug, Clone)]
pub struct GenSegModel {
    pub config: TrainConfig,
    pub generator: Generator,
    pub arch: UpconvArch,
    pub segmenter: Segmenter,
}

/// A run in progress.
pub struct Trainer {
    pub model: GenSegModel,
    disc: Discriminator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    opt_s: ModuleOptimizer,
    opt_a: ModuleOptimizer,
    train: Vec<Pair>,
    val: Vec<Pair>,
    order: Vec<usize>,
    rng: SplitMix,
    pub augment: Ranges,
    pub iteration: usize,
    device: Device,
}

fn plane(v: &[f32], size: usize, dev: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, 1, size, size]), dev)
}

/// Mean binary cross-entropy of logits against a 0/1 target (BCEWithLogits).
pub fn bce_logits(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    // (1 − t)·x − log σ(x) is −[t log σ(x) + (1 − t) log(1 − σ(x))], stable for large |x|.
    ((target.ones_like() - target) * logits.clone() - log_sigmoid(logits)).mean()
}

/// 1 − mean soft Dice of σ(logits) per sample (GenSeg's U-Net `dice_loss`, ε = 1e-6).
pub fn dice_loss(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = logits.dims();
    let p = sigmoid(logits).reshape([n, c * h * w]);
    let t = target.reshape([n, c * h * w]);
    let inter = (p.clone() * t.clone()).sum_dim(1).mul_scalar(2.0);
    let sets = p.sum_dim(1) + t.sum_dim(1);
    let dice = (inter.add_scalar(1e-6)) / (sets.add_scalar(1e-6));
    dice.mean().neg().add_scalar(1.0)
}

/// The segmenter's loss: BCE + Dice.
pub fn seg_loss(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    bce_logits(logits.clone(), target.clone()) + dice_loss(logits, target)
}

/// Min-max to [0, 1] per image with the extremes held constant (so gradients flow through
/// the image only), as GenSeg normalises generated images before segmenting them.
fn to_unit(img: Tensor<4>) -> Tensor<4> {
    let lo = img.clone().detach().min().reshape([1, 1, 1, 1]);
    let hi = img.clone().detach().max().reshape([1, 1, 1, 1]);
    (img - lo.clone()) / (hi - lo).clamp_min(1e-6)
}

/// Reads scalar losses (each a one-element tensor) in one transfer.
async fn read_all(parts: Vec<Tensor<1>>) -> Result<Vec<f32>> {
    to_host_async(Tensor::cat(parts, 0)).await
}

impl Trainer {
    /// Checks the pairs and sets up the networks on `device` (made autodiff here).
    pub fn new(
        config: TrainConfig,
        train: Vec<Pair>,
        val: Vec<Pair>,
        device: &Device,
    ) -> Result<Self> {
        config.net.check().map_err(Error::Input)?;
        let n = config.net.size * config.net.size;
        if train.is_empty() {
            return Err(Error::Input(
                "GenSeg needs at least one training pair".into(),
            ));
        }
        for (i, p) in train.iter().chain(&val).enumerate() {
            if p.image.len() != n || p.mask.len() != n {
                return Err(Error::Input(format!(
                    "pair {} is not {}×{} (prepare pairs with genseg::pairs first)",
                    i + 1,
                    config.net.size,
                    config.net.size
                )));
            }
        }
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let net = &config.net;
        let model = GenSegModel::new(config, &device);
        let gan = AdamConfig::new().with_beta_1(0.5).with_beta_2(0.999);
        let arch_opt = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(1e-3)));
        let mut rng = SplitMix(config.seed ^ 0x6E5E_6000);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let k = order.len();
        rng.shuffle(&mut order, k);
        Ok(Trainer {
            model,
            disc: Discriminator::new(net, &device),
            opt_g: gan.init(),
            opt_d: gan.init(),
            opt_s: AdamConfig::new().init(),
            opt_a: arch_opt.init(),
            train,
            val,
            order,
            rng,
            augment: Ranges::default(),
            iteration: 0,
            device,
        })
    }

    fn size(&self) -> usize {
        self.model.config.net.size
    }

    /// A new mask by augmenting a random training mask.
    pub fn new_mask(&mut self) -> Vec<f32> {
        let s = self.size();
        let i = self.rng.below(self.train.len());
        self.augment
            .augment(&self.train[i].mask, s, s, &mut self.rng)
    }

    /// One iteration (see the module docs); returns its losses.
    pub async fn step(&mut self) -> Result<Losses> {
        self.step_paced(&mut async || {}).await
    }

    /// As [`step`](Self::step), awaiting `pace()` between its phases (the page yields there,
    /// so a click is handled within one phase on the CPU path).
    pub async fn step_paced(&mut self, pace: &mut impl AsyncFnMut()) -> Result<Losses> {
        let cfg = self.model.config;
        let (s, dev) = (self.size(), self.device.clone());
        let real = self.train[self.order[self.iteration % self.order.len()]].clone();
        let m = plane(&real.mask, s, &dev);
        let x01 = plane(&real.image, s, &dev);
        let nan = || Tensor::<1>::from_floats([f32::NAN], &dev);
        // Reported as [d_real, d_fake, g_gan, g_l1, seg_real, seg_synth, seg_val].
        let mut report = vec![nan(), nan(), nan(), nan(), nan(), nan(), nan()];
        let mut seg_in = vec![x01];
        let mut seg_target = vec![m.clone()];
        if cfg.synthetic {
            let [d_real, d_fake, g_gan, g_l1] = self.gan_step(m, &real.image);
            report.splice(0..4, [d_real, d_fake, g_gan, g_l1]);
            pace().await;
            let m2 = plane(&self.new_mask(), s, &dev);
            seg_in.push(to_unit(self.fake(m2.clone()).detach()));
            seg_target.push(m2);
        }
        // Segmenter step: real and synthetic as one batch.
        let parts = self.seg_update(Tensor::cat(seg_in, 0), Tensor::cat(seg_target, 0));
        for (slot, p) in report[4..6].iter_mut().zip(parts) {
            *slot = p;
        }
        pace().await;

        if cfg.synthetic
            && cfg.arch_every > 0
            && !self.val.is_empty()
            && self.iteration % cfg.arch_every == 0
        {
            report[6] = self.arch_step();
        }
        self.iteration += 1;
        let v = read_all(report).await?;
        Ok(Losses {
            d_real: v[0],
            d_fake: v[1],
            g_gan: v[2],
            g_l1: v[3],
            seg_real: v[4],
            seg_synth: v[5],
            seg_val: v[6],
        })
    }

    /// pix2pix: discriminator then generator on the real pair (m, x); returns the losses
    /// [d_real, d_fake, g_gan, g_l1] (detached).
    fn gan_step(&mut self, m: Tensor<4>, image01: &[f32]) -> [Tensor<1>; 4] {
        let x = self.plane(image01).mul_scalar(2.0).sub_scalar(1.0);
        let fake = self.fake(m.clone());
        let [d_real, d_fake] = self.d_update(m.clone(), x.clone(), fake.clone().detach());
        let [g_gan, g_l1] = self.g_update(m, x, fake);
        [d_real, d_fake, g_gan, g_l1]
    }

    /// A (1, 1, S, S) tensor on the training device from a size² plane.
    pub fn plane(&self, v: &[f32]) -> Tensor<4> {
        plane(v, self.size(), &self.device)
    }

    /// The generator's image for `mask`, in [−1, 1], with its graph.
    pub fn fake(&self, mask: Tensor<4>) -> Tensor<4> {
        self.model.generator.forward(mask, &self.model.arch)
    }

    /// Discriminator loss parts [real, fake] (pix2pix: BCE on logits, real → 1, fake → 0).
    pub fn d_loss(&self, m: Tensor<4>, x: Tensor<4>, fake: Tensor<4>) -> [Tensor<1>; 2] {
        let pred_fake = self.disc.forward(m.clone(), fake);
        let pred_real = self.disc.forward(m, x);
        let d_fake = bce_logits(pred_fake.clone(), pred_fake.zeros_like());
        let d_real = bce_logits(pred_real.clone(), pred_real.ones_like());
        [d_real, d_fake]
    }

    /// Generator loss parts [GAN, λ·L1] for an image `fake` made from `m`.
    pub fn g_loss(&self, m: Tensor<4>, x: Tensor<4>, fake: Tensor<4>) -> [Tensor<1>; 2] {
        let pred = self.disc.forward(m, fake.clone());
        let g_gan = bce_logits(pred.clone(), pred.ones_like());
        let g_l1 = (fake - x)
            .abs()
            .mean()
            .mul_scalar(self.model.config.lambda_l1);
        [g_gan, g_l1]
    }

    /// One discriminator step (fake detached); returns the losses it stepped from.
    pub fn d_update(&mut self, m: Tensor<4>, x: Tensor<4>, fake: Tensor<4>) -> [Tensor<1>; 2] {
        let [d_real, d_fake] = self.d_loss(m, x, fake);
        let loss = (d_real.clone() + d_fake.clone()).mul_scalar(0.5);
        let grads = GradientsParams::from_grads(loss.backward(), &self.disc);
        self.disc = self
            .opt_d
            .step(self.model.config.lr_gan, self.disc.clone(), grads);
        [d_real.detach(), d_fake.detach()]
    }

    /// One generator step; returns the losses it stepped from.
    pub fn g_update(&mut self, m: Tensor<4>, x: Tensor<4>, fake: Tensor<4>) -> [Tensor<1>; 2] {
        let [g_gan, g_l1] = self.g_loss(m, x, fake);
        let grads = GradientsParams::from_grads(
            (g_gan.clone() + g_l1.clone()).backward(),
            &self.model.generator,
        );
        self.model.generator = self.opt_g.step(
            self.model.config.lr_gan,
            self.model.generator.clone(),
            grads,
        );
        [g_gan.detach(), g_l1.detach()]
    }

    /// Segmenter loss per batch item (images in [0, 1], 0/1 targets, batch on axis 0).
    pub fn seg_losses(&self, images: Tensor<4>, targets: Tensor<4>) -> Vec<Tensor<1>> {
        let n = images.dims()[0];
        let logits = self.model.segmenter.forward(images);
        (0..n)
            .map(|i| {
                seg_loss(
                    logits.clone().slice([i..i + 1]),
                    targets.clone().slice([i..i + 1]),
                )
            })
            .collect()
    }

    /// One segmenter step on the sum of the items' losses; returns them (detached).
    pub fn seg_update(&mut self, images: Tensor<4>, targets: Tensor<4>) -> Vec<Tensor<1>> {
        let parts = self.seg_losses(images, targets);
        let total = parts
            .iter()
            .cloned()
            .reduce(|a, b| a + b)
            .expect("a non-empty batch");
        let grads = GradientsParams::from_grads(total.backward(), &self.model.segmenter);
        self.model.segmenter = self.opt_s.step(
            self.model.config.lr_seg,
            self.model.segmenter.clone(),
            grads,
        );
        parts.into_iter().map(Tensor::detach).collect()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The outer step (module docs); returns the held-out loss it started from (detached).
    /// Everything stays on the device: no reads, so it costs no round trip on a GPU.
    fn arch_step(&mut self) -> Tensor<1> {
        let cfg = self.model.config;
        let (s, dev) = (self.size(), self.device.clone());
        let v = &self.val[self.rng.below(self.val.len())];
        let logits = self.model.segmenter.forward(plane(&v.image, s, &dev));
        let val_loss = seg_loss(logits, plane(&v.mask, s, &dev));
        let report = val_loss.clone().detach();
        let grads = GradientsParams::from_grads(val_loss.backward(), &self.model.segmenter);
        // ε = 0.01 / ‖v‖ as DARTS (a zero gradient gives a zero step, not a division by zero).
        let eps = grad_norm(&self.model.segmenter, &grads)
            .clamp_min(1e-12)
            .recip()
            .mul_scalar(0.01);
        let plus = shifted(self.model.segmenter.clone(), &grads, eps.clone());
        let minus = shifted(self.model.segmenter.clone(), &grads, eps.clone().neg());

        let m = plane(&self.new_mask(), s, &dev);
        let img = to_unit(self.model.generator.forward(m.clone(), &self.model.arch));
        let diff = seg_loss(plus.forward(img.clone()), m.clone()) - seg_loss(minus.forward(img), m);
        let all = diff.backward();
        let Some(g) = self.model.arch.alpha.val().grad(&all) else {
            return report;
        };
        let scale = eps
            .recip()
            .mul_scalar(-(cfg.lr_seg as f32) / 2.0)
            .reshape([1, 1]);
        let mut ga = GradientsParams::new();
        ga.register(self.model.arch.alpha.id, g * scale);
        self.model.arch = self.opt_a.step(cfg.lr_arch, self.model.arch.clone(), ga);
        report
    }

    /// Held-out loss of the current segmenter, averaged over the validation pairs (no update).
    pub async fn validation_loss(&self) -> Result<Option<f32>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let s = self.size();
        let seg = self.model.segmenter.valid();
        let dev = self.device.clone().inner();
        let parts = self
            .val
            .iter()
            .map(|v| {
                seg_loss(
                    seg.forward(plane(&v.image, s, &dev)),
                    plane(&v.mask, s, &dev),
                )
            })
            .collect();
        let v = read_all(parts).await?;
        Ok(Some(v.iter().sum::<f32>() / v.len() as f32))
    }
}

/// ‖v‖₂ over the module's parameters that have a gradient, as a one-element tensor.
fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> Tensor<1> {
    struct Sq<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Sq<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut sq = Sq { grads, total: None };
    module.visit(&mut sq);
    sq.total.expect("the segmenter has parameters").sqrt()
}

/// `module` with each parameter w replaced by w + eps·g (detached: a probe, not trained).
fn shifted<M: Module>(module: M, grads: &GradientsParams, eps: Tensor<1>) -> M {
    struct Shift<'a> {
        grads: &'a GradientsParams,
        eps: Tensor<1>,
    }
    impl ModuleMapper for Shift<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            match self.grads.get::<D>(param.id) {
                Some(g) => {
                    let eps = self.eps.clone().reshape([1; D]);
                    param.map(|w| (w.detach() + g * eps).detach())
                }
                None => param,
            }
        }
    }
    module.map(&mut Shift { grads, eps })
}

impl GenSegModel {
    /// Freshly initialised networks for `config` on `device` (an autodiff device: the
    /// generator runs in training mode even when it only generates).
    fn new(config: TrainConfig, device: &Device) -> Self {
        let generator = Generator::new(&config.net, device);
        GenSegModel {
            config,
            arch: UpconvArch::new(generator.levels(), device),
            segmenter: Segmenter::new(&config.net, device),
            generator,
        }
    }

    fn train_device(&self) -> Device {
        self.segmenter.devices()[0].clone().autodiff()
    }

    /// A synthetic image (in [0, 1]) for a 0/1 mask at the model's size. pix2pix and GenSeg
    /// generate in training mode (batch statistics, dropout as the noise source), so we do too.
    pub async fn generate(&self, mask: &[f32], seed: u64) -> Result<Vec<f32>> {
        let s = self.config.net.size;
        if mask.len() != s * s {
            return Err(Error::Input(format!("mask must be {s}×{s}")));
        }
        let dev = self.train_device();
        dev.seed(seed);
        let img = to_unit(
            self.generator
                .forward(plane(mask, s, &dev), &self.arch)
                .detach(),
        );
        to_host_async(img).await
    }

    /// A synthetic pair: a new mask augmented from one of `masks` (0/1, the model's size)
    /// and the image generated for it.
    pub async fn synthetic_pair(&self, masks: &[Vec<f32>], rng: &mut SplitMix) -> Result<Pair> {
        let s = self.config.net.size;
        if masks.is_empty() {
            return Err(Error::Input("no masks to draw new masks from".into()));
        }
        let src = &masks[rng.below(masks.len())];
        let mask = Ranges::default().augment(src, s, s, rng);
        let image = self.generate(&mask, rng.next_u64()).await?;
        Ok(Pair { image, mask })
    }

    /// Foreground probability per pixel for an image in [0, 1] at the model's size.
    pub async fn segment(&self, image: &[f32]) -> Result<Vec<f32>> {
        let s = self.config.net.size;
        if image.len() != s * s {
            return Err(Error::Input(format!("image must be {s}×{s}")));
        }
        let seg = self.segmenter.valid();
        let dev = seg.devices()[0].clone();
        let p = sigmoid(seg.forward(plane(image, s, &dev)));
        to_host_async(p).await
    }

    /// A 0/1 mask at the image's size: the image resized and normalised as in training,
    /// segmented, the probabilities resized back (bilinear) and thresholded at 0.5.
    pub async fn segment_image(&self, image: &GrayImage) -> Result<Vec<u8>> {
        let s = self.config.net.size;
        let p = self
            .segment(&super::pairs::prepare_image(image, s)?)
            .await?;
        Ok(bilinear(&p, s, s, image.width, image.height)
            .iter()
            .map(|&v| u8::from(v > 0.5))
            .collect())
    }

    /// Mixing weights of the up-convolution candidates per generator level.
    pub async fn upconv_mix(&self) -> Result<Vec<[f32; 3]>> {
        let n = self.arch.alpha.val().dims()[0] * 3;
        let p = to_host_async(self.arch.probabilities().reshape([n])).await?;
        Ok(p.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
    }

    /// The weights as a model file (f32).
    pub async fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut dict = StateDict::new();
        store::collect(&self.generator, "generator", &mut dict).await?;
        store::collect(&self.arch, "arch", &mut dict).await?;
        store::collect(&self.segmenter, "segmenter", &mut dict).await?;
        let config = serde_json::to_value(self.config).expect("config serialises");
        let f32_only = |_: &str| None;
        Ok(crate::weights::model_file::write(
            ARCH,
            config,
            Precision::F32,
            &f32_only,
            &Default::default(),
            "",
            &dict,
        ))
    }

    /// Reads weights written by [`to_bytes`](Self::to_bytes) onto `device`.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        let (header, dict) = crate::weights::model_file::read(bytes, ARCH)?;
        let config: TrainConfig = serde_json::from_value(header.config)
            .map_err(|e| Error::Weights(format!("GenSeg model file has a bad config: {e}")))?;
        config.net.check().map_err(Error::Weights)?;
        let m = GenSegModel::new(config, &device.clone().autodiff());
        Ok(GenSegModel {
            generator: store::restore(m.generator, "generator", &dict)?,
            arch: store::restore(m.arch, "arch", &dict)?,
            segmenter: store::restore(m.segmenter, "segmenter", &dict)?,
            config,
        })
    }
}

/// The architecture name in model files.
pub const ARCH: &str = "genseg";
