//! SAM's two-way transformer: prompt tokens and image tokens attend to each other.

use crate::models::cpu::contiguous;
use crate::models::nn::{LayerNorm, Linear, attention_softmax};
use crate::weights::Loader;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// Multi-head attention with an optional internal downsampling of the embedding dim.
#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(l: &mut Loader, p: &str, dim: usize, heads: usize, downsample: usize) -> Self {
        let inner = dim / downsample;
        Attention {
            q: Linear::load(l, &format!("{p}.q_proj"), dim, inner, true),
            k: Linear::load(l, &format!("{p}.k_proj"), dim, inner, true),
            v: Linear::load(l, &format!("{p}.v_proj"), dim, inner, true),
            out: Linear::load(l, &format!("{p}.out_proj"), inner, dim, true),
            heads,
        }
    }

    fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, c] = x.dims();
        x.reshape([b, n, self.heads, c / self.heads])
            .swap_dims(1, 2)
    }

    fn forward(&self, q: Tensor<3>, k: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        let q = self.heads(self.q.forward(q));
        let k = self.heads(self.k.forward(k));
        let v = self.heads(self.v.forward(v));
        let [b, h, n, d] = q.dims();
        let attn = q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt();
        let out = attention_softmax(attn, 1.0, None).matmul(v);
        self.out.forward(out.swap_dims(1, 2).reshape([b, n, h * d]))
    }
}

#[derive(Debug, Clone)]
struct Block {
    self_attn: Attention,
    norm1: LayerNorm,
    cross_t2i: Attention,
    norm2: LayerNorm,
    lin1: Linear,
    lin2: Linear,
    norm3: LayerNorm,
    norm4: LayerNorm,
    cross_i2t: Attention,
    skip_first_pe: bool,
}

impl Block {
    fn load(
        l: &mut Loader,
        p: &str,
        dim: usize,
        heads: usize,
        mlp: usize,
        skip_first_pe: bool,
    ) -> Self {
        let ln = |l: &mut Loader, n: &str| LayerNorm::load(l, &format!("{p}.{n}"), dim, 1e-5);
        Block {
            self_attn: Attention::load(l, &format!("{p}.self_attn"), dim, heads, 1),
            norm1: ln(l, "norm1"),
            cross_t2i: Attention::load(l, &format!("{p}.cross_attn_token_to_image"), dim, heads, 2),
            norm2: ln(l, "norm2"),
            lin1: Linear::load(l, &format!("{p}.mlp.lin1"), dim, mlp, true),
            lin2: Linear::load(l, &format!("{p}.mlp.lin2"), mlp, dim, true),
            norm3: ln(l, "norm3"),
            norm4: ln(l, "norm4"),
            cross_i2t: Attention::load(l, &format!("{p}.cross_attn_image_to_token"), dim, heads, 2),
            skip_first_pe,
        }
    }

    fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        qpe: &Tensor<3>,
        kpe: &Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let queries = if self.skip_first_pe {
            self.self_attn
                .forward(queries.clone(), queries.clone(), queries)
        } else {
            let q = queries.clone() + qpe.clone();
            queries.clone() + self.self_attn.forward(q.clone(), q, queries)
        };
        let queries = self.norm1.forward(queries);

        let q = queries.clone() + qpe.clone();
        let k = keys.clone() + kpe.clone();
        let queries = self
            .norm2
            .forward(queries + self.cross_t2i.forward(q, k, keys.clone()));

        let mlp = self.lin2.forward(relu(self.lin1.forward(queries.clone())));
        let queries = self.norm3.forward(queries + mlp);

        let q = queries.clone() + qpe.clone();
        let k = keys.clone() + kpe.clone();
        let keys = self
            .norm4
            .forward(keys + self.cross_i2t.forward(k, q, queries.clone()));
        (queries, keys)
    }
}

#[derive(Debug, Clone)]
pub struct TwoWayTransformer {
    layers: Vec<Block>,
    final_attn: Attention,
    norm_final: LayerNorm,
}

impl TwoWayTransformer {
    pub fn load(
        l: &mut Loader,
        p: &str,
        depth: usize,
        dim: usize,
        heads: usize,
        mlp: usize,
    ) -> Self {
        TwoWayTransformer {
            layers: (0..depth)
                .map(|i| Block::load(l, &format!("{p}.layers.{i}"), dim, heads, mlp, i == 0))
                .collect(),
            final_attn: Attention::load(
                l,
                &format!("{p}.final_attn_token_to_image"),
                dim,
                heads,
                2,
            ),
            norm_final: LayerNorm::load(l, &format!("{p}.norm_final_attn"), dim, 1e-5),
        }
    }

    /// image (B, C, H, W), image_pe (B, C, H, W), tokens (B, N, C) → (tokens, image tokens (B, HW, C)).
    pub fn forward(
        &self,
        image: Tensor<4>,
        image_pe: Tensor<4>,
        tokens: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let [b, c, h, w] = image.dims();
        // As tokens, laid out contiguously once: every layer adds the positional encoding.
        let keys0 = contiguous(image.reshape([b, c, h * w]).swap_dims(1, 2));
        let kpe = contiguous(image_pe.reshape([b, c, h * w]).swap_dims(1, 2));
        let (mut queries, mut keys) = (tokens.clone(), keys0);
        for layer in &self.layers {
            (queries, keys) = layer.forward(queries, keys, &tokens, &kpe);
        }
        let q = queries.clone() + tokens;
        let k = keys.clone() + kpe;
        let queries = self
            .norm_final
            .forward(queries + self.final_attn.forward(q, k, keys.clone()));
        (queries, keys)
    }
}
