//! TinyViT, the image encoder of LiteMedSAM (MedSAM distilled into TinyViT-5M).
//!
//! 256×256 input, no patch downsampling; stages at 256 → 128 → 64 → 64 with dims
//! [64, 128, 160, 320]. Stage 0 is MBConv (inverted residual) blocks; stages 1–3 are windowed
//! attention blocks with learned relative-offset biases and a depthwise "local conv" between
//! attention and MLP. BatchNorms are folded into their convolutions at load time.

use super::neck::Neck;
use crate::models::nn::{
    Conv2d, ConvSpec, LayerNorm, Linear, add_windows, attention, gelu, windows,
};
use crate::models::{calibrate, cpu};
use crate::weights::Loader;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TinyVitConfig {
    pub img_size: usize,
    pub embed_dims: [usize; 4],
    pub depths: [usize; 4],
    pub num_heads: [usize; 4],
    pub window_sizes: [usize; 4],
    pub mlp_ratio: usize,
    pub mbconv_expand_ratio: usize,
    pub out_chans: usize,
}

impl TinyVitConfig {
    /// LiteMedSAM's configuration (CVPR24_LiteMedSAM_infer.py).
    pub fn lite_medsam() -> Self {
        TinyVitConfig {
            img_size: 256,
            embed_dims: [64, 128, 160, 320],
            depths: [2, 2, 6, 2],
            num_heads: [2, 4, 5, 10],
            window_sizes: [7, 7, 14, 7],
            mlp_ratio: 4,
            mbconv_expand_ratio: 4,
            out_chans: 256,
        }
    }
}

#[derive(Debug, Clone)]
struct MbConv {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
}

