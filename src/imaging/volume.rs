//! 3D scans: NRRD (attached raw or gzip data) and NIfTI-1 (`.nii`, `.nii.gz`), with geometry.
//!
//! Both formats are a small header and a raw array, read here directly: the `nifti` crate was
//! tried, but its dependency features force a rebuild of the whole burn/wgpu stack and it
//! allocates whatever size a header claims before any check.
//!
//! Voxels are stored in file order, x fastest, the order SimpleITK's `GetArrayFromImage` gives
//! as (z, y, x): slice `z` is the image MedSAM's scripts see. No reorientation is applied.
//! Geometry is kept in LPS world coordinates (DICOM's and ITK's), whatever the file used:
//! NIfTI's RAS is converted on reading and back on writing ([`write_nifti_labels`]).

use super::ScalarImage;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;

/// Largest volume read: 2^28 voxels (1 GiB as f32).
pub const MAX_VOXELS: usize = 1 << 28;

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Voxels along x, y, z.
    pub size: [usize; 3],
    /// Voxel size along each axis (mm).
    pub spacing: [f64; 3],
    /// World position (LPS, mm) of the first voxel's centre.
    pub origin: [f64; 3],
    /// Unit direction of each voxel axis in LPS world space: `direction[axis]`.
    pub direction: [[f64; 3]; 3],
    /// Raw intensities (HU for CT after NIfTI scaling), x fastest.
    pub data: Vec<f32>,
}

impl Volume {
    /// The axial slice `z` as raw intensities.
    pub fn slice(&self, z: usize) -> Result<ScalarImage> {
        let [w, h, d] = self.size;
        if z >= d {
            return Err(Error::Input(format!(
                "slice {z} does not exist: the volume has {d} slices (0–{})",
                d.saturating_sub(1)
            )));
        }
        Ok(ScalarImage {
            width: w,
            height: h,
            data: self.data[z * w * h..(z + 1) * w * h].to_vec(),
        })
    }
}

/// Whether a file name is one of the volume formats read here.
pub fn has_volume_extension(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    [".nrrd", ".nii", ".nii.gz"].iter().any(|e| l.ends_with(e))
}

/// Reads a NRRD or NIfTI volume, recognised by content (gzip-wrapped NIfTI included).
/// Non-finite voxels (NaN, ±Inf) become the lowest finite value (background), so windowing and
/// min-max normalisation stay meaningful; a volume with no finite voxel is refused.
pub fn read_volume(bytes: &[u8]) -> Result<Volume> {
    let mut v = read_any_volume(bytes)?;
    let lowest = v
        .data
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .reduce(f32::min)
        .ok_or_else(|| {
            Error::Decode("the volume has no finite voxel values (all NaN or infinite)".into())
        })?;
    for x in v.data.iter_mut().filter(|x| !x.is_finite()) {
        *x = lowest;
    }
    Ok(v)
}

fn read_any_volume(bytes: &[u8]) -> Result<Volume> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty".into()));
    }
    if bytes.starts_with(b"NRRD") {
        return read_nrrd(bytes);
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_VOXELS as u64 * 8 + (1 << 20))
            .read_to_end(&mut raw)
            .map_err(|e| Error::Decode(format!("gzip data is damaged or truncated ({e})")))?;
        return read_nifti(&raw);
    }
    if bytes.len() >= 348 && (&bytes[344..348] == b"n+1\0" || &bytes[344..348] == b"ni1\0") {
        return read_nifti(bytes);
    }
    Err(Error::Decode(
        "not a NRRD or NIfTI volume (expected a .nrrd, .nii or .nii.gz file)".into(),
    ))
}

