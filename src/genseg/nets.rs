//! GenSeg's three networks, trainable burn modules.
//!
//! - [`Generator`]: pix2pix's U-Net (mask → image), `log2(size)` stride-2 4×4 down-convolutions
//!   (LeakyReLU 0.2, BatchNorm), ReLU + up-convolution + BatchNorm on the way back, dropout 0.5 in
//!   the inner wide levels, tanh out. Each up-convolution is GenSeg's searchable cell: a
//!   softmax-weighted sum of transposed convolutions k/s/p 4/2/1, 6/2/2 and 8/2/3 (all exactly
//!   double the size), the weights being a row of [`UpconvArch`].
//! - [`Discriminator`]: pix2pix's 70×70 PatchGAN (3 layers) on mask ⊕ image, logits out.
//! - [`Segmenter`]: the U-Net GenSeg trains (double 3×3 conv + BatchNorm + ReLU, four
//!   max-pool downs, transposed-conv ups, 1×1 out), logits out.
//!
//! Widths are configurable: GenSeg uses 64 everywhere; a laptop run uses a fraction.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, relu, softmax, tanh};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// The up-convolution candidates (kernel, padding), all stride 2.
pub const UPCONV_OPS: [(usize, usize); 3] = [(4, 1), (6, 2), (8, 3)];

/// Sizes of the three networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Side of the square training images (a power of two, 32–256).
    pub size: usize,
    /// Generator width at the outermost level (pix2pix `ngf`, 64 in GenSeg).
    pub ngf: usize,
    /// Discriminator width (pix2pix `ndf`, 64 in GenSeg).
    pub ndf: usize,
    /// Segmenter width at full resolution (64 in GenSeg).
    pub seg_width: usize,
}

impl NetConfig {
    /// One width knob for all three networks: generator and discriminator at `width`, the
    /// segmenter at half (GenSeg's published setting is 64 everywhere).
    pub fn with_width(size: usize, width: usize) -> Self {
        NetConfig {
            size,
            ngf: width,
            ndf: width,
            seg_width: (width / 2).max(1),
        }
    }

    /// Generator depth: down to 1×1 as pix2pix's `unet_128`/`unet_256`.
    pub fn depth(&self) -> usize {
        self.size.trailing_zeros() as usize
    }
    pub fn check(&self) -> Result<(), String> {
        if !self.size.is_power_of_two() || !(32..=256).contains(&self.size) {
            return Err(format!(
                "size must be 32, 64, 128 or 256, not {}",
                self.size
            ));
        }
        if self.ngf == 0 || self.ndf == 0 || self.seg_width == 0 {
            return Err("network widths must be positive".into());
        }
        if self.ngf > 64 || self.ndf > 64 || self.seg_width > 64 {
            return Err("network widths above 64 are not supported".into());
        }
        Ok(())
    }
}

/// pix2pix initialisation: conv weights N(0, 0.02).
fn init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

fn conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
    dev: &Device,
) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(bias)
        .with_initializer(init())
        .init(dev)
}

fn upconv(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
    dev: &Device,
) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding([pad, pad])
        .with_bias(bias)
        .with_initializer(init())
        .init(dev)
}

fn norm(c: usize, dev: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(dev)
}

/// The architecture weights: one row of logits over [`UPCONV_OPS`] per generator level.
#[derive(Module, Debug)]
pub struct UpconvArch {
    pub alpha: Param<Tensor<2>>,
}

impl UpconvArch {
    pub fn new(levels: usize, dev: &Device) -> Self {
        let a = Tensor::<2>::random(
            [levels, UPCONV_OPS.len()],
            Distribution::Normal(0.0, 1e-3),
            dev,
        );
        UpconvArch {
            alpha: Param::from_tensor(a),
        }
    }
    /// Mixing weights of one level (softmax of its row).
    fn weights(&self, level: usize) -> Tensor<1> {
        let n = UPCONV_OPS.len();
        softmax(self.alpha.val().slice([level..level + 1, 0..n]), 1).reshape([n])
    }
    /// The mixing weights of every level, row by row (for display).
    pub fn probabilities(&self) -> Tensor<2> {
        softmax(self.alpha.val(), 1)
    }
}