impl MbConv {
    fn load(l: &mut Loader, p: &str, dim: usize, expand: usize) -> Self {
        let h = dim * expand;
        MbConv {
            conv1: Conv2d::load_folded_bn(l, &format!("{p}.conv1"), ConvSpec::new(dim, h, 1)),
            conv2: Conv2d::load_folded_bn(
                l,
                &format!("{p}.conv2"),
                ConvSpec::new(h, h, 3).pad(1).groups(h),
            ),
            conv3: Conv2d::load_folded_bn(l, &format!("{p}.conv3"), ConvSpec::new(h, dim, 1)),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        fn layer(c: &Conv2d) -> (&Tensor<4>, &Tensor<1>) {
            (c.weight(), c.bias().expect("BatchNorm folded in"))
        }
        let layers = [layer(&self.conv1), layer(&self.conv2), layer(&self.conv3)];
        // As in `Mlp::residual`: calibration needs each layer's input whole.
        let fused = match calibrate::recording() {
            true => Err(x),
            false => cpu::mbconv(x, layers),
        };
        fused.unwrap_or_else(|x| {
            let y = self.conv1.forward_gelu(x.clone());
            let y = self.conv2.forward_gelu(y);
            gelu(self.conv3.forward(y) + x)
        })
    }
}

/// Downsampling between stages: 1×1, depthwise 3×3 (stride 2, or 1 into the last stage), 1×1.
#[derive(Debug, Clone)]
struct PatchMerging {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
}

impl PatchMerging {
    fn load(l: &mut Loader, p: &str, dim: usize, out: usize, stride: usize) -> Self {
        PatchMerging {
            conv1: Conv2d::load_folded_bn(l, &format!("{p}.conv1"), ConvSpec::new(dim, out, 1)),
            conv2: Conv2d::load_folded_bn(
                l,
                &format!("{p}.conv2"),
                ConvSpec::new(out, out, 3).stride(stride).pad(1).groups(out),
            ),
            conv3: Conv2d::load_folded_bn(l, &format!("{p}.conv3"), ConvSpec::new(out, out, 1)),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv1.forward_gelu(x);
        let y = self.conv2.forward_gelu(y);
        self.conv3.forward(y)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    norm: LayerNorm,
    qkv: Linear,
    proj: Linear,
    /// attention_biases gathered by offset: (1, heads, N, N).
    bias: Tensor<4>,
    heads: usize,
    key_dim: usize,
}

impl Attention {
    fn load(l: &mut Loader, p: &str, dim: usize, heads: usize, ws: usize) -> Self {
        let n = ws * ws;
        let table = l.host(&format!("{p}.attention_biases"), &[heads, n]);
        // Offsets are numbered in first-seen order, which for |dy|,|dx| is |dy|*ws + |dx|.
        let mut bias = Vec::with_capacity(heads * n * n);
        for h in 0..heads {
            for a in 0..n {
                for b in 0..n {
                    let (dy, dx) = ((a / ws).abs_diff(b / ws), (a % ws).abs_diff(b % ws));
                    bias.push(table[h * n + dy * ws + dx]);
                }
            }
        }
        Attention {
            norm: LayerNorm::load(l, &format!("{p}.norm"), dim, 1e-5),
            qkv: Linear::load(l, &format!("{p}.qkv"), dim, 3 * dim, true),
            proj: Linear::load(l, &format!("{p}.proj"), dim, dim, true),
            bias: l.upload(bias, [1, heads, n, n]),
            heads,
            key_dim: dim / heads,
        }
    }

    /// x: (B, N, C) → (B, N, C).
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, c] = x.dims();
        let (h, kd) = (self.heads, self.key_dim);
        // Per head the projection holds [q | k | v] side by side.
        let qkv = self
            .qkv
            .forward(self.norm.forward(x))
            .reshape([b, n, h, 3 * kd])
            .swap_dims(1, 2);
        let q = qkv.clone().slice([0..b, 0..h, 0..n, 0..kd]);
        let k = qkv.clone().slice([0..b, 0..h, 0..n, kd..2 * kd]);
        let v = qkv.slice([0..b, 0..h, 0..n, 2 * kd..3 * kd]);
        let scale = (kd as f64).powf(-0.5);
        let out = attention(q, k, v, scale, Some(&self.bias));
        self.proj.forward(out.swap_dims(1, 2).reshape([b, n, c]))
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(l: &mut Loader, p: &str, dim: usize, hidden: usize) -> Self {
        Mlp {
            norm: LayerNorm::load(l, &format!("{p}.norm"), dim, 1e-5),
            fc1: Linear::load(l, &format!("{p}.fc1"), dim, hidden, true),
            fc2: Linear::load(l, &format!("{p}.fc2"), hidden, dim, true),
        }
    }
    /// x + mlp(x).
    fn residual(&self, x: Tensor<3>) -> Tensor<3> {
        let normed = self.norm.forward(x.clone());
        let (fc1, fc2) = (&self.fc1, &self.fc2);
        let layer = |l: &Linear| {
            (
                l.weight().clone(),
                l.bias().cloned().expect("MLPs have biases"),
            )
        };
        let ((w1, b1), (w2, b2)) = (layer(fc1), layer(fc2));
        // Calibration sees each layer's input, which the fused form never makes whole.
        let fused = match calibrate::recording() {
            true => Err((x, normed)),
            false => cpu::mlp_residual(x, normed, (&w1, &b1), (&w2, &b2)),
        };
        fused.unwrap_or_else(|(x, normed)| x + fc2.forward(fc1.forward_gelu(normed)))
    }
}

#[derive(Debug, Clone)]
struct Block {
    attn: Attention,
    mlp: Mlp,
    local_conv: Conv2d,
    ws: usize,
}

impl Block {
    fn load(
        l: &mut Loader,
        p: &str,
        dim: usize,
        heads: usize,
        ws: usize,
        mlp_ratio: usize,
    ) -> Self {
        Block {
            attn: Attention::load(l, &format!("{p}.attn"), dim, heads, ws),
            mlp: Mlp::load(l, &format!("{p}.mlp"), dim, dim * mlp_ratio),
            local_conv: Conv2d::load_folded_bn(
                l,
                &format!("{p}.local_conv"),
                ConvSpec::new(dim, dim, 3).pad(1).groups(dim),
            ),
            ws,
        }
    }