fn check_voxels(size: &[usize]) -> Result<usize> {
    let n = size
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .filter(|&n| n <= MAX_VOXELS)
        .ok_or_else(|| {
            Error::Input(format!(
                "the volume is too large ({size:?} voxels; at most {MAX_VOXELS})"
            ))
        })?;
    if n == 0 {
        return Err(Error::Decode(format!(
            "the volume is empty ({size:?} voxels)"
        )));
    }
    Ok(n)
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

/// NRRD: text header (`NRRD000x`, `field: value` lines, blank line) then the data.
fn read_nrrd(bytes: &[u8]) -> Result<Volume> {
    let bad = |m: String| Error::Decode(format!("NRRD: {m}"));
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(|| bad("the header never ends (truncated file?)".into()))?;
    let header =
        std::str::from_utf8(&bytes[..end]).map_err(|_| bad("header is not text".into()))?;
    let mut fields = std::collections::HashMap::new();
    for line in header.lines().skip(1) {
        if line.starts_with('#') || line.contains(":=") {
            continue;
        }
        if let Some((k, v)) = line.split_once(": ") {
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let get = |k: &str| fields.get(k).map(String::as_str);
    if get("data file").or(get("datafile")).is_some() {
        return Err(bad(
            "detached data files are not supported; save the volume as a single .nrrd".into(),
        ));
    }
    let dim: usize = get("dimension")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("missing dimension".into()))?;
    if !(2..=3).contains(&dim) {
        return Err(bad(format!("{dim}-dimensional data is not a 2D/3D scan")));
    }
    let mut size: Vec<usize> = get("sizes")
        .ok_or_else(|| bad("missing sizes".into()))?
        .split_whitespace()
        .map(|s| s.parse().map_err(|_| bad(format!("bad size {s:?}"))))
        .collect::<Result<_>>()?;
    if size.len() != dim {
        return Err(bad(format!(
            "sizes has {} values for dimension {dim}",
            size.len()
        )));
    }
    size.resize(3, 1);
    let n = check_voxels(&size)?;
    let (bytes_per, kind) = match get("type").unwrap_or("") {
        "signed char" | "int8" | "int8_t" => (1, 'i'),
        "uchar" | "unsigned char" | "uint8" | "uint8_t" => (1, 'u'),
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
            (2, 'i')
        }
        "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => (2, 'u'),
        "int" | "signed int" | "int32" | "int32_t" => (4, 'i'),
        "uint" | "unsigned int" | "uint32" | "uint32_t" => (4, 'u'),
        "float" => (4, 'f'),
        "double" => (8, 'f'),
        t => return Err(bad(format!("voxel type {t:?} is not supported"))),
    };
    let little = get("endian").is_none_or(|e| e == "little");
    let payload = &bytes[end + 2..];
    let raw: Vec<u8> = match get("encoding").unwrap_or("raw") {
        "raw" => payload.to_vec(),
        "gzip" | "gz" => {
            let mut out = Vec::with_capacity(n * bytes_per);
            GzDecoder::new(payload)
                .take((n * bytes_per) as u64)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("gzip data is damaged or truncated ({e})")))?;
            out
        }
        e => {
            return Err(bad(format!(
                "encoding {e:?} is not supported (raw or gzip)"
            )));
        }
    };
    if raw.len() < n * bytes_per {
        return Err(bad(format!(
            "the data is truncated ({} of {} bytes)",
            raw.len(),
            n * bytes_per
        )));
    }
    let data = decode_samples(&raw[..n * bytes_per], bytes_per, kind, little);

    // Geometry: `space directions` (vectors) or `spacings`; `space origin`.
    let vectors = |s: &str| -> Vec<Option<[f64; 3]>> {
        s.split_whitespace()
            .map(|t| {
                let v: Vec<f64> = t
                    .trim_matches(|c| c == '(' || c == ')')
                    .split(',')
                    .filter_map(|x| x.trim().parse().ok())
                    .collect();
                (v.len() == 3).then(|| [v[0], v[1], v[2]])
            })
            .collect()
    };
    let mut spacing = [1.0; 3];
    let mut direction = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    if let Some(dirs) = get("space directions") {
        for (axis, v) in vectors(dirs).into_iter().take(3).enumerate() {
            if let Some(v) = v.filter(|v| norm(*v) > 0.0) {
                spacing[axis] = norm(v);
                direction[axis] = v.map(|c| c / spacing[axis]);
            }
        }
    } else if let Some(s) = get("spacings") {
        for (axis, v) in s.split_whitespace().take(3).enumerate() {
            if let Ok(v) = v.parse::<f64>() {
                spacing[axis] = v.abs();
            }
        }
    }
    let mut origin = get("space origin")
        .and_then(|o| vectors(o).into_iter().next().flatten())
        .unwrap_or([0.0; 3]);
    if matches!(
        get("space"),
        Some("right-anterior-superior" | "RAS" | "right_anterior_superior")
    ) {
        ras_lps(&mut origin, &mut direction);
    }
    Ok(Volume {
        size: [size[0], size[1], size[2]],
        spacing,
        origin,
        direction,
        data,
    })
}

