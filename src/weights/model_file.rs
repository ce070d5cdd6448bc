//! The app's model file: a small JSON header (architecture, config, provenance, checksums) followed
//! by the tensors, int8 by default.
//!
//! Layout: `MEDSEGM1` magic, u32 LE header length, UTF-8 JSON header, payload. Int8 tensors are
//! quantized symmetrically in groups of the entry's `group` along each row (first axis = rows):
//! the f16 scales, row by row, then `numel` signed bytes (rounded plainly, or calibrated by
//! [`gptq`]); f32 tensors are stored raw, little-endian. Tensors with fewer than
//! [`MIN_QUANT_NUMEL`] elements or of rank 1 (biases, norms, positional tables) always stay f32.

use super::gptq::{self, Grams};
use super::{HostTensor, StateDict};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"MEDSEGM1";
/// Below this size quantizing saves little and positional/bias tables lose precision.
pub const MIN_QUANT_NUMEL: usize = 4096;
/// Largest header accepted: the tensor table of a ViT-B is ~60 KB.
const MAX_HEADER: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Int8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: Precision,
    offset: usize,
    /// Int8 only: weights per scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<usize>,
}

/// For each tensor name, the int8 group size to use, or `None` to keep it f32.
pub type QuantPolicy<'a> = &'a dyn Fn(&str) -> Option<usize>;

fn groups_per_row(cols: usize, group: usize) -> usize {
    cols.div_ceil(group).max(1)
}

/// What the header tells about a model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// Architecture name, e.g. `litemedsam`, `medsam_vit`, `universeg_v1`.
    pub arch: String,
    /// Architecture configuration (JSON), interpreted by the model for `arch`.
    pub config: serde_json::Value,
    pub precision: Precision,
    /// sha256 of the checkpoint this file was converted from.
    pub source_sha256: String,
    /// sha256 of the payload, checked on every load.
    pub payload_sha256: String,
    tensors: Vec<Entry>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn quantizable(t: &HostTensor) -> bool {
    t.shape.len() >= 2 && t.data.len() >= MIN_QUANT_NUMEL
}

/// Serializes `tensors` as a model file; with `Precision::Int8`, `policy` picks what to quantize,
/// and the tensors with calibration data in `grams` are rounded by [`gptq::quantize`].
pub fn write(
    arch: &str,
    config: serde_json::Value,
    precision: Precision,
    policy: QuantPolicy,
    grams: &Grams,
    source_sha256: &str,
    tensors: &StateDict,
) -> Vec<u8> {
    let mut payload: Vec<u8> = Vec::new();
    let mut entries = Vec::new();
    for (name, t) in tensors {
        let group = if precision == Precision::Int8 && quantizable(t) {
            policy(name)
        } else {
            None
        };
        let dtype = if group.is_some() {
            Precision::Int8
        } else {
            Precision::F32
        };
        entries.push(Entry {
            name: name.clone(),
            shape: t.shape.clone(),
            dtype,
            offset: payload.len(),
            group,
        });
        match group {
            None => t
                .data
                .iter()
                .for_each(|v| payload.extend_from_slice(&v.to_le_bytes())),
            Some(g) => {
                let cols = t.data.len() / t.shape[0];
                let (scales, q) = match grams.get(name) {
                    Some(gram) if gram.cols == cols => gptq::quantize(&t.data, gram, g),
                    _ => gptq::round_plain(&t.data, cols, g),
                };
                scales.iter().for_each(|v| {
                    payload.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())
                });
                payload.extend(q.iter().map(|&v| v as u8));
            }
        }
    }
    let header = Header {
        format: 2,
        arch: arch.to_owned(),
        config,
        precision,
        source_sha256: source_sha256.to_owned(),
        payload_sha256: sha256_hex(&payload),
        tensors: entries,
    };
    let json = serde_json::to_vec(&header).expect("header serializes");
    let mut out = Vec::with_capacity(12 + json.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&payload);
    out
}

/// Reads only the header, checking the magic (cheap: for showing what a file is).
pub fn read_header(bytes: &[u8]) -> Result<(Header, usize)> {
    let err = |m: &str| Error::Weights(m.to_owned());
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(err(
            "not a medseg model file (convert the official checkpoint with `medseg convert`)",
        ));
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    if len > MAX_HEADER || 12 + len > bytes.len() {
        return Err(err("model file header is damaged or the file is truncated"));
    }
    let header: Header = serde_json::from_slice(&bytes[12..12 + len])
        .map_err(|e| Error::Weights(format!("model file header is damaged: {e}")))?;
    if header.format != 2 {
        return Err(Error::Weights(format!(
            "model file format {} is not supported (this app reads format 2); convert the checkpoint again",
            header.format
        )));
    }
    Ok((header, 12 + len))
}

