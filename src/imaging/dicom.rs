//! DICOM: single files and series, parsed with dicom-rs (`dicom-object`), turned into a
//! [`Volume`] of modality values (HU for CT): a single file is a one-slice volume (or one slice
//! per frame), a series is sorted along the slice normal with its spacing, origin and
//! direction kept. Pixel data: native (uncompressed) in any of the standard encodings,
//! encapsulated JPEG baseline/extended (8-bit) and RLE Lossless; other compressed transfer
//! syntaxes are named in a clear message.

use super::dicom_seg::SeriesReference;
use super::volume::{MAX_VOXELS, Volume};
use crate::{Error, Result};
use dicom_object::mem::InMemElement;
use dicom_object::{InMemDicomObject, OpenFileOptions, Tag};
use std::io::Cursor;

const ROWS: Tag = Tag(0x0028, 0x0010);
const COLUMNS: Tag = Tag(0x0028, 0x0011);
const SAMPLES_PER_PIXEL: Tag = Tag(0x0028, 0x0002);
const PHOTOMETRIC: Tag = Tag(0x0028, 0x0004);
const PLANAR_CONFIGURATION: Tag = Tag(0x0028, 0x0006);
const NUMBER_OF_FRAMES: Tag = Tag(0x0028, 0x0008);
const PIXEL_SPACING: Tag = Tag(0x0028, 0x0030);
const BITS_ALLOCATED: Tag = Tag(0x0028, 0x0100);
const BITS_STORED: Tag = Tag(0x0028, 0x0101);
const PIXEL_REPRESENTATION: Tag = Tag(0x0028, 0x0103);
const RESCALE_INTERCEPT: Tag = Tag(0x0028, 0x1052);
const RESCALE_SLOPE: Tag = Tag(0x0028, 0x1053);
const SLICE_THICKNESS: Tag = Tag(0x0018, 0x0050);
const SPACING_BETWEEN_SLICES: Tag = Tag(0x0018, 0x0088);
const IMAGE_POSITION: Tag = Tag(0x0020, 0x0032);
const IMAGE_ORIENTATION: Tag = Tag(0x0020, 0x0037);
const INSTANCE_NUMBER: Tag = Tag(0x0020, 0x0013);
const SERIES_UID: Tag = Tag(0x0020, 0x000E);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

/// True when the bytes look like a DICOM file (the `DICM` magic after the preamble).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.len() > 132 && &bytes[128..132] == b"DICM"
}

/// One image of a series, in modality units, with what is needed to place it.
#[derive(Debug, Clone)]
struct Slice {
    series: String,
    cols: usize,
    rows: usize,
    /// Column and row spacing (mm): PixelSpacing is (row spacing, column spacing).
    spacing: [f64; 2],
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    instance: i64,
    thickness: Option<f64>,
    /// One plane of values per frame.
    frames: Vec<Vec<f32>>,
    /// Patient, study and series tags, and this file's (SOP class, SOP instance).
    reference: SeriesReference,
    sop: (String, String),
}

fn bad(name: &str, m: impl std::fmt::Display) -> Error {
    Error::Decode(format!("{name}: {m}"))
}

fn get<'a>(obj: &'a InMemDicomObject, tag: Tag) -> Option<&'a InMemElement> {
    obj.element_opt(tag).ok().flatten()
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    get(obj, tag).and_then(|e| e.to_int::<i64>().ok())
}

fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    get(obj, tag)
        .and_then(|e| e.to_float64().ok())
        .filter(|v| v.is_finite())
}

fn floats<const N: usize>(obj: &InMemDicomObject, tag: Tag) -> Option<[f64; N]> {
    let v = get(obj, tag)?.to_multi_float64().ok()?;
    let a: [f64; N] = v.get(..N)?.try_into().ok()?;
    a.iter().all(|x| x.is_finite()).then_some(a)
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    get(obj, tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| {
            s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string()
        })
        .unwrap_or_default()
}

/// Names of the transfer syntaxes we cannot decode, for the message.
fn syntax_name(uid: &str) -> &'static str {
    match uid {
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "JPEG Lossless",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "JPEG-LS",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "HTJ2K"
        }
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.102" | "1.2.840.10008.1.2.4.103" => {
            "MPEG video"
        }
        _ => "this compressed encoding",
    }
}

