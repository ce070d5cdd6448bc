//! Inference building blocks shared by every model, loaded straight from checkpoint names.
//!
//! Weights keep PyTorch's layouts and names; each block knows how to read itself through a
//! [`Loader`] under a key prefix, so loading is a walk over the checkpoint's own tree.

use super::gemm::Then;
use crate::weights::Loader;
use burn::tensor::Tensor;
use burn::tensor::module::{conv2d, layer_norm, linear};
use burn::tensor::ops::ConvOptions;

/// `nn.Linear`. The weight is stored transposed (in, out) for burn's `linear`.
#[derive(Debug, Clone)]
pub struct Linear {
    w: Tensor<2>,
    b: Option<Tensor<1>>,
    /// The weight's checkpoint name, for calibration ("" when built from tensors).
    name: String,
}

impl Linear {
    pub fn load(l: &mut Loader, p: &str, d_in: usize, d_out: usize, bias: bool) -> Self {
        let w = l.tensor(&format!("{p}.weight"), [d_out, d_in]).transpose();
        let b = bias.then(|| l.tensor(&format!("{p}.bias"), [d_out]));
        Linear {
            name: format!("{p}.weight"),
            ..Linear::new(w, b)
        }
    }
    /// From a weight laid out (in, out).
    pub fn new(w: Tensor<2>, b: Option<Tensor<1>>) -> Self {
        // Laid out contiguously once: the browser's own matrix product reads it so.
        Linear {
            w: super::cpu::contiguous(w),
            b,
            name: String::new(),
        }
    }
    /// The weight, (in, out).
    pub fn weight(&self) -> &Tensor<2> {
        &self.w
    }
    pub fn bias(&self) -> Option<&Tensor<1>> {
        self.b.as_ref()
    }
    /// Over the last axis. The leading axes are folded into one first: burn-flex would otherwise
    /// run (and pack the weight for) one small matrix product per leading index, e.g. one per
    /// attention window (361 × 49 tokens in LiteMedSAM's first stage).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_then(x, Then::Nothing)
    }
    /// gelu(`forward`): in the browser's CPU path the product applies it as it completes each
    /// block of the output (helper threads on their rows), not as one more pass on this thread.
    pub fn forward_gelu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_then(x, Then::Gelu)
    }
    fn forward_then<const D: usize>(&self, x: Tensor<D>, then: Then) -> Tensor<D> {
        let dims = x.dims();
        let rows = dims[..D - 1].iter().product::<usize>();
        let x = x.reshape([rows, dims[D - 1]]);
        super::calibrate::linear_input(&self.name, &x);
        let y = super::cpu::linear(x, &self.w, self.b.as_ref(), then)
            .unwrap_or_else(|x| after(linear(x, self.w.clone(), self.b.clone()), then));
        let mut out = dims;
        out[D - 1] = y.dims()[1];
        y.reshape(out)
    }
}

/// `nn.Conv2d` (square kernel, symmetric padding).
#[derive(Debug, Clone)]
pub struct Conv2d {
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    opts: ConvOptions<2>,
    /// The weight's checkpoint name, for calibration.
    name: String,
}

#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
}

impl ConvSpec {
    pub fn new(c_in: usize, c_out: usize, k: usize) -> Self {
        ConvSpec {
            c_in,
            c_out,
            k,
            stride: 1,
            pad: 0,
            groups: 1,
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub fn pad(mut self, p: usize) -> Self {
        self.pad = p;
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in / self.groups, self.k, self.k]
    }
    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([self.stride; 2], [self.pad; 2], [1, 1], self.groups)
    }
}

impl Conv2d {
    pub fn load(l: &mut Loader, p: &str, spec: ConvSpec, bias: bool) -> Self {
        let w = l.tensor(&format!("{p}.weight"), spec.weight_shape());
        let b = bias.then(|| l.tensor(&format!("{p}.bias"), [spec.c_out]));
        Conv2d {
            w,
            b,
            opts: spec.options(),
            name: format!("{p}.weight"),
        }
    }