/// Reads a model file of architecture `arch`, verifying its checksum, into f32 tensors.
pub fn read(bytes: &[u8], arch: &str) -> Result<(Header, StateDict)> {
    let (header, start) = read_header(bytes)?;
    if header.arch != arch {
        return Err(Error::Weights(format!(
            "this model file holds {}, not {arch}",
            header.arch
        )));
    }
    let payload = &bytes[start..];
    if sha256_hex(payload) != header.payload_sha256 {
        return Err(Error::Weights(
            "model file is corrupt or truncated (checksum mismatch)".into(),
        ));
    }
    let mut out = StateDict::new();
    for e in &header.tensors {
        // A hostile header can claim any shape or offset: every size is checked arithmetic.
        let outside = || {
            Error::Weights(format!(
                "model file tensor {} lies outside the file",
                e.name
            ))
        };
        let numel = e
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(outside)?;
        let rows = e.shape.first().copied().unwrap_or(1).max(1);
        let cols = numel / rows;
        let group = e.group.unwrap_or(cols).max(1);
        let n_scales = rows * groups_per_row(cols, group);
        let size = match e.dtype {
            Precision::F32 => numel.checked_mul(4),
            Precision::Int8 => n_scales.checked_mul(2).and_then(|s| s.checked_add(numel)),
        };
        let end = size.and_then(|s| e.offset.checked_add(s));
        let b = end
            .and_then(|end| payload.get(e.offset..end))
            .ok_or_else(outside)?;
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let data = match e.dtype {
            Precision::F32 => f32s(b),
            Precision::Int8 => {
                let scales: Vec<f32> = b[..n_scales * 2]
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect();
                let gpr = groups_per_row(cols, group);
                b[n_scales * 2..]
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| q as i8 as f32 * scales[(i / cols) * gpr + (i % cols) / group])
                    .collect()
            }
        };
        out.insert(
            e.name.clone(),
            HostTensor {
                shape: e.shape.clone(),
                data,
            },
        );
    }
    Ok((header, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateDict {
        let mut sd = StateDict::new();
        let w: Vec<f32> = (0..64 * 100)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        sd.insert(
            "w".into(),
            HostTensor {
                shape: vec![64, 100],
                data: w,
            },
        );
        sd.insert(
            "b".into(),
            HostTensor {
                shape: vec![3],
                data: vec![0.1, -2.0, 3.5],
            },
        );
        sd
    }

    fn write_sample(precision: Precision, sd: &StateDict) -> Vec<u8> {
        write(
            "test",
            serde_json::json!({}),
            precision,
            &|_| Some(32),
            &Grams::new(),
            "abc",
            sd,
        )
    }

    #[test]
    fn f32_round_trip_is_exact() {
        let sd = sample();
        let bytes = write_sample(Precision::F32, &sd);
        let (h, back) = read(&bytes, "test").unwrap();
        assert_eq!(back, sd);
        assert_eq!(h.source_sha256, "abc");
    }

    #[test]
    fn int8_round_trip_is_within_half_a_step() {
        let sd = sample();
        let bytes = write_sample(Precision::Int8, &sd);
        let (_, back) = read(&bytes, "test").unwrap();
        assert_eq!(back["b"], sd["b"], "rank-1 tensors stay f32");
        for (row_a, row_b) in sd["w"].data.chunks(100).zip(back["w"].data.chunks(100)) {
            // Never worse than plain per-row min–max rounding (half a step of max|row|/127).
            let step = row_a.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let mse = row_a
                .iter()
                .zip(row_b)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f32>()
                / 100.0;
            assert!(mse <= (step * 0.5).powi(2), "row mse {mse} vs step {step}");
        }
        // 100 columns in groups of 32 → 4 f16 scales per row.
        assert!(bytes.len() < 64 * 100 + 64 * 4 * 2 + 2000);
        let none = write(
            "test",
            serde_json::json!({}),
            Precision::Int8,
            &|_| None,
            &Grams::new(),
            "abc",
            &sd,
        );
        assert_eq!(
            read(&none, "test").unwrap().1,
            sd,
            "a policy may keep everything f32"
        );
    }

    #[test]
    fn detects_corruption_truncation_and_wrong_arch() {
        let mut bytes = write_sample(Precision::Int8, &sample());
        assert!(
            read(&bytes, "other")
                .unwrap_err()
                .to_string()
                .contains("not other")
        );
        assert!(read(&bytes[..bytes.len() - 10], "test").is_err());
        let n = bytes.len();
        bytes[n - 5] ^= 0xff;
        assert!(
            read(&bytes, "test")
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        assert!(
            read(b"PK\x03\x04 not ours", "test")
                .unwrap_err()
                .to_string()
                .contains("not a medseg model")
        );
    }
}