/// Reads one DICOM file into its frames (modality values; MONOCHROME1 inverted so that
/// higher is brighter; colour to luma).
fn read_slice(name: &str, bytes: &[u8]) -> Result<Slice> {
    if bytes.is_empty() {
        return Err(bad(name, "the file is empty"));
    }
    let bytes = &bytes[..check_lengths(name, bytes)?];
    let parse = |b: &[u8]| OpenFileOptions::new().from_reader(Cursor::new(b));
    // Some writers pad the file with zeros after the pixel data, which the parser reads as
    // broken elements: then read up to the end of the pixel data only.
    let obj = parse(bytes)
        .or_else(|e| trim_after_pixel_data(bytes).map_or(Err(e), parse))
        .map_err(|e| {
            let mut chain = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                chain = format!("{chain}: {s}");
                src = s.source();
            }
            if chain.contains("fill whole buffer") || chain.contains("nexpected end") {
                bad(name, format!("the file is damaged or truncated ({chain})"))
            } else {
                bad(name, format!("not a readable DICOM file ({e})"))
            }
        })?;
    let syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let obj: &InMemDicomObject = &obj;
    let need = |tag: Tag, what: &str| {
        int(obj, tag)
            .filter(|&v| v > 0)
            .ok_or_else(|| bad(name, format!("no {what} (not an image?)")))
    };
    let (rows, cols) = (
        need(ROWS, "rows")? as usize,
        need(COLUMNS, "columns")? as usize,
    );
    let samples = int(obj, SAMPLES_PER_PIXEL).unwrap_or(1).max(1) as usize;
    let bits = need(BITS_ALLOCATED, "bits allocated")? as usize;
    let stored = int(obj, BITS_STORED)
        .unwrap_or(bits as i64)
        .clamp(1, bits as i64) as u32;
    let signed = int(obj, PIXEL_REPRESENTATION) == Some(1);
    let frames = int(obj, NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    let photometric = text(obj, PHOTOMETRIC);
    let planar = int(obj, PLANAR_CONFIGURATION) == Some(1);
    if !matches!(bits, 8 | 16 | 32) || !matches!(samples, 1 | 3) {
        return Err(bad(
            name,
            format!("{bits}-bit pixels with {samples} samples are not supported"),
        ));
    }
    let n = rows
        .checked_mul(cols)
        .and_then(|p| p.checked_mul(frames))
        .filter(|&v| v <= MAX_VOXELS)
        .ok_or_else(|| {
            Error::Input(format!(
                "{name}: {cols}×{rows}×{frames} pixels is too large (at most {MAX_VOXELS})"
            ))
        })?;
    let pixel = get(obj, PIXEL_DATA).ok_or_else(|| bad(name, "no pixel data"))?;
    let plane = rows * cols;
    // Samples per pixel in `values` (a JPEG frame decodes straight to luma).
    let mut per_pixel = samples;
    let mut values: Vec<f32> = if let Some(fragments) = pixel.value().fragments() {
        let decode = |frag: &[u8]| -> Result<Vec<f32>> {
            match syntax.as_str() {
                "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" => jpeg(name, frag, plane),
                "1.2.840.10008.1.2.5" => rle(name, frag, plane, bits, samples)
                    .map(|raw| samples_of(&raw, bits, stored, signed, plane * samples)),
                uid => Err(bad(
                    name,
                    format!(
                        "{} ({uid}) cannot be decoded here; save the series uncompressed (e.g. `gdcmconv --raw`)",
                        syntax_name(uid)
                    ),
                )),
            }
        };
        // One fragment per frame in practice; several fragments of one frame are joined.
        let per_frame: Vec<Vec<u8>> = if fragments.len() == frames {
            fragments.iter().map(|f| f.to_vec()).collect()
        } else if frames == 1 {
            vec![fragments.concat()]
        } else {
            return Err(bad(
                name,
                format!("{} pixel fragments for {frames} frames", fragments.len()),
            ));
        };
        // Grown as frames decode: the header's size is not trusted with an allocation.
        let mut out = Vec::new();
        for f in &per_frame {
            out.extend(decode(f)?);
        }
        if syntax.starts_with("1.2.840.10008.1.2.4.5") {
            per_pixel = 1;
        }
        out
    } else {
        let raw = pixel
            .value()
            .primitive()
            .ok_or_else(|| bad(name, "unreadable pixel data"))?
            .to_bytes();
        let want = n
            .checked_mul(samples * bits / 8)
            .ok_or_else(|| Error::Input(format!("{name}: the image is too large")))?;
        if raw.len() < want {
            return Err(bad(
                name,
                format!(
                    "the pixel data is truncated ({} of {want} bytes)",
                    raw.len()
                ),
            ));
        }
        samples_of(&raw, bits, stored, signed, n * samples)
    };
    if values.len() != n * per_pixel {
        return Err(bad(name, "the decoded pixels do not match the image size"));
    }
    if per_pixel == 3 {
        values = luma(&values, plane, planar);
    }
    let slope = float(obj, RESCALE_SLOPE).unwrap_or(1.0) as f32;
    let intercept = float(obj, RESCALE_INTERCEPT).unwrap_or(0.0) as f32;
    for v in &mut values {
        *v = *v * slope + intercept;
    }
    if photometric == "MONOCHROME1" {
        let (lo, hi) = values
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        for v in &mut values {
            *v = hi + lo - *v;
        }
    }
    let spacing = floats::<2>(obj, PIXEL_SPACING)
        .filter(|s| s[0] > 0.0 && s[1] > 0.0)
        .map_or([1.0, 1.0], |s| [s[1], s[0]]);
    Ok(Slice {
        series: text(obj, SERIES_UID),
        cols,
        rows,
        spacing,
        position: floats::<3>(obj, IMAGE_POSITION),
        orientation: floats::<6>(obj, IMAGE_ORIENTATION),
        instance: int(obj, INSTANCE_NUMBER).unwrap_or(0),
        thickness: float(obj, SPACING_BETWEEN_SLICES)
            .or_else(|| float(obj, SLICE_THICKNESS))
            .filter(|t| *t > 0.0),
        frames: values.chunks(plane).map(|c| c.to_vec()).collect(),
        reference: SeriesReference {
            patient_name: text(obj, Tag(0x0010, 0x0010)),
            patient_id: text(obj, Tag(0x0010, 0x0020)),
            patient_birth_date: text(obj, Tag(0x0010, 0x0030)),
            patient_sex: text(obj, Tag(0x0010, 0x0040)),
            study_uid: text(obj, Tag(0x0020, 0x000D)),
            study_date: text(obj, Tag(0x0008, 0x0020)),
            study_time: text(obj, Tag(0x0008, 0x0030)),
            study_id: text(obj, Tag(0x0020, 0x0010)),
            accession: text(obj, Tag(0x0008, 0x0050)),
            referring_physician: text(obj, Tag(0x0008, 0x0090)),
            series_uid: text(obj, SERIES_UID),
            frame_of_reference_uid: text(obj, Tag(0x0020, 0x0052)),
            instances: vec![],
            positions: vec![],
        },
        sop: (
            text(obj, Tag(0x0008, 0x0016)),
            text(obj, Tag(0x0008, 0x0018)),
        ),
    })
}

