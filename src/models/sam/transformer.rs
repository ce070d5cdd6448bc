//! SAM's two-way transformer: prompt tokens and image tokens attend to each other.

use crate::models::nn::{LayerNorm, Linear, attention_softmax, matmul, matmul_t};
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
        self.attend(
            q,
            self.heads(self.k.forward(k)),
            self.heads(self.v.forward(v)),
        )
    }

    /// Attention over projected heads: q (B, h, n, d), k and v (B or 1, h, m, d) → (B, n, C).
    fn attend(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        let [b, h, n, d] = q.dims();
        let [_, _, m, _] = k.dims();
        let (k, v) = (k.expand([b, h, m, d]), v.expand([b, h, m, d]));
        let attn = q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt();
        let out = attention_softmax(attn, 1.0, None).matmul(v);
        self.out.forward(out.swap_dims(1, 2).reshape([b, n, h * d]))
    }

    /// A projection's weight per head: (in, heads·d) → (1, heads, in, d).
    fn per_head(&self, w: &Tensor<2>) -> Tensor<4> {
        let [c, inner] = w.dims();
        w.clone()
            .reshape([1, c, self.heads, inner / self.heads])
            .swap_dims(1, 2)
    }

    /// [`Self::forward`] for a few queries (the prompt tokens) over many keys (the image tokens),
    /// without projecting the keys and values. Per head, q·(x·Wk + bk)ᵀ = (q·Wkᵀ)·xᵀ + a constant
    /// per row, which softmax ignores; and since softmax rows sum to 1,
    /// p·(x·Wv + bv) = (p·x)·Wv + bv. Both products then have (heads × queries) rows instead of
    /// the image's thousands: 4096 × 256 × 56 instead of 4096 × 256 × 128 multiply-adds each.
    fn few_queries(&self, q: Tensor<3>, k: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        let [b, n, _] = q.dims();
        let [_, m, c] = k.dims();
        let q = self.heads(self.q.forward(q));
        let [_, h, _, d] = q.dims();
        let wk = self
            .per_head(self.k.weight())
            .swap_dims(2, 3)
            .expand([b, h, d, c]);
        let qk = q.matmul(wk).reshape([b, h * n, c]);
        let scores = matmul_t(qk, k).reshape([b, h, n, m]);
        let p = attention_softmax(scores, 1.0 / (d as f64).sqrt(), None);
        let px = matmul(p.reshape([b, h * n, m]), v).reshape([b, h, n, c]);
        let mut out = px.matmul(self.per_head(self.v.weight()).expand([b, h, c, d]));
        if let Some(bv) = self.v.bias() {
            out = out + bv.clone().reshape([1, h, 1, d]);
        }
        self.out.forward(out.swap_dims(1, 2).reshape([b, n, h * d]))
    }

    /// [`Self::forward`] for many queries (the image tokens) over a few keys (the prompt tokens),
    /// without projecting the queries or the attended values: (x·Wq + bq)·kᵀ = x·(Wq·kᵀ) + bq·kᵀ
    /// per head, and the output projection distributes over the heads' weighted sums,
    /// Σₕ pₕ·(vₕ·Woₕ). Both image-sized products have heads × keys (56) columns instead of 128.
    ///
    /// `projected`: the queries already projected, (1, h, n, d) (the image side of the first
    /// block, [`ImageKeys`]); `q` is then only read for its shape.
    fn few_keys(
        &self,
        q: Tensor<3>,
        k: Tensor<3>,
        v: Tensor<3>,
        projected: Option<&Tensor<4>>,
    ) -> Tensor<3> {
        let [b, n, c] = q.dims();
        let k = self.heads(self.k.forward(k));
        let v = self.heads(self.v.forward(v));
        let [_, h, m, d] = k.dims();
        let kt = k.swap_dims(2, 3);
        let scores = match projected {
            // (b, h, n, m) → (b, n, h·m), as below.
            Some(qh) => qh
                .clone()
                .expand([b, h, n, d])
                .matmul(kt)
                .swap_dims(1, 2)
                .reshape([b, n, h * m]),
            None => {
                // (b, h, c, m) → (b, c, h·m): every head's columns side by side.
                let wqk = self
                    .per_head(self.q.weight())
                    .expand([b, h, c, d])
                    .matmul(kt.clone())
                    .swap_dims(1, 2)
                    .reshape([b, c, h * m]);
                let mut scores = matmul(q, wqk);
                if let Some(bq) = self.q.bias() {
                    let bqk = bq
                        .clone()
                        .reshape([1, h, 1, d])
                        .expand([b, h, 1, d])
                        .matmul(kt);
                    scores = scores + bqk.reshape([b, 1, h * m]);
                }
                scores
            }
        };
        let p = attention_softmax(scores.reshape([b, n, h, m]), 1.0 / (d as f64).sqrt(), None);
        // The output projection's (h·d, c) weight as (1, h, d, c).
        let wo = self.out.weight().clone().reshape([1, h, d, c]);
        let vo = v.matmul(wo.expand([b, h, d, c])).reshape([b, h * m, c]);
        let mut out = matmul(p.reshape([b, n, h * m]), vo);
        if let Some(bo) = self.out.bias() {
            out = out + bo.clone().reshape([1, 1, c]);
        }
        out
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

    /// `image`: this block's image side computed beforehand (first block only, see [`ImageKeys`]).
    fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        qpe: &Tensor<3>,
        kpe: &Tensor<3>,
        image: Option<&ImageKeys>,
    ) -> (Tensor<3>, Tensor<3>) {
        let queries = if self.skip_first_pe {
            self.self_attn
                .forward(queries.clone(), queries.clone(), queries)
        } else {
            let q = queries.clone() + qpe.clone();
            queries.clone() + self.self_attn.forward(q.clone(), q, queries)
        };
        let queries = self.norm1.forward(queries);

        // The image tokens with their positional encoding serve both cross-attentions (the keys
        // change only after the second); with the image side given, neither needs them.
        let k = match image {
            Some(_) => keys.clone(),
            None => keys.clone() + kpe.clone(),
        };
        let q = queries.clone() + qpe.clone();
        let attended = match image {
            Some(i) => {
                let q = self.cross_t2i.heads(self.cross_t2i.q.forward(q));
                self.cross_t2i.attend(q, i.k.clone(), i.v.clone())
            }
            None => self.cross_t2i.few_queries(q, k.clone(), keys.clone()),
        };
        let queries = self.norm2.forward(queries + attended);

        let mlp = self.lin2.forward(relu(self.lin1.forward(queries.clone())));
        let queries = self.norm3.forward(queries + mlp);

        let q = queries.clone() + qpe.clone();
        let attended = self
            .cross_i2t
            .few_keys(k, q, queries.clone(), image.map(|i| &i.q));
        (queries, self.norm4.forward(keys + attended))
    }

    /// The image side of this block's cross-attentions, from its image tokens (1, HW, C) and
    /// their positional encoding.
    fn image_keys(&self, keys: Tensor<3>, kpe: Tensor<3>) -> ImageKeys {
        let k = keys.clone() + kpe;
        let (t2i, i2t) = (&self.cross_t2i, &self.cross_i2t);
        ImageKeys {
            tokens: keys.clone(),
            k: t2i.heads(t2i.k.forward(k.clone())),
            v: t2i.heads(t2i.v.forward(keys)),
            q: i2t.heads(i2t.q.forward(k)),
        }
    }
}