fn decode_samples(raw: &[u8], bytes_per: usize, kind: char, little: bool) -> Vec<f32> {
    raw.chunks_exact(bytes_per)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..bytes_per].copy_from_slice(c);
            if !little {
                b[..bytes_per].reverse();
            }
            match (kind, bytes_per) {
                ('u', 1) => b[0] as f32,
                ('i', 1) => b[0] as i8 as f32,
                ('u', 2) => u16::from_le_bytes([b[0], b[1]]) as f32,
                ('i', 2) => i16::from_le_bytes([b[0], b[1]]) as f32,
                ('u', 4) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                ('i', 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                ('f', 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                _ => f64::from_le_bytes(b) as f32,
            }
        })
        .collect()
}

/// NIfTI-1 single file (`n+1`, header and data together), data scaled by scl_slope/scl_inter.
/// Geometry from the sform when set, else the qform, else pixdim alone.
fn read_nifti(bytes: &[u8]) -> Result<Volume> {
    let bad = |m: String| Error::Decode(format!("NIfTI: {m}"));
    if bytes.len() < 348 {
        return Err(bad("the header is truncated".into()));
    }
    if &bytes[344..348] == b"ni1\0" {
        return Err(bad(
            "header/image pairs (.hdr + .img) are not supported; convert to a single .nii".into(),
        ));
    }
    let little = i32::from_le_bytes(bytes[0..4].try_into().unwrap()) == 348;
    if !little && i32::from_be_bytes(bytes[0..4].try_into().unwrap()) != 348 {
        return Err(bad("the header size is not 348 (not NIfTI-1)".into()));
    }
    let i16_at = |o: usize| {
        let b = [bytes[o], bytes[o + 1]];
        if little {
            i16::from_le_bytes(b)
        } else {
            i16::from_be_bytes(b)
        }
    };
    let f32_at = |o: usize| {
        let b: [u8; 4] = bytes[o..o + 4].try_into().unwrap();
        if little {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        }
    };
    let dim = |i: usize| i16_at(40 + 2 * i).max(0) as usize;
    let ndim = dim(0);
    if !(2..=7).contains(&ndim) || (4..=ndim).any(|i| dim(i) > 1) {
        let dims: Vec<usize> = (1..=ndim.clamp(1, 7)).map(dim).collect();
        return Err(bad(format!(
            "an image of dimensions {dims:?} is not a 2D/3D scan (time series are not supported)"
        )));
    }
    let size = [dim(1), dim(2), if ndim >= 3 { dim(3) } else { 1 }];
    let n = check_voxels(&size)?;
    let (bytes_per, kind) = match i16_at(70) {
        2 => (1, 'u'),
        256 => (1, 'i'),
        4 => (2, 'i'),
        512 => (2, 'u'),
        8 => (4, 'i'),
        768 => (4, 'u'),
        16 => (4, 'f'),
        64 => (8, 'f'),
        t => return Err(bad(format!("voxel data type {t} is not supported"))),
    };
    let offset = f32_at(108).max(348.0) as usize;
    let data = bytes.get(offset..offset + n * bytes_per).ok_or_else(|| {
        bad(format!(
            "the data is truncated ({} bytes for {n} voxels)",
            bytes.len().saturating_sub(offset)
        ))
    })?;
    let (slope, inter) = (f32_at(112), f32_at(116));
    let data = decode_samples(data, bytes_per, kind, little)
        .into_iter()
        .map(|v| {
            if slope != 0.0 && slope.is_finite() {
                v * slope + inter
            } else {
                v
            }
        })
        .collect();
    let pixdim = |i: usize| (f32_at(76 + 4 * i) as f64).abs();
    let mut spacing = [1, 2, 3].map(|i| if pixdim(i) > 0.0 { pixdim(i) } else { 1.0 });
    let (mut direction, mut origin) = (
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        [0.0; 3],
    );
    if i16_at(254) > 0 {
        // sform rows map (i, j, k, 1) to world; column `axis` is that axis's step.
        let row = |r: usize| [0, 1, 2, 3].map(|c| f32_at(280 + 16 * r + 4 * c) as f64);
        let rows = [row(0), row(1), row(2)];
        for axis in 0..3 {
            let v = [0, 1, 2].map(|r| rows[r][axis]);
            if norm(v) > 0.0 {
                spacing[axis] = norm(v);
                direction[axis] = v.map(|c| c / spacing[axis]);
            }
        }
        origin = [0, 1, 2].map(|r| rows[r][3]);
    } else if i16_at(252) > 0 {
        let [b, c, d] = [256, 260, 264].map(|o| f32_at(o) as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if f32_at(76) < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        for (axis, dir) in direction.iter_mut().enumerate() {
            let sign = if axis == 2 { qfac } else { 1.0 };
            *dir = [0, 1, 2].map(|row| r[row][axis] * sign);
        }
        origin = [268, 272, 276].map(|o| f32_at(o) as f64);
    }
    ras_lps(&mut origin, &mut direction);
    Ok(Volume {
        size,
        spacing,
        origin,
        direction,
        data,
    })
}

/// RAS ↔ LPS: the x and y world axes change sign (the map is its own inverse).
fn ras_lps(origin: &mut [f64; 3], direction: &mut [[f64; 3]; 3]) {
    for v in std::iter::once(origin).chain(direction.iter_mut()) {
        v[0] = -v[0];
        v[1] = -v[1];
    }
}

/// A label volume (one byte per voxel, x fastest) as NIfTI-1 with `geometry`'s size, spacing,
/// direction and origin in both the sform and the qform, so other viewers overlay it on the
/// source scan; gzip-compressed when `gzip` (`.nii.gz`).
pub fn write_nifti_labels(geometry: &Volume, labels: &[u8], gzip: bool) -> Result<Vec<u8>> {
    let [w, h, d] = geometry.size;
    if labels.len() != w * h * d {
        return Err(Error::Input(format!(
            "{} labels for a {w}×{h}×{d} volume",
            labels.len()
        )));
    }
    if geometry.size.iter().any(|&n| n > i16::MAX as usize) {
        return Err(Error::Input(
            "NIfTI-1 holds at most 32767 voxels per axis".into(),
        ));
    }
    let mut origin = geometry.origin;
    let mut direction = geometry.direction;
    ras_lps(&mut origin, &mut direction);
    let mut hd = vec![0u8; 352];
    let mut put = |o: usize, b: &[u8]| hd[o..o + b.len()].copy_from_slice(b);
    put(0, &348i32.to_le_bytes());
    for (i, v) in [3, w, h, d, 1, 1, 1, 1].iter().enumerate() {
        put(40 + 2 * i, &(*v as i16).to_le_bytes());
    }
    put(70, &2i16.to_le_bytes()); // DT_UINT8
    put(72, &8i16.to_le_bytes()); // bits per voxel
    // The qform: rotation as a quaternion, a left-handed frame flagged by qfac = −1.
    let mut r = [[0.0; 3]; 3];
    for (axis, dir) in direction.iter().enumerate() {
        for row in 0..3 {
            r[row][axis] = dir[row];
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    if qfac < 0.0 {
        (0..3).for_each(|row| r[row][2] = -r[row][2]);
    }
    let [b, c, dq] = quaternion(&r);
    for (i, v) in [
        qfac,
        geometry.spacing[0],
        geometry.spacing[1],
        geometry.spacing[2],
    ]
    .iter()
    .enumerate()
    {
        put(76 + 4 * i, &(*v as f32).to_le_bytes());
    }
    put(108, &352f32.to_le_bytes()); // vox_offset
    put(112, &1f32.to_le_bytes()); // scl_slope
    put(123, &[10]); // xyzt_units: mm, s
    put(252, &1i16.to_le_bytes()); // qform_code: scanner
    put(254, &1i16.to_le_bytes()); // sform_code: scanner
    for (i, v) in [b, c, dq, origin[0], origin[1], origin[2]]
        .iter()
        .enumerate()
    {
        put(256 + 4 * i, &(*v as f32).to_le_bytes());
    }
    for row in 0..3 {
        for (axis, (dir, step)) in direction.iter().zip(geometry.spacing).enumerate() {
            put(
                280 + 16 * row + 4 * axis,
                &((dir[row] * step) as f32).to_le_bytes(),
            );
        }
        put(280 + 16 * row + 12, &(origin[row] as f32).to_le_bytes());
    }
    put(328, b"medseg labels\0");
    put(344, b"n+1\0");
    hd.extend_from_slice(labels);
    if !gzip {
        return Ok(hd);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &hd)
        .and_then(|_| gz.finish())
        .map_err(|e| Error::Io(format!("gzip: {e}")))
}

/// Most labels a label volume may bring in (the label exports write one byte per voxel).
pub const MAX_LABELS: usize = 255;

/// One label of a label volume: its value and its mask on each slice (`None` where it has none).
pub type LabelMasks = (u32, Vec<Option<Vec<u8>>>);

/// A label volume (read with [`read_volume`]) split into one mask per label value, in value
/// order, for drawing over `scan`. Refused, saying why, where its voxel grid is not the scan's
/// (size, voxel size, origin, axes: labels are not resampled) or its values are not labels
/// (whole numbers from 0, at most [`MAX_LABELS`] of them besides 0).
pub fn split_labels(labels: &Volume, scan: &Volume) -> Result<Vec<LabelMasks>> {
    let bad = |m: String| Err(Error::Input(m));
    let [w, h, d] = scan.size;
    if labels.size != scan.size {
        let [a, b, c] = labels.size;
        return bad(format!(
            "the labels are {a}×{b}×{c} voxels, the scan {w}×{h}×{d}: they belong to another scan"
        ));
    }
    let near = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
    if !(0..3).all(|k| {
        near(
            labels.spacing[k],
            scan.spacing[k],
            1e-3 * scan.spacing[k].max(1.0),
        )
    }) {
        let mm = |s: [f64; 3]| format!("{:.3}×{:.3}×{:.3} mm", s[0], s[1], s[2]);
        return bad(format!(
            "the labels' voxels are {}, the scan's {}",
            mm(labels.spacing),
            mm(scan.spacing)
        ));
    }
    let voxel = scan.spacing.iter().copied().fold(f64::INFINITY, f64::min);
    if !(0..3).all(|k| near(labels.origin[k], scan.origin[k], 0.05 * voxel)) {
        return bad("the labels are placed elsewhere than the scan (another origin)".into());
    }
    if !(0..3).all(|a| (0..3).all(|k| near(labels.direction[a][k], scan.direction[a][k], 1e-3))) {
        return bad(
            "the labels' axes are not the scan's (another orientation): resample them onto the scan first"
                .into(),
        );
    }
    if let Some(v) = labels
        .data
        .iter()
        .find(|v| **v < 0.0 || v.fract() != 0.0 || **v > u32::MAX as f32)
    {
        return bad(format!(
            "a voxel holds {v}: a label volume holds whole numbers from 0"
        ));
    }
    let mut values: Vec<u32> = labels
        .data
        .iter()
        .map(|&v| v as u32)
        .filter(|&v| v > 0)
        .collect();
    values.sort_unstable();
    values.dedup();
    if values.len() > MAX_LABELS {
        return bad(format!(
            "{} different labels: at most {MAX_LABELS} can be opened",
            values.len()
        ));
    }
    // One pass over the voxels, a slice's mask made when its first voxel turns up.
    let n = w * h;
    let mut masks: Vec<Vec<Option<Vec<u8>>>> = vec![vec![None; d]; values.len()];
    for (z, slice) in labels.data.chunks(n).enumerate() {
        for (i, &v) in slice.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            let k = values
                .binary_search(&(v as u32))
                .expect("every label was listed");
            masks[k][z].get_or_insert_with(|| vec![0; n])[i] = 1;
        }
    }
    Ok(values.into_iter().zip(masks).collect())
}

/// (b, c, d) of the unit quaternion of a proper rotation matrix (a ≥ 0, as NIfTI stores it).
fn quaternion(r: &[[f64; 3]; 3]) -> [f64; 3] {
    let a = 1.0 + r[0][0] + r[1][1] + r[2][2];
    let q = if a > 0.5 {
        let a = 0.5 * a.sqrt();
        [
            0.25 * (r[2][1] - r[1][2]) / a,
            0.25 * (r[0][2] - r[2][0]) / a,
            0.25 * (r[1][0] - r[0][1]) / a,
            a,
        ]
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        if xd > 1.0 {
            let b = 0.5 * xd.sqrt();
            [
                b,
                0.25 * (r[0][1] + r[1][0]) / b,
                0.25 * (r[0][2] + r[2][0]) / b,
                0.25 * (r[2][1] - r[1][2]) / b,
            ]
        } else if yd > 1.0 {
            let c = 0.5 * yd.sqrt();
            [
                0.25 * (r[0][1] + r[1][0]) / c,
                c,
                0.25 * (r[1][2] + r[2][1]) / c,
                0.25 * (r[0][2] - r[2][0]) / c,
            ]
        } else {
            let d = 0.5 * zd.sqrt();
            [
                0.25 * (r[0][2] + r[2][0]) / d,
                0.25 * (r[1][2] + r[2][1]) / d,
                d,
                0.25 * (r[1][0] - r[0][1]) / d,
            ]
        }
    };
    // q = [b, c, d, a]; NIfTI wants a ≥ 0.
    let s = if q[3] < 0.0 { -1.0 } else { 1.0 };
    [q[0] * s, q[1] * s, q[2] * s]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nrrd(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = format!("NRRD0004\n{header}\n").into_bytes();
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_a_raw_nrrd_with_geometry() {
        let data: Vec<u8> = [1i16, -2, 300, 4, 5, 6, 7, 8]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let v = read_volume(&nrrd(
            "type: short\ndimension: 3\nsizes: 2 2 2\nendian: little\nencoding: raw\n\
             space directions: (0.5,0,0) (0,-0.5,0) (0,0,3)\nspace origin: (1,2,3)\n",
            &data,
        ))
        .unwrap();
        assert_eq!(v.size, [2, 2, 2]);
        assert_eq!(v.spacing, [0.5, 0.5, 3.0]);
        assert_eq!(v.direction[1], [0.0, -1.0, 0.0]);
        assert_eq!(v.origin, [1.0, 2.0, 3.0]);
        assert_eq!(v.slice(0).unwrap().data, vec![1.0, -2.0, 300.0, 4.0]);
        assert!(v.slice(2).unwrap_err().to_string().contains("2 slices"));
    }

    /// A minimal little-endian NIfTI-1 file: int16 data, sform with a flipped y axis.
    fn nifti(dims: &[i16], data: &[i16], slope: f32) -> Vec<u8> {
        let mut h = vec![0u8; 352];
        h[0..4].copy_from_slice(&348i32.to_le_bytes());
        for (i, d) in dims.iter().enumerate() {
            h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
        }
        h[70..72].copy_from_slice(&4i16.to_le_bytes());
        h[108..112].copy_from_slice(&352f32.to_le_bytes());
        h[112..116].copy_from_slice(&slope.to_le_bytes());
        h[116..120].copy_from_slice(&(-1024f32).to_le_bytes());
        h[254..256].copy_from_slice(&1i16.to_le_bytes());
        let srow = [
            [0.8f32, 0.0, 0.0, -10.0],
            [0.0, -0.8, 0.0, 20.0],
            [0.0, 0.0, 2.5, 30.0],
        ];
        for (r, row) in srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                h[280 + 16 * r + 4 * c..284 + 16 * r + 4 * c].copy_from_slice(&v.to_le_bytes());
            }
        }
        h[344..348].copy_from_slice(b"n+1\0");
        h.extend(data.iter().flat_map(|v| v.to_le_bytes()));
        h
    }

    #[test]
    fn reads_nifti_with_scaling_and_sform() {
        let v = read_volume(&nifti(&[3, 2, 1, 2, 1, 1, 1, 1], &[0, 1, 2, 3], 2.0)).unwrap();
        assert_eq!(v.size, [2, 1, 2]);
        assert_eq!(v.data, vec![-1024.0, -1022.0, -1020.0, -1018.0]);
        assert!((v.spacing[1] - 0.8).abs() < 1e-6 && (v.spacing[2] - 2.5).abs() < 1e-6);
        // RAS in the file, LPS in memory.
        assert_eq!(v.direction[1], [0.0, 1.0, 0.0]);
        assert_eq!(v.origin, [10.0, -20.0, 30.0]);
        // gzip-wrapped, as .nii.gz.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(
            &mut gz,
            &nifti(&[3, 2, 1, 2, 1, 1, 1, 1], &[0, 1, 2, 3], 2.0),
        )
        .unwrap();
        assert_eq!(read_volume(&gz.finish().unwrap()).unwrap(), v);
        let e = read_volume(&nifti(&[4, 2, 1, 2, 5, 1, 1, 1], &[0; 20], 1.0)).unwrap_err();
        assert!(e.to_string().contains("time series"), "{e}");
        let e = read_volume(&nifti(&[3, 2, 1, 2, 1, 1, 1, 1], &[0; 3], 1.0)).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn labels_split_into_masks_on_their_scan_only() {
        let scan = Volume {
            size: [3, 2, 2],
            spacing: [0.7, 0.8, 2.5],
            origin: [-12.5, 40.25, -7.0],
            direction: [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
            data: vec![0.0; 12],
        };
        // Label 2 on slice 0 only, label 7 on both slices.
        let labels: Vec<u8> = vec![0, 2, 2, 7, 0, 0, /* slice 1 */ 0, 0, 0, 0, 7, 7];
        let back = read_volume(&write_nifti_labels(&scan, &labels, true).unwrap()).unwrap();
        let split = split_labels(&back, &scan).unwrap();
        assert_eq!(
            split,
            vec![
                (2, vec![Some(vec![0, 1, 1, 0, 0, 0]), None]),
                (
                    7,
                    vec![Some(vec![0, 0, 0, 1, 0, 0]), Some(vec![0, 0, 0, 0, 1, 1])]
                ),
            ]
        );
        // Another scan's labels: each difference named.
        let refused = |change: &dyn Fn(&mut Volume)| {
            let mut other = back.clone();
            change(&mut other);
            split_labels(&other, &scan).unwrap_err().to_string()
        };
        assert!(refused(&|v| v.size = [3, 2, 3]).contains("3×2×3 voxels, the scan 3×2×2"));
        assert!(refused(&|v| v.spacing[2] = 3.0).contains("3.000 mm, the scan's"));
        assert!(refused(&|v| v.origin[0] += 1.0).contains("another origin"));
        assert!(refused(&|v| v.direction[1][1] = 1.0).contains("another orientation"));
        assert!(refused(&|v| v.data[4] = 1.5).contains("holds 1.5"));
        assert!(refused(&|v| v.data[4] = -1.0).contains("holds -1"));
        // Nothing labelled: no masks, no error.
        let mut empty = back.clone();
        empty.data.iter_mut().for_each(|v| *v = 0.0);
        assert_eq!(split_labels(&empty, &scan).unwrap(), vec![]);
    }

    #[test]
    fn nifti_labels_reread_with_the_source_geometry() {
        // An oblique, left-handed (LPS) geometry: rotated 30° about z, z axis flipped.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let src = Volume {
            size: [3, 2, 2],
            spacing: [0.7, 0.8, 2.5],
            origin: [-12.5, 40.25, -7.0],
            direction: [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, -1.0]],
            data: vec![],
        };
        let labels: Vec<u8> = (0..12).map(|i| (i % 3) as u8).collect();
        for gzip in [false, true] {
            let bytes = write_nifti_labels(&src, &labels, gzip).unwrap();
            let back = read_volume(&bytes).unwrap();
            assert_eq!(back.size, src.size);
            assert_eq!(
                back.data,
                labels.iter().map(|&v| v as f32).collect::<Vec<_>>()
            );
            let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
            assert!(
                back.spacing
                    .iter()
                    .zip(src.spacing)
                    .all(|(a, b)| close(*a, b))
            );
            assert!(
                back.origin
                    .iter()
                    .zip(src.origin)
                    .all(|(a, b)| close(*a, b))
            );
            for axis in 0..3 {
                for k in 0..3 {
                    assert!(
                        close(back.direction[axis][k], src.direction[axis][k]),
                        "{back:?}"
                    );
                }
            }
            // The qform, read alone, gives the same frame.
            let mut q = if gzip {
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut GzDecoder::new(&bytes[..]), &mut raw).unwrap();
                raw
            } else {
                bytes.clone()
            };
            q[254] = 0; // sform_code = 0
            let viaq = read_volume(&q).unwrap();
            for axis in 0..3 {
                for k in 0..3 {
                    assert!(
                        close(viaq.direction[axis][k], src.direction[axis][k]),
                        "{viaq:?}"
                    );
                }
            }
            assert!(
                viaq.origin
                    .iter()
                    .zip(src.origin)
                    .all(|(a, b)| close(*a, b))
            );
        }
        assert!(write_nifti_labels(&src, &[0; 5], false).is_err());
    }

    #[test]
    fn bad_volumes_give_clear_errors() {
        let e = |b: &[u8]| read_volume(b).unwrap_err().to_string();
        assert!(e(b"hello").contains("not a NRRD or NIfTI"));
        assert!(
            e(&nrrd("type: short\ndimension: 3\nsizes: 2 2 2\n", &[0; 5])).contains("truncated")
        );
        assert!(
            e(&nrrd(
                "type: short\ndimension: 3\nsizes: 9000 9000 9000\n",
                &[]
            ))
            .contains("too large")
        );
        assert!(
            e(&nrrd(
                "type: short\ndimension: 3\nsizes: 2 2 2\ndata file: x.raw\n",
                &[]
            ))
            .contains("detached")
        );
        assert!(e(b"NRRD0004\ntype: short").contains("never ends"));
        assert!(e(&[0x1f, 0x8b, 8, 0, 1, 2]).contains("gzip"));
    }
}
