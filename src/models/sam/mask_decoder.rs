//! SAM's mask decoder: the two-way transformer, 4× upscaling and hypernetwork mask heads.

use super::transformer::{ImageKeys, TwoWayTransformer};
use crate::models::cpu::{self, contiguous};
use crate::models::nn::{ConvTranspose2d, LayerNorm, Linear, gelu};
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
    /// SAM's LayerNorm2d over channels, here over the last axis of channels-last pixels.
    up_norm: LayerNorm,
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
    /// The image-only part of [`Self::forward`] for `image` (1, C, H, W), to pass back to it for
    /// every later prompt on that image (same `image_pe` and `dense`).
    pub fn image_keys(&self, image: Tensor<4>, image_pe: Tensor<3>, dense: Tensor<1>) -> ImageKeys {
        self.transformer
            .image_keys(image_tokens(image, dense), image_pe)
    }

    pub fn load(l: &mut Loader, p: &str, dim: usize) -> Self {
        let n_masks = 4;
        let iou = l.tensor(&format!("{p}.iou_token.weight"), [1, dim]);
        let masks = l.tensor(&format!("{p}.mask_tokens.weight"), [n_masks, dim]);
        MaskDecoder {
            transformer: TwoWayTransformer::load(l, &format!("{p}.transformer"), 2, dim, 8, 2048),
            output_tokens: Tensor::cat(vec![iou, masks], 0),
            up1: ConvTranspose2d::load(l, &format!("{p}.output_upscaling.0"), dim, dim / 4, 2),
            up_norm: LayerNorm::load(l, &format!("{p}.output_upscaling.1"), dim / 4, 1e-6),
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

    /// image (1, C, H, W); image_pe (1, HW, C) as tokens; sparse (B, N, C); dense (C) added to
    /// every image token (the "no mask" embedding).
    /// `multimask`: the three disambiguation masks instead of the single one. `keys`:
    /// [`Self::image_keys`] of this image, when kept.
    pub fn forward(
        &self,
        image: Tensor<4>,
        image_pe: Tensor<3>,
        sparse: Tensor<3>,
        dense: Tensor<1>,
        multimask: bool,
        keys: Option<&ImageKeys>,
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
        // Kept with the image side: laying the embedding out as tokens is a transposing copy.
        let src = keys.map_or_else(|| image_tokens(image, dense), ImageKeys::tokens);
        let (hs, src) = self
            .transformer
            .forward(src.expand([b, h * w, c]), image_pe, tokens, keys);

        // Both upscalings work pixel by pixel (kernel = stride), so they run on channels-last
        // pixel rows, and the mask product too; the 4×4 block each embedding pixel became is put in
        // place once, on the masks. Row order: (b, y, x, ky1, kx1, ky2, kx2).
        let range = if multimask { 1..nt - 1 } else { 0..1 };
        let hyper: Vec<Tensor<3>> = range
            .clone()
            .map(|i| {
                self.hyper[i]
                    .forward(hs.clone().slice([0..b, 1 + i..2 + i, 0..c]).reshape([b, c]))
                    .unsqueeze_dim(2)
            })
            .collect();
        let hyper = Tensor::cat(hyper, 2); // (b, c / 8, masks)
        fn layer(l: &Linear) -> (&Tensor<2>, &Tensor<1>) {
            (l.weight(), l.bias().expect("the upscalings have biases"))
        }
        let pixels = src.reshape([b * h * w, c]);
        let (up1, up2) = (layer(self.up1.linear()), layer(self.up2.linear()));
        let rows = cpu::upscaled_masks(pixels, up1, self.up_norm.parts(), up2, hyper)
            .unwrap_or_else(|(pixels, hyper)| {
                let up = gelu(self.up_norm.forward(self.up1.forward_pixels(pixels)));
                let up = self.up2.forward_pixels_gelu(up);
                let [_, cu] = up.dims();
                up.reshape([b, h * w * 16, cu]).matmul(hyper)
            });
        let logits = place_blocks(rows, (h, w));
        let iou_all = self
            .iou_head
            .forward(hs.slice([0..b, 0..1, 0..c]).reshape([b, c]));
        let iou = iou_all.slice([0..b, range]);
        Decoded { logits, iou }
    }
}

/// The image as tokens (1, HW, C) with the dense prompt embedding added, laid out contiguously
/// once: every layer adds the positional encoding.
fn image_tokens(image: Tensor<4>, dense: Tensor<1>) -> Tensor<3> {
    let [_, c, h, w] = image.dims();
    contiguous(image.reshape([1, c, h * w]).swap_dims(1, 2)) + dense.reshape([1, 1, c])
}

/// Masks over pixel rows in (y, x, ky1, kx1, ky2, kx2) order, (B, h·w·16, masks), as images
/// (B, masks, 4h, 4w): pixel (4y + 2·ky1 + ky2, 4x + 2·kx1 + kx2).
fn place_blocks(rows: Tensor<3>, (h, w): (usize, usize)) -> Tensor<4> {
    let [b, _, n] = rows.dims();
    rows.reshape([b, h, w, 2, 2, 2, 2, n])
        .permute([0, 7, 1, 3, 5, 2, 4, 6])
        .reshape([b, n, 4 * h, 4 * w])
}

#[cfg(test)]
mod tests {
    use crate::models::nn::{ConvTranspose2d, LayerNorm, Linear, gelu};
    use crate::weights::Loader;
    use burn::tensor::module::conv_transpose2d;
    use burn::tensor::ops::ConvTransposeOptions;
    use burn::tensor::{Device, Distribution, Tensor};

    /// Two pixel-wise upscalings and the block placement in `forward` equal two real transposed
    /// convolutions (burn's), each 2×2 block in its place.
    #[test]
    fn pixel_upscaling_equals_transposed_convolutions() {
        let dev = Device::flex();
        let mut l = Loader::random(5, &dev);
        let (c0, c1, c2, h, w) = (8, 6, 4, 3, 5);
        let w1 = l.tensor("u1.weight", [c0, c1, 2, 2]);
        let b1 = l.tensor("u1.bias", [c1]);
        let w2 = l.tensor("u2.weight", [c1, c2, 2, 2]);
        let b2 = l.tensor("u2.bias", [c2]);
        let mut l = Loader::random(5, &dev);
        let u1 = ConvTranspose2d::load(&mut l, "u1", c0, c1, 2);
        let u2 = ConvTranspose2d::load(&mut l, "u2", c1, c2, 2);
        let x = Tensor::<4>::random([1, c0, h, w], Distribution::Normal(0.0, 1.0), &dev);
        let opts = || ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
        let y = conv_transpose2d(x.clone(), w1, Some(b1), opts());
        // A random mask head (every channel weighted differently, so channel order counts).
        let head = Tensor::<2>::random([c2, 1], Distribution::Normal(0.0, 1.0), &dev);
        let want = conv_transpose2d(y, w2, Some(b2), opts())
            .reshape([c2, 16 * h * w])
            .transpose()
            .matmul(head.clone())
            .reshape([1, 1, 4 * h, 4 * w]);

        let pixels = x.reshape([c0, h * w]).transpose();
        let y = u2.forward_pixels(u1.forward_pixels(pixels));
        let got = super::place_blocks(y.matmul(head).unsqueeze(), (h, w));
        let d = max_diff(got, want);
        assert!(d < 1e-5, "pixel upscaling differs by {d}");
    }

    /// The upscaling and mask product by blocks of pixels (native) equals the layers run one
    /// after another: two images, several blocks, three masks.
    #[test]
    fn fused_upscaling_equals_its_layers() {
        let dev = Device::flex();
        let mut l = Loader::random(7, &dev);
        let (b, p, c0, c1, c2, masks) = (2, 77, 16, 8, 4, 3);
        let u1 = ConvTranspose2d::load(&mut l, "u1", c0, c1, 2);
        let norm = LayerNorm::load(&mut l, "n", c1, 1e-6);
        let u2 = ConvTranspose2d::load(&mut l, "u2", c1, c2, 2);
        let pixels = Tensor::<2>::random([b * p, c0], Distribution::Normal(0.0, 1.0), &dev);
        let hyper = Tensor::<3>::random([b, c2, masks], Distribution::Normal(0.0, 1.0), &dev);
        let up = gelu(norm.forward(u1.forward_pixels(pixels.clone())));
        let want = gelu(u2.forward_pixels(up))
            .reshape([b, p * 16, c2])
            .matmul(hyper.clone());
        fn layer(l: &Linear) -> (&Tensor<2>, &Tensor<1>) {
            (l.weight(), l.bias().unwrap())
        }
        let (l1, l2) = (layer(u1.linear()), layer(u2.linear()));
        let got = crate::models::cpu::upscaled_masks(pixels, l1, norm.parts(), l2, hyper)
            .ok()
            .unwrap();
        let d = max_diff(got, want);
        assert!(d < 1e-4, "fused upscaling differs by {d}");
    }

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let a = a.into_data().try_to_vec::<f32>().unwrap();
        let b = b.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    }
}
