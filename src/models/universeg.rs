//! UniverSeg v1: in-context segmentation of a target from a support set of image–label pairs.
//!
//! Each CrossBlock convolves the target concatenated with every support item (one shared 3×3
//! conv, no nonlinearity), averages the S results into the new target, then applies separate
//! conv3×3 + LeakyReLU(0.01) to the target and to each support item. A U-Net of such blocks
//! (max-pool 2 down, bilinear ×2 align-corners up, skips concatenated after the upsampled map)
//! ends in a 1×1 conv giving logits.
//!
//! Two exact rewrites keep memory and work bounded (sums are reordered, nothing approximated):
//! - the cross conv of `[target, item]` equals `conv(target, W_t) + conv(item, W_s)`, so the
//!   target half is computed once instead of S times;
//! - the support is processed in chunks; only the per-level skips of all S items are held, and
//!   the mean over S is accumulated chunk by chunk.

use crate::models::nn::conv;
use crate::weights::Loader;
use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

const SLOPE: f64 = 0.01;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UniverSegConfig {
    /// Output channels of each encoder block (v1: four blocks of 64); the decoder mirrors all
    /// but the last.
    pub encoder: Vec<usize>,
    /// Side of the square input the model was trained at.
    pub size: usize,
}

impl UniverSegConfig {
    pub fn v1() -> Self {
        UniverSegConfig {
            encoder: vec![64, 64, 64, 64],
            size: 128,
        }
    }
}

fn conv_opts(pad: usize) -> ConvOptions<2> {
    ConvOptions::new([1, 1], [pad, pad], [1, 1], 1)
}

/// Conv (square kernel, "same" padding) followed by LeakyReLU, or by nothing for the output.
#[derive(Debug, Clone)]
struct ConvOp {
    w: Tensor<4>,
    b: Tensor<1>,
    k: usize,
    activate: bool,
}

impl ConvOp {
    fn load(l: &mut Loader, p: &str, c_in: usize, c_out: usize, k: usize, activate: bool) -> Self {
        ConvOp {
            w: l.tensor(&format!("{p}.conv.weight"), [c_out, c_in, k, k]),
            b: l.tensor(&format!("{p}.conv.bias"), [c_out]),
            k,
            activate,
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = conv(x, &self.w, Some(&self.b), &conv_opts(self.k / 2));
        if self.activate {
            leaky_relu(y, SLOPE)
        } else {
            y
        }
    }
}

#[derive(Debug, Clone)]
struct CrossBlock {
    /// Cross-conv weight split by input: the target's channels and the support item's.
    w_target: Tensor<4>,
    w_support: Tensor<4>,
    b: Tensor<1>,
    target: ConvOp,
    /// None for the last block, whose support outputs nothing reads (not even loaded).
    support: Option<ConvOp>,
}

impl CrossBlock {
    /// `c_t`, `c_s`: channels of the target and of each support item entering the block.
    fn load(l: &mut Loader, p: &str, (c_t, c_s): (usize, usize), c_out: usize, last: bool) -> Self {
        let shape = [c_out, c_t + c_s, 3, 3];
        let w = l.host(&format!("{p}.cross.cross_conv.weight"), &shape);
        let (mut wt, mut ws) = (Vec::new(), Vec::new());
        for row in w.chunks_exact((c_t + c_s) * 9) {
            wt.extend_from_slice(&row[..c_t * 9]);
            ws.extend_from_slice(&row[c_t * 9..]);
        }
        CrossBlock {
            w_target: l.upload(wt, [c_out, c_t, 3, 3]),
            w_support: l.upload(ws, [c_out, c_s, 3, 3]),
            b: l.tensor(&format!("{p}.cross.cross_conv.bias"), [c_out]),
            target: ConvOp::load(l, &format!("{p}.target.vmapped"), c_out, c_out, 3, true),
            support: (!last)
                .then(|| ConvOp::load(l, &format!("{p}.support.vmapped"), c_out, c_out, 3, true)),
        }
    }

    /// The cross-conv's target half plus its bias, shared by every support item.
    fn target_part(&self, target: Tensor<4>) -> Tensor<4> {
        conv(target, &self.w_target, Some(&self.b), &conv_opts(1))
    }

    /// `target` (1, C, H, W); `support` chunks (n_i, C', H, W) with Σ n_i = S. `pace` runs
    /// after each chunk.
    async fn forward(
        &self,
        target: Tensor<4>,
        support: &[Tensor<4>],
        pace: &mut impl AsyncFnMut(),
    ) -> (Tensor<4>, Vec<Tensor<4>>) {
        let n: usize = support.iter().map(|c| c.dims()[0]).sum();
        let t = self.target_part(target);
        let mut sum: Option<Tensor<4>> = None;
        let mut out = Vec::with_capacity(support.len());
        for chunk in support {
            let s = conv(chunk.clone(), &self.w_support, None, &conv_opts(1));
            let part = s.clone().sum_dim(0);
            sum = Some(match sum {
                None => part,
                Some(acc) => acc + part,
            });
            if let Some(conv) = &self.support {
                out.push(conv.forward(s + t.clone()));
            }
            pace().await;
        }
        let mean = sum.expect("support is never empty here") / n as f32;
        (self.target.forward(t + mean), out)
    }