/// GenSeg's searchable up-convolution.
#[derive(Module, Debug)]
pub struct MixedUpconv {
    ops: Vec<ConvTranspose2d>,
}

impl MixedUpconv {
    fn new(c_in: usize, c_out: usize, bias: bool, dev: &Device) -> Self {
        let ops = UPCONV_OPS
            .iter()
            .map(|&(k, p)| upconv(c_in, c_out, k, 2, p, bias, dev))
            .collect();
        MixedUpconv { ops }
    }
    fn forward(&self, x: Tensor<4>, w: Tensor<1>) -> Tensor<4> {
        let mut out: Option<Tensor<4>> = None;
        for (i, op) in self.ops.iter().enumerate() {
            let wi = w.clone().slice([i..i + 1]).reshape([1, 1, 1, 1]);
            let y = op.forward(x.clone()) * wi;
            out = Some(match out {
                Some(o) => o + y,
                None => y,
            });
        }
        out.expect("three candidates")
    }
}

/// One U-Net level: down-conv (+ norm), the inner levels, up-conv (+ norm / tanh).
#[derive(Module, Debug)]
pub struct Level {
    down: Conv2d,
    down_norm: Option<BatchNorm>,
    up: MixedUpconv,
    up_norm: Option<BatchNorm>,
    dropout: Option<Dropout>,
}

/// pix2pix's U-Net generator with searchable up-convolutions: mask (0/1) → image in [−1, 1].
#[derive(Module, Debug)]
pub struct Generator {
    /// Outermost first.
    levels: Vec<Level>,
}

impl Generator {
    pub fn new(cfg: &NetConfig, dev: &Device) -> Self {
        let n = cfg.depth();
        let g = cfg.ngf;
        // (outer, inner) channels per level, outermost first: 1→g, g→2g, 2g→4g, 4g→8g, 8g→8g…
        let width = |i: usize| if i == 0 { g } else { g << i.min(3) };
        let levels = (0..n)
            .map(|i| {
                let outer = if i == 0 { 1 } else { width(i - 1) };
                let inner = width(i);
                let outermost = i == 0;
                let innermost = i == n - 1;
                // The inner level's output is concatenated with its input except at the bottom.
                let up_in = if innermost { inner } else { inner * 2 };
                Level {
                    down: conv(outer, inner, 4, 2, 1, false, dev),
                    down_norm: (!outermost && !innermost).then(|| norm(inner, dev)),
                    up: MixedUpconv::new(up_in, outer, outermost, dev),
                    up_norm: (!outermost).then(|| norm(outer, dev)),
                    // pix2pix: dropout in the `num_downs − 5` wide levels between 4g and the bottom.
                    dropout: (i >= 4 && !innermost).then(|| DropoutConfig::new(0.5).init()),
                }
            })
            .collect();
        Generator { levels }
    }

    /// `mask`: (N, 1, S, S) in {0, 1} → (N, 1, S, S) in [−1, 1].
    pub fn forward(&self, mask: Tensor<4>, arch: &UpconvArch) -> Tensor<4> {
        self.level(0, mask, arch)
    }

    fn level(&self, i: usize, x: Tensor<4>, arch: &UpconvArch) -> Tensor<4> {
        let l = &self.levels[i];
        let outermost = i == 0;
        let innermost = i == self.levels.len() - 1;
        let d = if outermost {
            x.clone()
        } else {
            leaky_relu(x.clone(), 0.2)
        };
        let mut d = l.down.forward(d);
        if let Some(n) = &l.down_norm {
            d = n.forward(d);
        }
        let inner = if innermost {
            d
        } else {
            self.level(i + 1, d, arch)
        };
        let mut u = l.up.forward(relu(inner), arch.weights(i));
        if outermost {
            return tanh(u);
        }
        if let Some(n) = &l.up_norm {
            u = n.forward(u);
        }
        if let Some(dr) = &l.dropout {
            u = dr.forward(u);
        }
        Tensor::cat(vec![x, u], 1)
    }

    pub fn levels(&self) -> usize {
        self.levels.len()
    }
}