/// The first block's image-side projections: the token→image keys and values and the
/// image→token queries, each (1, heads, HW, d). They depend on the image alone (its tokens have
/// not been updated yet there), so an image's later prompts can reuse them: 4096 × 256 × 128
/// multiply-adds each, once, against 4096 × 256 × 56 twice and 4096 × 256 × 56 once per prompt
/// (the shortcuts without them), and the positional encoding's addition.
#[derive(Debug, Clone)]
pub struct ImageKeys {
    /// The image tokens they were made from (1, HW, C), which every prompt starts from too.
    tokens: Tensor<3>,
    k: Tensor<4>,
    v: Tensor<4>,
    q: Tensor<4>,
}

impl ImageKeys {
    pub fn tokens(&self) -> Tensor<3> {
        self.tokens.clone()
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

    /// image tokens (B, HW, C), their positional encoding (1, HW, C), prompt tokens (B, N, C) →
    /// (tokens, image tokens (B, HW, C)).
    /// `image`: [`Self::image_keys`] of these image tokens, when kept.
    pub fn forward(
        &self,
        keys0: Tensor<3>,
        kpe: Tensor<3>,
        tokens: Tensor<3>,
        image: Option<&ImageKeys>,
    ) -> (Tensor<3>, Tensor<3>) {
        let (mut queries, mut keys) = (tokens.clone(), keys0);
        for (i, layer) in self.layers.iter().enumerate() {
            let image = image.filter(|_| i == 0);
            (queries, keys) = layer.forward(queries, keys, &tokens, &kpe, image);
        }
        let q = queries.clone() + tokens;
        let k = keys.clone() + kpe;
        let queries = self
            .norm_final
            .forward(queries + self.final_attn.few_queries(q, k, keys.clone()));
        (queries, keys)
    }

    /// The first block's image side for image tokens (1, HW, C) and their positional encoding.
    pub fn image_keys(&self, keys0: Tensor<3>, kpe: Tensor<3>) -> ImageKeys {
        self.layers[0].image_keys(keys0, kpe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        let a = a.into_data().try_to_vec::<f32>().unwrap();
        let b = b.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The shortcuts reassociate the same sums: equal to the plain attention up to rounding, with
    /// biases on (their handling is where the algebra could go wrong), for one prompt (the
    /// products on our own tile in these tests) and a batch of two (burn's batched product).
    #[test]
    fn shortcuts_equal_plain_attention() {
        let dev = Device::flex();
        let mut l = Loader::random(11, &dev);
        let a = Attention::load(&mut l, "a", 64, 4, 2);
        for batch in [1, 2] {
            let r = |n: usize| {
                Tensor::<3>::random([batch, n, 64], Distribution::Normal(0.0, 1.0), &dev)
            };
            let (tokens, image, values) = (r(7), r(300), r(300));
            let plain = a.forward(tokens.clone(), image.clone(), values.clone());
            let d = max_diff(a.few_queries(tokens.clone(), image.clone(), values), plain);
            assert!(d < 1e-5, "few_queries, batch {batch}: differs by {d}");
            let tv = r(7);
            let plain = a.forward(image.clone(), tokens.clone(), tv.clone());
            let d = max_diff(a.few_keys(image, tokens, tv, None), plain);
            assert!(d < 1e-5, "few_keys, batch {batch}: differs by {d}");
        }
    }

    /// The transformer with its first block's image side computed beforehand equals the one
    /// without, tokens and image alike, for one prompt and a batch of two.
    #[test]
    fn kept_image_side_changes_nothing() {
        let dev = Device::flex();
        let mut l = Loader::random(13, &dev);
        let t = TwoWayTransformer::load(&mut l, "t", 2, 64, 8, 128);
        let r = |b: usize, n: usize| {
            Tensor::<3>::random([b, n, 64], Distribution::Normal(0.0, 1.0), &dev)
        };
        let (image, pe) = (r(1, 300), r(1, 300));
        let keys = t.image_keys(image.clone(), pe.clone());
        for batch in [1, 2] {
            let tokens = r(batch, 7);
            let image = image.clone().expand([batch, 300, 64]);
            let (q0, k0) = t.forward(image.clone(), pe.clone(), tokens.clone(), None);
            let (q1, k1) = t.forward(image, pe.clone(), tokens, Some(&keys));
            let (dq, dk) = (max_diff(q0, q1), max_diff(k0, k1));
            assert!(
                dq < 1e-4 && dk < 1e-4,
                "batch {batch}: tokens {dq}, image {dk}"
            );
        }
    }
}