    /// The last block, whose support outputs are unused: only Σᵢ conv(sᵢ) is needed, which by
    /// linearity is conv(Σᵢ sᵢ), one convolution instead of S (44 % of the model's work at S ≫ 1).
    fn forward_last(&self, target: Tensor<4>, support_sum: Tensor<4>, n: usize) -> Tensor<4> {
        let t = self.target_part(target);
        let s = conv(support_sum, &self.w_support, None, &conv_opts(1));
        self.target.forward(t + s / n as f32)
    }
}

#[derive(Debug, Clone)]
pub struct UniverSegNet {
    pub config: UniverSegConfig,
    enc: Vec<CrossBlock>,
    dec: Vec<CrossBlock>,
    out: ConvOp,
}

fn down(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}

fn up(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let mut o = InterpolateOptions::new(InterpolateMode::Bilinear);
    o.align_corners = true;
    o.output_size = Some([2 * h, 2 * w]);
    interpolate(x, o)
}

impl UniverSegNet {
    pub fn load(l: &mut Loader, config: &UniverSegConfig) -> Self {
        let mut enc = Vec::new();
        let (mut c_t, mut c_s) = (1, 2);
        for (i, &c) in config.encoder.iter().enumerate() {
            enc.push(CrossBlock::load(
                l,
                &format!("enc_blocks.{i}"),
                (c_t, c_s),
                c,
                false,
            ));
            (c_t, c_s) = (c, c);
        }
        let mut dec = Vec::new();
        let skips: Vec<usize> = config.encoder.iter().rev().skip(1).copied().collect();
        for (i, &skip) in skips.iter().enumerate() {
            let c = skip; // v1 mirrors the encoder widths
            let p = format!("dec_blocks.{i}");
            let last = i + 1 == skips.len();
            dec.push(CrossBlock::load(l, &p, (c_t + skip, c_s + skip), c, last));
            (c_t, c_s) = (c, c);
        }
        let out = ConvOp::load(l, "out_conv", c_t, 1, 1, false);
        UniverSegNet {
            config: config.clone(),
            enc,
            dec,
            out,
        }
    }

    /// Number of `pace` calls one forward pass makes with `chunks` support chunks.
    pub fn steps(&self, chunks: usize) -> usize {
        (self.enc.len() + self.dec.len() - 1) * chunks
    }

    /// Logits (1, 1, H, W) for one `target` (1, 1, H, W) given `support` chunks, each
    /// (n_i, 2, H, W) holding image and label channels; H and W divisible by 2^(blocks−1).
    /// `pace` is awaited after every chunk of every block ([`Self::steps`] times): the page
    /// yields to the browser there and reports progress, so a large support set never freezes it.
    pub async fn forward(
        &self,
        target: Tensor<4>,
        support: Vec<Tensor<4>>,
        pace: &mut impl AsyncFnMut(),
    ) -> Tensor<4> {
        let (mut t, mut s) = (target, support);
        let mut skips = Vec::new();
        let last = self.enc.len() - 1;
        for (i, block) in self.enc.iter().enumerate() {
            (t, s) = block.forward(t, &s, pace).await;
            if i < last {
                skips.push((t.clone(), s.clone()));
                t = down(t);
                s = s.into_iter().map(down).collect();
            }
        }
        let n: usize = s.iter().map(|c| c.dims()[0]).sum();
        let (last, inner) = self.dec.split_last().expect("UniverSeg has decoder blocks");
        for block in inner {
            let (t_skip, s_skip) = skips.pop().expect("one skip per decoder block");
            t = Tensor::cat(vec![up(t), t_skip], 1);
            s = s
                .into_iter()
                .zip(s_skip)
                .map(|(x, skip)| Tensor::cat(vec![up(x), skip], 1))
                .collect();
            (t, s) = block.forward(t, &s, pace).await;
        }
        // Σᵢ cat(up(sᵢ), skipᵢ) = cat(up(Σᵢ sᵢ), Σᵢ skipᵢ): upsampling is linear too.
        let (t_skip, s_skip) = skips.pop().expect("one skip per decoder block");
        let total = |v: Vec<Tensor<4>>| {
            v.into_iter()
                .map(|c| c.sum_dim(0))
                .reduce(|a, b| a + b)
                .expect("support is never empty here")
        };
        t = Tensor::cat(vec![up(t), t_skip], 1);
        let s_sum = Tensor::cat(vec![up(total(s)), total(s_skip)], 1);
        t = last.forward_last(t, s_sum, n);
        self.out.forward(t)
    }
}
