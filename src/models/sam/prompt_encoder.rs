//! SAM's prompt encoder for points and boxes (mask prompts are not used by MedSAM).
//!
//! Everything here is tiny, so it runs on the host in f32: random Fourier features of the
//! normalized coordinates plus a learned embedding per point kind.

use crate::weights::{HostTensor, Loader};

/// A prompt in the model's input coordinates (e.g. 0..256 for LiteMedSAM).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    /// (x, y, positive?) clicks.
    pub points: Vec<(f32, f32, bool)>,
    /// [x0, y0, x1, y1].
    pub bbox: Option<[f32; 4]>,
}

#[derive(Debug, Clone)]
pub struct PromptEncoder {
    /// positional_encoding_gaussian_matrix, (2, dim/2) row-major.
    gaussian: Vec<f32>,
    /// point_embeddings: negative, positive, box corner 1, box corner 2.
    kinds: [Vec<f32>; 4],
    not_a_point: Vec<f32>,
    pub no_mask: Vec<f32>,
    pub dim: usize,
    /// Input image size (h, w) the coordinates refer to.
    input_size: (usize, usize),
    /// Embedding grid size (h, w).
    pub grid: (usize, usize),
}

impl PromptEncoder {
    pub fn load(l: &mut Loader, p: &str, dim: usize, input: usize, grid: usize) -> Self {
        let e = |l: &mut Loader, n: &str| l.host(&format!("{p}.{n}"), &[1, dim]);
        PromptEncoder {
            gaussian: l.host(
                &format!("{p}.pe_layer.positional_encoding_gaussian_matrix"),
                &[2, dim / 2],
            ),
            kinds: [
                e(l, "point_embeddings.0.weight"),
                e(l, "point_embeddings.1.weight"),
                e(l, "point_embeddings.2.weight"),
                e(l, "point_embeddings.3.weight"),
            ],
            not_a_point: e(l, "not_a_point_embed.weight"),
            no_mask: e(l, "no_mask_embed.weight"),
            dim,
            input_size: (input, input),
            grid: (grid, grid),
        }
    }

    /// Fourier features of a point already normalized to [0, 1]².
    fn pe(&self, x: f32, y: f32, out: &mut Vec<f32>) {
        let half = self.dim / 2;
        let (cx, cy) = (2.0 * x - 1.0, 2.0 * y - 1.0);
        let two_pi = (2.0 * std::f64::consts::PI) as f32;
        let proj: Vec<f32> = (0..half)
            .map(|j| two_pi * (cx * self.gaussian[j] + cy * self.gaussian[half + j]))
            .collect();
        out.extend(proj.iter().map(|v| v.sin()));
        out.extend(proj.iter().map(|v| v.cos()));
    }

    fn pe_input_coords(&self, x: f32, y: f32, out: &mut Vec<f32>) {
        // SAM shifts to pixel centres before normalizing.
        self.pe(
            (x + 0.5) / self.input_size.1 as f32,
            (y + 0.5) / self.input_size.0 as f32,
            out,
        )
    }

    /// Sparse embeddings (tokens, dim): points (plus a padding point when there is no box),
    /// then the two box corners.
    pub fn sparse(&self, prompt: &Prompt) -> HostTensor {
        let mut data = Vec::new();
        let mut n = 0;
        let add = |data: &mut Vec<f32>, start: usize, emb: &[f32]| {
            data[start..].iter_mut().zip(emb).for_each(|(d, e)| *d += e);
        };
        if !prompt.points.is_empty() {
            for &(x, y, positive) in &prompt.points {
                let start = data.len();
                self.pe_input_coords(x, y, &mut data);
                add(&mut data, start, &self.kinds[positive as usize]);
                n += 1;
            }
            if prompt.bbox.is_none() {
                // Padding point: no positional part, only the "not a point" embedding.
                data.extend_from_slice(&self.not_a_point);
                n += 1;
            }
        }
        if let Some([x0, y0, x1, y1]) = prompt.bbox {
            for (i, (x, y)) in [(x0, y0), (x1, y1)].into_iter().enumerate() {
                let start = data.len();
                self.pe_input_coords(x, y, &mut data);
                add(&mut data, start, &self.kinds[2 + i]);
                n += 1;
            }
        }
        HostTensor {
            shape: vec![n, self.dim],
            data,
        }
    }

    /// Positional encoding of the embedding grid as tokens, (h·w, dim) row-major.
    pub fn dense_pe(&self) -> HostTensor {
        let (h, w) = self.grid;
        let mut hwc = Vec::with_capacity(h * w * self.dim);
        for i in 0..h {
            for j in 0..w {
                self.pe(
                    (j as f32 + 0.5) / w as f32,
                    (i as f32 + 0.5) / h as f32,
                    &mut hwc,
                );
            }
        }
        HostTensor {
            shape: vec![h * w, self.dim],
            data: hwc,
        }
    }
}
