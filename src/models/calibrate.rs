//! Calibration for weight quantization. While recording, every named linear layer and ungrouped
//! convolution adds its input's Gram matrix XᵀX (rows = tokens or kernel patches), keyed by its
//! weight's checkpoint name: a weight error e changes the layer's outputs by ‖Xe‖² = eᵀ·XᵀX·e,
//! which is what [`crate::weights::gptq`] minimises instead of ‖e‖².

use crate::weights::gptq::{Gram, Grams};
use burn::tensor::Tensor;
use burn::tensor::module::unfold4d;
use burn::tensor::ops::{ConvOptions, UnfoldOptions};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static RECORDING: RefCell<Option<HashMap<String, Tensor<2>>>> =
        const { RefCell::new(None) };
}

/// Runs `f` with recording on (on this thread), returning the Gram matrices it accumulated.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Grams) {
    RECORDING.with(|r| *r.borrow_mut() = Some(HashMap::new()));
    let out = f();
    let grams = RECORDING
        .with(|r| r.borrow_mut().take())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, xtx)| {
            let cols = xtx.dims()[0];
            let xtx = xtx.into_data().try_to_vec::<f32>().unwrap();
            let xtx = xtx.into_iter().map(f64::from).collect();
            (name, Gram { cols, xtx })
        })
        .collect();
    (out, grams)
}

pub(crate) fn recording() -> bool {
    RECORDING.with(|r| r.borrow().is_some())
}

fn add(name: &str, x: Tensor<2>) {
    let xtx = x.clone().transpose().matmul(x);
    RECORDING.with(|r| {
        if let Some(map) = r.borrow_mut().as_mut() {
            let sum = match map.remove(name) {
                Some(s) => s + xtx,
                None => xtx,
            };
            map.insert(name.to_owned(), sum);
        }
    });
}

/// A linear layer's input (rows, in).
pub(crate) fn linear_input(name: &str, x: &Tensor<2>) {
    if !name.is_empty() && recording() {
        add(name, x.clone());
    }
}

/// A convolution's input (N, C, H, W) as the patches its weight (out, C·k·k) multiplies.
/// Grouped (depthwise) convolutions are left out: each output sees its own channel only.
pub(crate) fn conv_input(name: &str, x: &Tensor<4>, k: usize, opts: &ConvOptions<2>) {
    if name.is_empty() || opts.groups != 1 || !recording() {
        return;
    }
    let [n, c, ..] = x.dims();
    let pad = [opts.padding[0].0, opts.padding[1].0];
    let patches = unfold4d(
        x.clone(),
        [k, k],
        UnfoldOptions::new(opts.stride, pad, opts.dilation),
    );
    let l = patches.dims()[2];
    add(name, patches.swap_dims(1, 2).reshape([n * l, c * k * k]));
}