    /// A convolution without bias followed by an eval-mode BatchNorm (`{p}.c`, `{p}.bn`), folded
    /// into one convolution: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε).
    pub fn load_folded_bn(l: &mut Loader, p: &str, spec: ConvSpec) -> Self {
        let shape = spec.weight_shape();
        let mut w = l.host(&format!("{p}.c.weight"), &shape);
        let c = spec.c_out;
        let gamma = l.host(&format!("{p}.bn.weight"), &[c]);
        let beta = l.host(&format!("{p}.bn.bias"), &[c]);
        let mean = l.host(&format!("{p}.bn.running_mean"), &[c]);
        let var = l.host(&format!("{p}.bn.running_var"), &[c]);
        let per = w.len() / c;
        let mut b = vec![0f32; c];
        for o in 0..c {
            let s = gamma[o] / (var[o] + 1e-5).sqrt();
            w[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= s);
            b[o] = beta[o] - mean[o] * s;
        }
        Conv2d {
            w: l.upload(w, shape),
            b: Some(l.upload(b, [c])),
            opts: spec.options(),
            name: format!("{p}.c.weight"),
        }
    }

    pub fn weight(&self) -> &Tensor<4> {
        &self.w
    }
    pub fn bias(&self) -> Option<&Tensor<1>> {
        self.b.as_ref()
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Then::Nothing)
    }
    /// gelu(`forward`), as [`Linear::forward_gelu`].
    pub fn forward_gelu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Then::Gelu)
    }
    fn forward_then(&self, x: Tensor<4>, then: Then) -> Tensor<4> {
        super::calibrate::conv_input(&self.name, &x, self.w.dims()[3], &self.opts);
        conv_then(x, &self.w, self.b.as_ref(), &self.opts, then)
    }

    /// This convolution (a depthwise 3×3, stride 1, padding 1) over channels-last tokens (B, H·W, C)
    /// of an H×W map. On the CPU backend without leaving that layout (`cpu::depthwise3x3_tokens`).
    pub fn forward_tokens(&self, x: Tensor<3>, (h, w): (usize, usize)) -> Tensor<3> {
        let [b, l, c] = x.dims();
        let dw3 = self.w.dims() == [c, 1, 3, 3]
            && self.opts.groups == c
            && self.opts.stride == [1, 1]
            && self.opts.padding == [(1, 1); 2]
            && self.opts.dilation == [1, 1];
        let fast = if dw3 {
            super::cpu::depthwise3x3_tokens(x, (h, w), &self.w, self.b.as_ref())
        } else {
            Err(x)
        };
        fast.unwrap_or_else(|x| {
            let y = self.forward(x.swap_dims(1, 2).reshape([b, c, h, w]));
            y.reshape([b, c, l]).swap_dims(1, 2)
        })
    }
}

/// A 2D convolution. On the browser's CPU path 1×1 and 3×3 kernels (one group, no dilation) run
/// on our own matrix tile (`cpu::conv`); burn's convolution otherwise.
pub fn conv(
    x: Tensor<4>,
    w: &Tensor<4>,
    b: Option<&Tensor<1>>,
    opts: &ConvOptions<2>,
) -> Tensor<4> {
    conv_then(x, w, b, opts, Then::Nothing)
}

fn conv_then(
    x: Tensor<4>,
    w: &Tensor<4>,
    b: Option<&Tensor<1>>,
    opts: &ConvOptions<2>,
    then: Then,
) -> Tensor<4> {
    let [_, c, kh, kw] = w.dims();
    let [stride, sw] = opts.stride;
    let [(pad, pb), (pl, pr)] = opts.padding;
    let square = stride == sw && pad == pb && pad == pl && pad == pr;
    let plain = square && opts.groups == 1 && opts.dilation == [1, 1] && x.dims()[1] == c;
    let depthwise = square
        && c == 1
        && opts.groups == x.dims()[1]
        && opts.dilation == [1, 1]
        && (kh, kw, pad) == (3, 3, 1);
    let fast = match (plain && kh == kw, depthwise) {
        (true, _) => super::cpu::conv(x, w, b, stride, pad, then),
        (_, true) => super::cpu::depthwise3x3(x, w, b, stride, then),
        _ => Err(x),
    };
    fast.unwrap_or_else(|x| after(conv2d(x, w.clone(), b.cloned(), opts.clone()), then))
}