/// The file up to the end of its (little-endian, defined-length) pixel data element.
fn trim_after_pixel_data(bytes: &[u8]) -> Option<&[u8]> {
    let tag = [0xE0, 0x7F, 0x10, 0x00];
    let i = bytes.windows(4).rposition(|w| w == tag)?;
    let end = pixel_data_end(bytes, i)?;
    (end < bytes.len()).then(|| &bytes[..end])
}

/// Where a (little-endian, defined-length) pixel data element whose tag starts at `i` ends,
/// by its header: explicit VR (OB/OW) or implicit.
fn pixel_data_end(bytes: &[u8], i: usize) -> Option<usize> {
    let u32_at = |k: usize| Some(u32::from_le_bytes(bytes.get(k..k + 4)?.try_into().ok()?));
    let (header, len) = match bytes.get(i + 4..i + 6)? {
        b"OB" | b"OW" => (12, u32_at(i + 8)?),
        _ => (8, u32_at(i + 4)?),
    };
    (len != u32::MAX).then(|| (i + header).saturating_add(len as usize))
}

/// The parser allocates an element's declared length before reading it, so a few hostile or
/// truncated bytes could make the tab allocate gigabytes. The elements are walked first, into
/// sequences and their items (explicit or implicit VR, little or big endian), and one that
/// claims more bytes than the file has left is refused, as is an explicit-VR element without a
/// VR before the pixel data. After the pixel data, such an element (zero padding, garbage) ends
/// what the parser is given: the returned length. Not walked: the insides of defined-length
/// sequences in implicit VR (they look like any other value without a dictionary), of
/// undefined-length UN elements (implicit VR inside an explicit data set) and deflated data sets;
/// the walk stops there or skips them whole.
fn check_lengths(name: &str, bytes: &[u8]) -> Result<usize> {
    // Only files with the standard preamble and meta group: the parser refuses the others.
    if !is_dicom(bytes) {
        return Ok(bytes.len());
    }
    let u16_at = |k: usize, be: bool| {
        let b: [u8; 2] = bytes.get(k..k + 2)?.try_into().ok()?;
        Some(if be {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |k: usize, be: bool| {
        let b: [u8; 4] = bytes.get(k..k + 4)?.try_into().ok()?;
        Some(if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let claims = |pos: usize, header: usize, len: u32, group: u16, element: u16| {
        let end = (pos + header).saturating_add(len as usize);
        if end > bytes.len() {
            return Err(bad(
                name,
                format!(
                    "the file is damaged or truncated (element ({group:04X},{element:04X}) claims {len} bytes, {} are left)",
                    bytes.len().saturating_sub(pos + header)
                ),
            ));
        }
        Ok(end)
    };
    let mut pos = 132;
    let (mut big_endian, mut implicit) = (false, false);
    // Inside encapsulated pixel data, items hold compressed bytes, not elements.
    let mut fragments = false;
    let mut pixels_end = None;
    while pos + 8 <= bytes.len() {
        // The file meta group (0002) is always explicit VR little endian.
        let meta = u16_at(pos, false) == Some(0x0002);
        let be = big_endian && !meta;
        let (Some(group), Some(element)) = (u16_at(pos, be), u16_at(pos + 2, be)) else {
            break;
        };
        // Items and delimiters: a tag and a 4-byte length, never a VR.
        if group == 0xFFFE {
            let Some(len) = u32_at(pos + 4, be) else {
                break;
            };
            pos = match element {
                0xE000 if len == u32::MAX => pos + 8,
                // A fragment is skipped; an item of a sequence is walked into.
                0xE000 if fragments => claims(pos, 8, len, group, element)?,
                0xE000 => {
                    claims(pos, 8, len, group, element)?;
                    pos + 8
                }
                _ => {
                    if element == 0xE0DD && fragments {
                        fragments = false;
                        pixels_end = Some(pos + 8);
                    }
                    pos + 8
                }
            };
            continue;
        }
        let vr = &bytes[pos + 4..pos + 6];
        let explicit = meta || !implicit;
        if explicit && !vr.iter().all(|c| c.is_ascii_uppercase()) {
            return match pixels_end {
                Some(end) => Ok(end),
                None => Err(bad(
                    name,
                    format!(
                        "the file is damaged (element ({group:04X},{element:04X}) at byte {pos} has no value representation)"
                    ),
                )),
            };
        }
        let (header, len) = if !explicit {
            (8, u32_at(pos + 4, be))
        } else if matches!(
            vr,
            b"OB"
                | b"OD"
                | b"OF"
                | b"OL"
                | b"OV"
                | b"OW"
                | b"SQ"
                | b"SV"
                | b"UC"
                | b"UN"
                | b"UR"
                | b"UT"
                | b"UV"
        ) {
            (12, u32_at(pos + 8, be))
        } else {
            (8, u16_at(pos + 6, be).map(u32::from))
        };
        let Some(len) = len else {
            break;
        };
        if len == u32::MAX {
            // Undefined length: a sequence's items or pixel data's fragments follow.
            if explicit && vr == b"UN" {
                break;
            }
            fragments = (group, element) == (0x7FE0, 0x0010);
            pos += header;
            continue;
        }
        let end = claims(pos, header, len, group, element)?;
        if (group, element) == (0x7FE0, 0x0010) {
            pixels_end = Some(end);
        }
        if explicit && vr == b"SQ" {
            pos += header;
            continue;
        }
        if (group, element) == (0x0002, 0x0010) {
            let ts = &bytes[pos + header..end];
            let is = |uid: &[u8]| {
                ts.starts_with(uid)
                    && !ts
                        .get(uid.len())
                        .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
            };
            // A deflated data set cannot be walked as bytes.
            if is(b"1.2.840.10008.1.2.1.99") {
                return Ok(bytes.len());
            }
            big_endian = is(b"1.2.840.10008.1.2.2");
            implicit = is(b"1.2.840.10008.1.2");
        }
        pos = end;
    }
    Ok(bytes.len())
}

/// Native samples (little-endian as dicom-rs hands them over) to values.
fn samples_of(raw: &[u8], bits: usize, stored: u32, signed: bool, count: usize) -> Vec<f32> {
    let extend = |v: u32| -> f32 {
        let v = if stored < 32 {
            v & ((1u32 << stored) - 1)
        } else {
            v
        };
        if signed && stored < 32 && v >> (stored - 1) & 1 == 1 {
            (v as i64 - (1i64 << stored)) as f32
        } else if signed && stored == 32 {
            v as i32 as f32
        } else {
            v as f32
        }
    };
    match bits {
        8 => raw[..count].iter().map(|&b| extend(b as u32)).collect(),
        16 => raw
            .chunks_exact(2)
            .take(count)
            .map(|c| extend(u16::from_le_bytes([c[0], c[1]]) as u32))
            .collect(),
        _ => raw
            .chunks_exact(4)
            .take(count)
            .map(|c| extend(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    }
}

/// Rec. 601 luma of RGB samples, interleaved (RGBRGB…) or planar (RR…GG…BB…), per frame.
fn luma(v: &[f32], plane: usize, planar: bool) -> Vec<f32> {
    v.chunks(plane * 3)
        .flat_map(|f| {
            (0..plane).map(move |i| {
                let (r, g, b) = if planar {
                    (f[i], f[plane + i], f[2 * plane + i])
                } else {
                    (f[3 * i], f[3 * i + 1], f[3 * i + 2])
                };
                0.299 * r + 0.587 * g + 0.114 * b
            })
        })
        .collect()
}

/// An encapsulated JPEG frame (baseline or extended, 8-bit) as luma values.
fn jpeg(name: &str, frag: &[u8], plane: usize) -> Result<Vec<f32>> {
    let img = image::load_from_memory_with_format(frag, image::ImageFormat::Jpeg)
        .map_err(|e| bad(name, format!("the JPEG pixel data cannot be decoded ({e})")))?;
    let g = img.to_luma8();
    if g.len() != plane {
        return Err(bad(name, "the JPEG frame does not match the image size"));
    }
    Ok(g.into_raw().into_iter().map(f32::from).collect())
}

/// An RLE Lossless frame (DICOM PS3.5 annex G: a 64-byte header of segment offsets, one
/// PackBits segment per byte of each sample, most significant first) as little-endian samples
/// interleaved per pixel.
fn rle(name: &str, frag: &[u8], plane: usize, bits: usize, samples: usize) -> Result<Vec<u8>> {
    let err = |m: &str| bad(name, format!("the RLE pixel data is damaged ({m})"));
    if frag.len() < 64 {
        return Err(err("no header"));
    }
    let word = |i: usize| u32::from_le_bytes(frag[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
    let count = word(0);
    let bytes_per = bits / 8;
    if count != bytes_per * samples {
        return Err(err("wrong number of segments"));
    }
    let segment = |seg: usize| {
        let start = word(seg + 1);
        let end = if seg + 1 < count {
            word(seg + 2)
        } else {
            frag.len()
        };
        frag.get(start..end)
            .ok_or_else(|| err("segment outside the data"))
    };
    // PackBits expands at most 64× (2 bytes → 128): a segment too short for the plane is
    // refused before anything the size of the image is allocated.
    for seg in 0..count {
        if segment(seg)?.len().saturating_mul(64) < plane {
            return Err(err("a segment is too short for the image"));
        }
    }
    let mut out = vec![0u8; plane * samples * bytes_per];
    for seg in 0..count {
        let data = segment(seg)?;
        let (sample, byte) = (seg / bytes_per, bytes_per - 1 - seg % bytes_per);
        let mut decoded = Vec::with_capacity(plane);
        let mut i = 0;
        while decoded.len() < plane && i < data.len() {
            let h = data[i] as i8;
            i += 1;
            if h >= 0 {
                let n = h as usize + 1;
                decoded
                    .extend_from_slice(data.get(i..i + n).ok_or_else(|| err("short literal run"))?);
                i += n;
            } else if h != -128 {
                let v = *data.get(i).ok_or_else(|| err("short repeat run"))?;
                decoded.extend(std::iter::repeat_n(v, (1 - h as isize) as usize));
                i += 1;
            }
        }
        if decoded.len() < plane {
            return Err(err("a segment is short"));
        }
        for (p, &v) in decoded[..plane].iter().enumerate() {
            out[(p * samples + sample) * bytes_per + byte] = v;
        }
    }
    Ok(out)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// A series read into a volume, with notes on what was left out or looks wrong.
#[derive(Debug)]
pub struct Series {
    pub volume: Volume,
    pub notes: Vec<String>,
    /// What a DICOM SEG of this volume refers to.
    pub reference: SeriesReference,
}

/// Reads DICOM files (one file, a multi-frame file, or a series) into one volume. Files that
/// cannot be read, files of other series and images of another size are left out and named
/// in `notes`; gaps in slice positions (missing slices) are reported too.
pub fn read_series(files: &[(String, Vec<u8>)]) -> Result<Series> {
    let mut notes = vec![];
    let mut slices = vec![];
    let mut errors = vec![];
    for (name, bytes) in files {
        match read_slice(name, bytes) {
            Ok(s) => slices.push(s),
            Err(e) => errors.push(e),
        }
    }
    if slices.is_empty() {
        return Err(match errors.len() {
            1 => errors.remove(0),
            _ => Error::Decode(format!(
                "none of the {} files is a readable DICOM image ({})",
                files.len(),
                errors.first().map(|e| e.to_string()).unwrap_or_default()
            )),
        });
    }
    if !errors.is_empty() {
        notes.push(format!(
            "{} unreadable file(s) left out: {}",
            errors.len(),
            errors
                .iter()
                .take(3)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    // The largest series, and in it the most common image size.
    let mut counts: Vec<(String, usize, usize, usize)> = vec![];
    for s in &slices {
        match counts
            .iter_mut()
            .find(|c| (c.0.as_str(), c.1, c.2) == (s.series.as_str(), s.cols, s.rows))
        {
            Some(c) => c.3 += 1,
            None => counts.push((s.series.clone(), s.cols, s.rows, 1)),
        }
    }
    let (series, cols, rows, _) = counts.iter().max_by_key(|c| c.3).cloned().unwrap();
    let others = slices
        .iter()
        .filter(|s| (s.series.as_str(), s.cols, s.rows) != (series.as_str(), cols, rows))
        .count();
    if others > 0 {
        notes.push(format!(
            "{others} file(s) of another series or image size left out"
        ));
    }
    slices.retain(|s| (s.series.as_str(), s.cols, s.rows) == (series.as_str(), cols, rows));

    let orientation = slices[0]
        .orientation
        .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let (row_dir, col_dir) = (
        [orientation[0], orientation[1], orientation[2]],
        [orientation[3], orientation[4], orientation[5]],
    );
    let normal = cross(row_dir, col_dir);
    let located = slices.iter().all(|s| s.position.is_some());
    if located {
        slices.sort_by(|a, b| {
            dot(a.position.unwrap(), normal).total_cmp(&dot(b.position.unwrap(), normal))
        });
    } else {
        slices.sort_by_key(|s| s.instance);
    }
    let depth: usize = slices.iter().map(|s| s.frames.len()).sum();
    // Spacing along the normal: the median step between slice positions.
    let steps: Vec<f64> = if located && slices.len() > 1 {
        slices
            .windows(2)
            .map(|w| dot(w[1].position.unwrap(), normal) - dot(w[0].position.unwrap(), normal))
            .collect()
    } else {
        vec![]
    };
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let step = sorted.get(sorted.len() / 2).copied().filter(|s| *s > 1e-6);
    if let Some(step) = step {
        if let Some(k) = steps.iter().position(|s| *s > 1.5 * step) {
            notes.push(format!(
                "slices may be missing: a gap of {:.2} mm after slice {} (usual step {step:.2} mm)",
                steps[k],
                k + 1
            ));
        }
        if steps.iter().any(|s| *s < 1e-6) {
            notes.push("some slices share a position (duplicates?)".into());
        }
    }
    let z_spacing = step.or(slices[0].thickness).unwrap_or(1.0);
    let mut data = Vec::with_capacity(cols * rows * depth);
    for s in &slices {
        for f in &s.frames {
            data.extend_from_slice(f);
        }
    }
    let first = &slices[0];
    let mut reference = first.reference.clone();
    // One entry per slice of the volume (a multi-frame file's frames share its instance).
    reference.instances = slices
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.sop.clone(), s.frames.len()))
        .collect();
    if slices.iter().all(|s| s.frames.len() == 1) {
        reference.positions = slices.iter().filter_map(|s| s.position).collect();
    }
    Ok(Series {
        reference,
        volume: Volume {
            size: [cols, rows, depth],
            spacing: [first.spacing[0], first.spacing[1], z_spacing],
            origin: first.position.unwrap_or([0.0; 3]),
            direction: [row_dir, col_dir, normal],
            data,
        },
        notes,
    })
}
