//! SAM's encoder neck: 1×1 conv → LayerNorm2d → 3×3 conv → LayerNorm2d (convs without bias).

use crate::models::nn::{Conv2d, ConvSpec, LayerNorm2d};
use crate::weights::Loader;
use burn::tensor::Tensor;

#[derive(Debug, Clone)]
pub struct Neck {
    conv1: Conv2d,
    ln1: LayerNorm2d,
    conv2: Conv2d,
    ln2: LayerNorm2d,
}

impl Neck {
    pub fn load(l: &mut Loader, p: &str, c_in: usize, c_out: usize) -> Self {
        Neck {
            conv1: Conv2d::load(l, &format!("{p}.0"), ConvSpec::new(c_in, c_out, 1), false),
            ln1: LayerNorm2d::load(l, &format!("{p}.1"), c_out),
            conv2: Conv2d::load(
                l,
                &format!("{p}.2"),
                ConvSpec::new(c_out, c_out, 3).pad(1),
                false,
            ),
            ln2: LayerNorm2d::load(l, &format!("{p}.3"), c_out),
        }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.ln2
            .forward(self.conv2.forward(self.ln1.forward(self.conv1.forward(x))))
    }
}