/// pix2pix's PatchGAN (n_layers = 3) on mask ⊕ image: a logit per 70×70 patch.
#[derive(Module, Debug)]
pub struct Discriminator {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
}

impl Discriminator {
    pub fn new(cfg: &NetConfig, dev: &Device) -> Self {
        let f = cfg.ndf;
        let convs = vec![
            conv(2, f, 4, 2, 1, true, dev),
            conv(f, 2 * f, 4, 2, 1, false, dev),
            conv(2 * f, 4 * f, 4, 2, 1, false, dev),
            conv(4 * f, 8 * f, 4, 1, 1, false, dev),
            conv(8 * f, 1, 4, 1, 1, true, dev),
        ];
        let norms = vec![norm(2 * f, dev), norm(4 * f, dev), norm(8 * f, dev)];
        Discriminator { convs, norms }
    }

    /// `mask`, `image`: (N, 1, S, S) → logits (N, 1, P, P).
    pub fn forward(&self, mask: Tensor<4>, image: Tensor<4>) -> Tensor<4> {
        let mut x = Tensor::cat(vec![mask, image], 1);
        let last = self.convs.len() - 1;
        for (i, c) in self.convs.iter().enumerate() {
            x = c.forward(x);
            if i == last {
                break;
            }
            if i > 0 {
                x = self.norms[i - 1].forward(x);
            }
            x = leaky_relu(x, 0.2);
        }
        x
    }
}

/// (3×3 conv → BatchNorm → ReLU) × 2.
#[derive(Module, Debug)]
pub struct DoubleConv {
    c1: Conv2d,
    n1: BatchNorm,
    c2: Conv2d,
    n2: BatchNorm,
}

impl DoubleConv {
    fn new(c_in: usize, c_out: usize, dev: &Device) -> Self {
        let c = |a, b| {
            Conv2dConfig::new([a, b], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(dev)
        };
        DoubleConv {
            c1: c(c_in, c_out),
            n1: norm(c_out, dev),
            c2: c(c_out, c_out),
            n2: norm(c_out, dev),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.n1.forward(self.c1.forward(x)));
        relu(self.n2.forward(self.c2.forward(x)))
    }
}

/// The segmentation U-Net: image in [0, 1] → mask logits.
#[derive(Module, Debug)]
pub struct Segmenter {
    /// Full resolution first; `downs[0]` has no pooling in front.
    downs: Vec<DoubleConv>,
    pool: MaxPool2d,
    ups: Vec<ConvTranspose2d>,
    up_convs: Vec<DoubleConv>,
    out: Conv2d,
}

/// Pooling steps of the segmenter (sizes must divide by 2^4).
pub const SEG_DEPTH: usize = 4;

impl Segmenter {
    pub fn new(cfg: &NetConfig, dev: &Device) -> Self {
        let w = |i: usize| cfg.seg_width << i;
        let downs = (0..=SEG_DEPTH)
            .map(|i| DoubleConv::new(if i == 0 { 1 } else { w(i - 1) }, w(i), dev))
            .collect();
        let ups = (0..SEG_DEPTH)
            .rev()
            .map(|i| {
                ConvTranspose2dConfig::new([w(i + 1), w(i)], [2, 2])
                    .with_stride([2, 2])
                    .init(dev)
            })
            .collect();
        let up_convs = (0..SEG_DEPTH)
            .rev()
            .map(|i| DoubleConv::new(2 * w(i), w(i), dev))
            .collect();
        Segmenter {
            downs,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            ups,
            up_convs,
            out: Conv2dConfig::new([w(0), 1], [1, 1]).init(dev),
        }
    }

    /// `image`: (N, 1, S, S) in [0, 1] → logits (N, 1, S, S).
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(SEG_DEPTH);
        let mut x = self.downs[0].forward(image);
        for d in &self.downs[1..] {
            skips.push(x.clone());
            x = d.forward(self.pool.forward(x));
        }
        for (up, dc) in self.ups.iter().zip(&self.up_convs) {
            let skip = skips.pop().expect("one skip per level");
            x = dc.forward(Tensor::cat(vec![skip, up.forward(x)], 1));
        }
        self.out.forward(x)
    }
}
