//! SAM's mask decoder: the two-way transformer, 4× upscaling and hypernetwork mask heads.

use super::transformer::TwoWayTransformer;
use crate::models::nn::{ConvTranspose2d, LayerNorm2d, Linear, gelu};
use crate::weights::Loader;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// SAM's MLP: ReLU between layers, none after the last.
#[derive(Debug, Clone)]
struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn load(
        l: &mut Loader,
        p: &str,
        d_in: usize,
        hidden: usize,
        d_out: usize,
        depth: usize,
    ) -> Self {
        let layers = (0..depth)
            .map(|i| {
                let a = if i == 0 { d_in } else { hidden };
                let b = if i == depth - 1 { d_out } else { hidden };
                Linear::load(l, &format!("{p}.layers.{i}"), a, b, true)
            })
            .collect();
        Mlp { layers }
    }
    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i + 1 < n {
                x = relu(x);
            }
        }
        x
    }
}

#[derive(Debug, Clone)]
pub struct MaskDecoder {
    transformer: TwoWayTransformer,
    /// [iou_token; mask_tokens], (1 + n_masks, dim).
    output_tokens: Tensor<2>,
    up1: ConvTranspose2d,
    up_norm: LayerNorm2d,
    up2: ConvTranspose2d,
    hyper: Vec<Mlp>,
    iou_head: Mlp,
}

/// Decoder output for one prompt.
pub struct Decoded {
    /// (B, masks, 4h, 4w) logits.
    pub logits: Tensor<4>,
    /// (B, masks) predicted IoU.
    pub iou: Tensor<2>,
}

impl MaskDecoder {
    pub fn load(l: &mut Loader, p: &str, dim: usize) -> Self {
        let n_masks = 4;
        let iou = l.tensor(&format!("{p}.iou_token.weight"), [1, dim]);
        let masks = l.tensor(&format!("{p}.mask_tokens.weight"), [n_masks, dim]);
        MaskDecoder {
            transformer: TwoWayTransformer::load(l, &format!("{p}.transformer"), 2, dim, 8, 2048),
            output_tokens: Tensor::cat(vec![iou, masks], 0),
            up1: ConvTranspose2d::load(l, &format!("{p}.output_upscaling.0"), dim, dim / 4, 2),
            up_norm: LayerNorm2d::load(l, &format!("{p}.output_upscaling.1"), dim / 4),
            up2: ConvTranspose2d::load(l, &format!("{p}.output_upscaling.3"), dim / 4, dim / 8, 2),
            hyper: (0..n_masks)
                .map(|i| {
                    Mlp::load(
                        l,
                        &format!("{p}.output_hypernetworks_mlps.{i}"),
                        dim,
                        dim,
                        dim / 8,
                        3,
                    )
                })
                .collect(),
            iou_head: Mlp::load(l, &format!("{p}.iou_prediction_head"), dim, 256, n_masks, 3),
        }
    }

    /// image (1, C, H, W); image_pe (1, C, H, W); sparse (B, N, C); dense (B, C, H, W).
    /// `multimask`: the three disambiguation masks instead of the single one.
    pub fn forward(
        &self,
        image: Tensor<4>,
        image_pe: Tensor<4>,
        sparse: Tensor<3>,
        dense: Tensor<4>,
        multimask: bool,
    ) -> Decoded {
        let [b, _, _] = sparse.dims();
        let [_, c, h, w] = image.dims();
        let [nt, _] = self.output_tokens.dims();
        let tokens = Tensor::cat(
            vec![
                self.output_tokens
                    .clone()
                    .unsqueeze::<3>()
                    .expand([b, nt, c]),
                sparse,
            ],
            1,
        );
        let src = image.expand([b, c, h, w]) + dense;
        let pos = image_pe.expand([b, c, h, w]);
        let (hs, src) = self.transformer.forward(src, pos, tokens);

        let src = src.swap_dims(1, 2).reshape([b, c, h, w]);
        let up = gelu(
            self.up2
                .forward(gelu(self.up_norm.forward(self.up1.forward(src)))),
        );
        let [_, cu, hu, wu] = up.dims();
        let range = if multimask { 1..nt - 1 } else { 0..1 };
        let hyper: Vec<Tensor<3>> = range
            .clone()
            .map(|i| {
                self.hyper[i]
                    .forward(hs.clone().slice([0..b, 1 + i..2 + i, 0..c]).reshape([b, c]))
                    .unsqueeze_dim(1)
            })
            .collect();
        let n = hyper.len();
        let hyper = Tensor::cat(hyper, 1);
        let logits = hyper
            .matmul(up.reshape([b, cu, hu * wu]))
            .reshape([b, n, hu, wu]);
        let iou_all = self
            .iou_head
            .forward(hs.slice([0..b, 0..1, 0..c]).reshape([b, c]));
        let iou = iou_all.slice([0..b, range]);
        Decoded { logits, iou }
    }
}
