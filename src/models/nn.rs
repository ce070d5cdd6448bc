//! Inference building blocks shared by every model, loaded straight from checkpoint names.
//!
//! Weights keep PyTorch's layouts and names; each block knows how to read itself through a
//! [`Loader`] under a key prefix, so loading is a walk over the checkpoint's own tree.

use crate::weights::Loader;
use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d, layer_norm, linear};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

/// `nn.Linear`. The weight is stored transposed (in, out) for burn's `linear`.
#[derive(Debug, Clone)]
pub struct Linear {
    w: Tensor<2>,
    b: Option<Tensor<1>>,
}

impl Linear {
    pub fn load(l: &mut Loader, p: &str, d_in: usize, d_out: usize, bias: bool) -> Self {
        let w = l.tensor(&format!("{p}.weight"), [d_out, d_in]).transpose();
        let b = bias.then(|| l.tensor(&format!("{p}.bias"), [d_out]));
        Linear { w, b }
    }
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(x, self.w.clone(), self.b.clone())
    }
}

/// `nn.Conv2d` (square kernel, symmetric padding).
#[derive(Debug, Clone)]
pub struct Conv2d {
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    opts: ConvOptions<2>,
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
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(x, self.w.clone(), self.b.clone(), self.opts.clone())
    }
}

/// `nn.ConvTranspose2d` with kernel = stride (SAM's 2x upscaling).
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    w: Tensor<4>,
    b: Tensor<1>,
    stride: usize,
}

impl ConvTranspose2d {
    pub fn load(l: &mut Loader, p: &str, c_in: usize, c_out: usize, k: usize) -> Self {
        let w = l.tensor(&format!("{p}.weight"), [c_in, c_out, k, k]);
        let b = l.tensor(&format!("{p}.bias"), [c_out]);
        ConvTranspose2d { w, b, stride: k }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let opts = ConvTransposeOptions::new([self.stride; 2], [0, 0], [0, 0], [1, 1], 1);
        conv_transpose2d(x, self.w.clone(), Some(self.b.clone()), opts)
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

/// GELU in its exact form, 0.5·x·(1 + erf(x/√2)), as PyTorch's default. On the CPU backend it
/// runs as one pass the compiler vectorizes (erf as a rational function, see `erf_f32`) instead of
/// burn-flex's element-at-a-time libm erf, which profiles put at a quarter of the LiteMedSAM
/// encoder's time and half of the decoder's. Elsewhere (GPU, autodiff) burn's own GELU.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn_flex::Flex;
    match x.clone().try_into_primitive::<Flex>() {
        Ok(t) if t.dtype() == burn::tensor::DType::F32 => {
            drop(x); // so that the storage is ours alone and changes in place
            let mut t = if t.is_contiguous() {
                t
            } else {
                t.to_contiguous()
            };
            let (off, n) = (t.layout().start_offset(), t.layout().num_elements());
            for v in &mut t.storage_mut::<f32>()[off..off + n] {
                *v = 0.5 * *v * (1.0 + erf_f32(*v * std::f32::consts::FRAC_1_SQRT_2));
            }
            Tensor::from_primitive::<Flex>(t)
        }
        _ => burn::tensor::activation::gelu(x),
    }
}

/// erf for f32 without branches or calls, so that loops over it vectorize: x·P(x²)/Q(x²) on
/// |x| ≤ 4 (erf(4) rounds to 1 in f32), degrees 5/5, coefficients fitted here by reweighted least
/// squares against the double-precision erf; max |error| 3.4e-7 over the f32 line (libm's erff:
/// about 1e-7).
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    const P: [f32; 6] = [
        1.128_379,
        0.196_389_9,
        0.053_484_526,
        0.004_009_112_3,
        0.000_288_072_13,
        1.972_671_5e-6,
    ];
    const Q: [f32; 6] = [
        1.0,
        0.507_377_15,
        0.116_533_21,
        0.015_455_619,
        0.001_217_500_8,
        3.745_976e-5,
    ];
    let x = x.clamp(-4.0, 4.0);
    let t = x * x;
    let p = ((((P[5] * t + P[4]) * t + P[3]) * t + P[2]) * t + P[1]) * t + P[0];
    let q = ((((Q[5] * t + Q[4]) * t + Q[3]) * t + Q[2]) * t + Q[1]) * t + Q[0];
    (x * p / q).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn erf_f32_is_within_4e_7_of_erf() {
        let mut worst = 0.0f32;
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            worst = worst.max((erf_f32(x) - erf_ref(x as f64) as f32).abs());
        }
        assert!(worst < 4e-7, "max |erf_f32 - erf| = {worst}");
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(-30.0), -1.0);
    }

    /// erf in f64 by the series for |x| < 3 and the asymptotic complement beyond (both far more
    /// precise than f32).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() >= 3.0 {
            let z = x.abs();
            // erfc(z) = exp(-z²)/(z√π)·(1 − 1/(2z²) + 3/(4z⁴) − 15/(8z⁶) + 105/(16z⁸))
            let z2 = z * z;
            let s = 1.0 - 1.0 / (2.0 * z2) + 3.0 / (4.0 * z2 * z2) - 15.0 / (8.0 * z2.powi(3))
                + 105.0 / (16.0 * z2.powi(4));
            let erfc = (-z2).exp() / (z * std::f64::consts::PI.sqrt()) * s;
            return x.signum() * (1.0 - erfc);
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelu_on_the_cpu_matches_burns_exact_gelu() {
        let dev = Device::flex();
        let v: Vec<f32> = (0..4096).map(|i| (i as f32 - 2048.0) * 0.004).collect();
        let x = Tensor::<2>::from_data(TensorData::new(v, [64, 64]), &dev);
        // A transposed view too: the non-contiguous path.
        for input in [x.clone(), x.clone().transpose()] {
            let ours = crate::weights::to_host(gelu(input.clone())).unwrap();
            let burns = crate::weights::to_host(burn::tensor::activation::gelu(input)).unwrap();
            let worst = ours
                .iter()
                .zip(&burns)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 2e-6, "max |ours - burn| = {worst}");
        }
        // The input is left as it was (shared storage is copied, not changed).
        let before = crate::weights::to_host(x.clone()).unwrap();
        let _ = gelu(x.clone());
        assert_eq!(crate::weights::to_host(x).unwrap(), before);
    }
}
