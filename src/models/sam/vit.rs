//! SAM's ViT image encoder (MedSAM ViT-B), configurable so reduced test configurations load.
//!
//! Patch embedding + absolute positions, transformer blocks with windowed or global attention
//! and decomposed relative positions, then the conv neck.

use super::neck::Neck;
use crate::models::nn::{Conv2d, ConvSpec, LayerNorm, Linear, attention_softmax, gelu};
use crate::weights::Loader;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VitConfig {
    pub img_size: usize,
    pub patch_size: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub window_size: usize,
    pub global_attn_indexes: Vec<usize>,
    pub mlp_ratio: usize,
    pub out_chans: usize,
}

impl VitConfig {
    /// MedSAM ViT-B (SAM ViT-B at 1024×1024).
    pub fn medsam_vit_b() -> Self {
        VitConfig {
            img_size: 1024,
            patch_size: 16,
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            window_size: 14,
            global_attn_indexes: vec![2, 5, 8, 11],
            mlp_ratio: 4,
            out_chans: 256,
        }
    }
    pub fn grid(&self) -> usize {
        self.img_size / self.patch_size
    }
}

#[derive(Debug, Clone)]
struct Attention {
    qkv: Linear,
    proj: Linear,
    /// rel_pos_h/w gathered to (S, S, head_dim): R[i, j] = rel_pos[i - j + S - 1].
    rel_h: Tensor<3>,
    rel_w: Tensor<3>,
    heads: usize,
}

fn gather_rel_pos(table: &[f32], s: usize, hd: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(s * s * hd);
    for i in 0..s {
        for j in 0..s {
            let r = i + s - 1 - j;
            out.extend_from_slice(&table[r * hd..(r + 1) * hd]);
        }
    }
    out
}

impl Attention {
    fn load(l: &mut Loader, p: &str, dim: usize, heads: usize, size: usize) -> Self {
        let hd = dim / heads;
        let rh = l.host(&format!("{p}.rel_pos_h"), &[2 * size - 1, hd]);
        let rw = l.host(&format!("{p}.rel_pos_w"), &[2 * size - 1, hd]);
        Attention {
            qkv: Linear::load(l, &format!("{p}.qkv"), dim, 3 * dim, true),
            proj: Linear::load(l, &format!("{p}.proj"), dim, dim, true),
            rel_h: l.upload(gather_rel_pos(&rh, size, hd), [size, size, hd]),
            rel_w: l.upload(gather_rel_pos(&rw, size, hd), [size, size, hd]),
            heads,
        }
    }

    /// x: (B, H, W, C) with H = W = the size this attention was built for.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let (nh, hd) = (self.heads, c / self.heads);
        let bh = b * nh;
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, h * w, 3, nh, hd])
            .permute([2, 0, 3, 1, 4]);
        let qkv = qkv.reshape([3, bh, h * w, hd]);
        let q = qkv
            .clone()
            .slice([0..1, 0..bh, 0..h * w, 0..hd])
            .reshape([bh, h * w, hd]);
        let k = qkv
            .clone()
            .slice([1..2, 0..bh, 0..h * w, 0..hd])
            .reshape([bh, h * w, hd]);
        let v = qkv
            .slice([2..3, 0..bh, 0..h * w, 0..hd])
            .reshape([bh, h * w, hd]);
        let scale = (hd as f64).powf(-0.5);
        let attn = (q.clone() * scale).matmul(k.swap_dims(1, 2));

        // Decomposed relative positions use the unscaled queries.
        let rq = q.reshape([bh, h, w, hd]);
        // rel_h[b, y, x, ky] = Σ_c rq[b, y, x, c] · Rh[y, ky, c]
        let rel_h = rq
            .clone()
            .permute([1, 0, 2, 3])
            .reshape([h, bh * w, hd])
            .matmul(self.rel_h.clone().swap_dims(1, 2))
            .reshape([h, bh, w, h])
            .permute([1, 0, 2, 3]);
        // rel_w[b, y, x, kx] = Σ_c rq[b, y, x, c] · Rw[x, kx, c]
        let rel_w = rq
            .permute([2, 0, 1, 3])
            .reshape([w, bh * h, hd])
            .matmul(self.rel_w.clone().swap_dims(1, 2))
            .reshape([w, bh, h, w])
            .permute([1, 2, 0, 3]);
        let attn = attn.reshape([bh, h, w, h, w])
            + rel_h.unsqueeze_dim::<5>(4).expand([bh, h, w, h, w])
            + rel_w.unsqueeze_dim::<5>(3).expand([bh, h, w, h, w]);
        let attn = attention_softmax(attn.reshape([bh, 1, h * w, h * w]), 1.0, None).reshape([
            bh,
            h * w,
            h * w,
        ]);
        let out = attn
            .matmul(v)
            .reshape([b, nh, h, w, hd])
            .permute([0, 2, 3, 1, 4])
            .reshape([b, h, w, c]);
        self.proj.forward(out)
    }
}