/// Tokens `x` (B, H·W, C) of an H×W map → windows (B·nh·nw, ws², C) of ws × ws tokens, the map
/// zero-padded at the bottom and right to whole windows (TinyViT pads before its attention).
pub fn windows(x: Tensor<3>, (h, w): (usize, usize), ws: usize) -> Tensor<3> {
    super::cpu::windows(x, (h, w), ws).unwrap_or_else(|x| {
        let [b, _, c] = x.dims();
        let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
        let (pb, pr) = (nh * ws - h, nw * ws - w);
        let mut m = x.reshape([b, h, w, c]);
        if pb > 0 {
            let z = Tensor::zeros([b, pb, w, c], &m.device());
            m = Tensor::cat(vec![m, z], 1);
        }
        if pr > 0 {
            let z = Tensor::zeros([b, nh * ws, pr, c], &m.device());
            m = Tensor::cat(vec![m, z], 2);
        }
        m.reshape([b, nh, ws, nw, ws, c])
            .swap_dims(2, 3)
            .reshape([b * nh * nw, ws * ws, c])
    })
}

/// `x` (B, H·W, C) + `win`, windows as [`windows`] makes them, put back in place with the padding
/// dropped.
pub fn add_windows(x: Tensor<3>, win: Tensor<3>, (h, w): (usize, usize), ws: usize) -> Tensor<3> {
    super::cpu::add_windows(x, win, (h, w), ws).unwrap_or_else(|(x, win)| {
        let [b, l, c] = x.dims();
        let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
        let m = win
            .reshape([b, nh, nw, ws, ws, c])
            .swap_dims(2, 3)
            .reshape([b, nh * ws, nw * ws, c])
            .slice([0..b, 0..h, 0..w, 0..c]);
        x + m.reshape([b, l, c])
    })
}

/// `then` on the output of one of burn's products (where our tile, which applies it itself,
/// did not run).
fn after<const D: usize>(y: Tensor<D>, then: Then) -> Tensor<D> {
    match then {
        Then::Gelu => gelu(y),
        Then::Nothing => y,
    }
}

/// `nn.ConvTranspose2d` with kernel = stride (SAM's 2× upscaling). Each input pixel becomes its
/// own k×k block of output pixels, so over pixels as rows it is one matrix product (a [`Linear`]).
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    lin: Linear,
    c_out: usize,
}

impl ConvTranspose2d {
    pub fn load(l: &mut Loader, p: &str, c_in: usize, c_out: usize, k: usize) -> Self {
        // (c_in, c_out, ky, kx) → (c_in, (ky, kx, c_out)); the bias repeated for every (ky, kx).
        let w = l.tensor(&format!("{p}.weight"), [c_in, c_out, k, k]);
        let w = w.permute([0, 2, 3, 1]).reshape([c_in, k * k * c_out]);
        let b = l.tensor(&format!("{p}.bias"), [c_out]);
        let b = b
            .unsqueeze::<2>()
            .repeat_dim(0, k * k)
            .reshape([k * k * c_out]);
        ConvTranspose2d {
            lin: Linear::new(w, Some(b)),
            c_out,
        }
    }
    /// The pixel-wise product: (c_in) → (ky, kx, c_out) per pixel.
    pub fn linear(&self) -> &Linear {
        &self.lin
    }
    /// Pixels (n, c_in) → (n·k·k, c_out), rows in (pixel, ky, kx) order: the caller places the
    /// blocks (SAM's decoder does it once, after both upscalings and the mask product).
    pub fn forward_pixels(&self, x: Tensor<2>) -> Tensor<2> {
        self.pixels(self.lin.forward(x))
    }
    /// gelu(`forward_pixels`), as [`Linear::forward_gelu`].
    pub fn forward_pixels_gelu(&self, x: Tensor<2>) -> Tensor<2> {
        self.pixels(self.lin.forward_gelu(x))
    }
    fn pixels(&self, y: Tensor<2>) -> Tensor<2> {
        let [n, m] = y.dims();
        y.reshape([n * m / self.c_out, self.c_out])
    }
}