    /// x: (B, H·W, C) tokens of an H×W map.
    fn forward(&self, x: Tensor<3>, hw: (usize, usize)) -> Tensor<3> {
        let (h, w, ws) = (hw.0, hw.1, self.ws);
        let x = if h == ws && w == ws {
            x.clone() + self.attn.forward(x)
        } else {
            // The padded tokens take part in attention (after the attention's own LayerNorm),
            // exactly as in the official code.
            let out = self.attn.forward(windows(x.clone(), hw, ws));
            add_windows(x, out, hw, ws)
        };
        let x = self.local_conv.forward_tokens(x, (h, w));
        self.mlp.residual(x)
    }
}

/// The TinyViT image encoder with SAM's neck: (B, 3, 256, 256) in [0, 1] → (B, 256, 64, 64).
#[derive(Debug, Clone)]
pub struct TinyVit {
    embed1: Conv2d,
    embed2: Conv2d,
    conv_blocks: Vec<MbConv>,
    /// One per stage; the last stage has none.
    merges: Vec<PatchMerging>,
    stages: Vec<Vec<Block>>,
    neck: Neck,
}

impl TinyVit {
    pub fn load(l: &mut Loader, p: &str, cfg: &TinyVitConfig) -> Self {
        let d = cfg.embed_dims;
        let embed1 = Conv2d::load_folded_bn(
            l,
            &format!("{p}.patch_embed.seq.0"),
            ConvSpec::new(3, d[0] / 2, 1),
        );
        let embed2 = Conv2d::load_folded_bn(
            l,
            &format!("{p}.patch_embed.seq.2"),
            ConvSpec::new(d[0] / 2, d[0], 1),
        );
        let conv_blocks = (0..cfg.depths[0])
            .map(|i| {
                MbConv::load(
                    l,
                    &format!("{p}.layers.0.blocks.{i}"),
                    d[0],
                    cfg.mbconv_expand_ratio,
                )
            })
            .collect();
        let mut merges = Vec::new();
        let mut stages = Vec::new();
        for s in 0..4 {
            if s > 0 {
                stages.push(
                    (0..cfg.depths[s])
                        .map(|i| {
                            let bp = format!("{p}.layers.{s}.blocks.{i}");
                            Block::load(
                                l,
                                &bp,
                                d[s],
                                cfg.num_heads[s],
                                cfg.window_sizes[s],
                                cfg.mlp_ratio,
                            )
                        })
                        .collect(),
                );
            }
            if s < 3 {
                // The official code keeps full resolution when merging into the 320-wide stage.
                let stride = if matches!(d[s + 1], 320 | 448 | 576) {
                    1
                } else {
                    2
                };
                merges.push(PatchMerging::load(
                    l,
                    &format!("{p}.layers.{s}.downsample"),
                    d[s],
                    d[s + 1],
                    stride,
                ));
            }
        }
        let neck = Neck::load(l, &format!("{p}.neck"), d[3], cfg.out_chans);
        TinyVit {
            embed1,
            embed2,
            conv_blocks,
            merges,
            stages,
            neck,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.embed2.forward(self.embed1.forward_gelu(x));
        for blk in &self.conv_blocks {
            x = blk.forward(x);
        }
        for s in 1..4 {
            x = self.merges[s - 1].forward(x);
            let [b, c, h, w] = x.dims();
            let mut t = x.reshape([b, c, h * w]).swap_dims(1, 2);
            for blk in &self.stages[s - 1] {
                t = blk.forward(t, (h, w));
            }
            x = t.swap_dims(1, 2).reshape([b, c, h, w]);
        }
        self.neck.forward(x)
    }
}