#[derive(Debug, Clone)]
struct Block {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    lin1: Linear,
    lin2: Linear,
    window: usize,
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let y = self.norm1.forward(x.clone());
        let y = if self.window == 0 {
            self.attn.forward(y)
        } else {
            // Zero-pad after the norm, as SAM's window_partition does.
            let ws = self.window;
            let (ph, pw) = (h.div_ceil(ws) * ws, w.div_ceil(ws) * ws);
            let mut m = y;
            if ph > h {
                m = Tensor::cat(
                    vec![m.clone(), Tensor::zeros([b, ph - h, w, c], &m.device())],
                    1,
                );
            }
            if pw > w {
                m = Tensor::cat(
                    vec![m.clone(), Tensor::zeros([b, ph, pw - w, c], &m.device())],
                    2,
                );
            }
            let (nh, nw) = (ph / ws, pw / ws);
            let win =
                m.reshape([b, nh, ws, nw, ws, c])
                    .swap_dims(2, 3)
                    .reshape([b * nh * nw, ws, ws, c]);
            let out = self.attn.forward(win);
            let m = out
                .reshape([b, nh, nw, ws, ws, c])
                .swap_dims(2, 3)
                .reshape([b, ph, pw, c]);
            m.slice([0..b, 0..h, 0..w, 0..c])
        };
        let x = x + y;
        let mlp = self
            .lin2
            .forward(gelu(self.lin1.forward(self.norm2.forward(x.clone()))));
        x + mlp
    }
}

/// SAM ViT image encoder: (B, 3, S, S) → (B, out_chans, S/patch, S/patch).
#[derive(Debug, Clone)]
pub struct Vit {
    patch: Conv2d,
    pos: Tensor<4>,
    blocks: Vec<Block>,
    neck: Neck,
}

impl Vit {
    pub fn load(l: &mut Loader, p: &str, cfg: &VitConfig) -> Self {
        let (d, g) = (cfg.embed_dim, cfg.grid());
        let patch = Conv2d::load(
            l,
            &format!("{p}.patch_embed.proj"),
            ConvSpec::new(3, d, cfg.patch_size).stride(cfg.patch_size),
            true,
        );
        let pos = l.tensor(&format!("{p}.pos_embed"), [1, g, g, d]);
        let blocks = (0..cfg.depth)
            .map(|i| {
                let bp = format!("{p}.blocks.{i}");
                let window = if cfg.global_attn_indexes.contains(&i) {
                    0
                } else {
                    cfg.window_size
                };
                let size = if window == 0 { g } else { window };
                Block {
                    norm1: LayerNorm::load(l, &format!("{bp}.norm1"), d, 1e-6),
                    attn: Attention::load(l, &format!("{bp}.attn"), d, cfg.num_heads, size),
                    norm2: LayerNorm::load(l, &format!("{bp}.norm2"), d, 1e-6),
                    lin1: Linear::load(l, &format!("{bp}.mlp.lin1"), d, d * cfg.mlp_ratio, true),
                    lin2: Linear::load(l, &format!("{bp}.mlp.lin2"), d * cfg.mlp_ratio, d, true),
                    window,
                }
            })
            .collect();
        let neck = Neck::load(l, &format!("{p}.neck"), d, cfg.out_chans);
        Vit {
            patch,
            pos,
            blocks,
            neck,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.patch.forward(x).permute([0, 2, 3, 1]) + self.pos.clone();
        for blk in &self.blocks {
            x = blk.forward(x);
        }
        self.neck.forward(x.permute([0, 3, 1, 2]))
    }
}