/// `nn.LayerNorm` over the last axis.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    g: Tensor<1>,
    b: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    pub fn load(l: &mut Loader, p: &str, dim: usize, eps: f64) -> Self {
        LayerNorm {
            g: l.tensor(&format!("{p}.weight"), [dim]),
            b: l.tensor(&format!("{p}.bias"), [dim]),
            eps,
        }
    }
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.g.clone(), Some(self.b.clone()), self.eps)
    }
    /// (gain, bias, epsilon).
    pub fn parts(&self) -> (&Tensor<1>, &Tensor<1>, f64) {
        (&self.g, &self.b, self.eps)
    }
}

/// SAM's `LayerNorm2d`: normalizes over channels of (B, C, H, W), eps 1e-6.
#[derive(Debug, Clone)]
pub struct LayerNorm2d {
    g: Tensor<4>,
    b: Tensor<4>,
}

impl LayerNorm2d {
    pub fn load(l: &mut Loader, p: &str, c: usize) -> Self {
        let g = l.tensor(&format!("{p}.weight"), [c]).reshape([1, c, 1, 1]);
        let b = l.tensor(&format!("{p}.bias"), [c]).reshape([1, c, 1, 1]);
        LayerNorm2d { g, b }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let u = x.clone().mean_dim(1);
        let xc = x - u;
        let s = xc.clone().square().mean_dim(1);
        xc / (s + 1e-6).sqrt() * self.g.clone() + self.b.clone()
    }
}

/// GELU in its exact form, 0.5·x·(1 + erf(x/√2)), as PyTorch's default. On the CPU backend one
/// vectorized pass (`cpu::gelu`) instead of burn-flex's element-at-a-time libm erf, which profiles
/// put at a quarter of the LiteMedSAM encoder's time and half of the decoder's.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    super::cpu::gelu(x).unwrap_or_else(burn::tensor::activation::gelu)
}

/// a (B, n, k) · b (B, k, m). In the browser's CPU path with our own tile (one batch item).
pub fn matmul(a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    product(a, b, false)
}

/// a (B, n, k) · bᵀ for b (B, m, k), without a transposed copy of b in the browser's CPU path.
pub fn matmul_t(a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    product(a, b, true)
}

fn product(a: Tensor<3>, b: Tensor<3>, transposed: bool) -> Tensor<3> {
    let ([batch, n, k], [_, r, c]) = (a.dims(), b.dims());
    let burns = |a: Tensor<3>, b: Tensor<3>| match transposed {
        true => a.matmul(b.swap_dims(1, 2)),
        false => a.matmul(b),
    };
    if batch != 1 {
        return burns(a, b);
    }
    match super::cpu::matmul2(a.reshape([n, k]), b.reshape([r, c]), transposed) {
        Ok(y) => y.unsqueeze(),
        Err((a, b)) => burns(a.unsqueeze(), b.unsqueeze()),
    }
}

/// softmax(q·kᵀ·scale + bias)·v: queries (B, heads, n, d), keys (B, heads, m, d), values
/// (B, heads, m, dv), `bias` (1, heads, n, m) shared by the batch. In the browser's CPU path one
/// head at a time with our own matrix tile (`cpu::attention`).
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f64,
    bias: Option<&Tensor<4>>,
) -> Tensor<4> {
    super::cpu::attention(q, k, v, scale as f32, bias).unwrap_or_else(|(q, k, v)| {
        attention_softmax(q.matmul(k.swap_dims(2, 3)), scale, bias.cloned()).matmul(v)
    })
}

/// softmax(scores·scale + bias) over the last axis of (B, heads, n, m) attention scores, the bias
/// (1, heads, n, m) shared by the batch. On the CPU backend one fused pass (`cpu::scaled_softmax`);
/// burn-flex's three ops took 12 % of the LiteMedSAM encoder.
pub fn attention_softmax(scores: Tensor<4>, scale: f64, bias: Option<Tensor<4>>) -> Tensor<4> {
    match super::cpu::scaled_softmax(scores, scale as f32, bias) {
        Ok(p) => p,
        Err((s, Some(b))) => burn::tensor::activation::softmax(s * scale + b, 3),
        Err((s, None)) => burn::tensor::activation::softmax(s * scale, 3),
    }
}
