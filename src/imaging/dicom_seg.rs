//! DICOM Segmentation (SEG) export: a label volume as one binary SEG object, one segment per
//! label, a bit-packed frame per segment and slice that holds it, placed by its own image
//! position in the scan's frame of reference (so PACS viewers and 3D Slicer overlay it). From a
//! DICOM series the SEG joins the scan's study (patient and study tags copied, the series'
//! instances referenced); from NRRD/NIfTI it starts a study of its own.

use super::volume::Volume;
use crate::{Error, Result};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR, dicom_value};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject, Tag};
use sha2::{Digest, Sha256};

pub const SEG_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.66.4";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// The scan a SEG refers to: what a DICOM series tells about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesReference {
    pub patient_name: String,
    pub patient_id: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_uid: String,
    pub study_date: String,
    pub study_time: String,
    pub study_id: String,
    pub accession: String,
    pub referring_physician: String,
    pub series_uid: String,
    pub frame_of_reference_uid: String,
    /// (SOP class, SOP instance) of each slice of the volume (a multi-frame file's frames
    /// share one).
    pub instances: Vec<(String, String)>,
    /// Each slice's own image position (LPS, mm) where every file gave one, else empty: the
    /// SEG's frames sit exactly on their source slices even where the spacing is uneven.
    pub positions: Vec<[f64; 3]>,
}

/// `labels` (one byte per voxel of `geometry`, x fastest; value k = segment k) as a DICOM SEG
/// file; `names[k - 1]` names segment k. `reference`: the DICOM series the labels were drawn on.
pub fn write_seg(
    geometry: &Volume,
    labels: &[u8],
    names: &[String],
    reference: Option<&SeriesReference>,
) -> Result<Vec<u8>> {
    let [w, h, d] = geometry.size;
    let plane = w * h;
    if labels.len() != plane * d || plane == 0 {
        return Err(Error::Input(format!(
            "{} labels for a {w}×{h}×{d} volume",
            labels.len()
        )));
    }
    if w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(Error::Input(format!(
            "{w}×{h} slices are too large for DICOM"
        )));
    }
    let top = labels.iter().copied().max().unwrap_or(0) as usize;
    if top == 0 {
        return Err(Error::Input(
            "there is nothing to export: no slice has a mask".into(),
        ));
    }
    let segments = top.max(names.len()).min(255);
    let (date, time) = now_utc();
    let mut uids = Uids::new(labels, &format!("{date}{time}"));
    let own = SeriesReference {
        study_uid: uids.next(),
        frame_of_reference_uid: uids.next(),
        ..Default::default()
    };
    let src = reference.unwrap_or(&own);

    // One frame per (segment, slice holding it), segment-major as the dimension index says.
    let mut frames: Vec<(usize, usize)> = vec![];
    for s in 1..=segments {
        for z in 0..d {
            if labels[z * plane..(z + 1) * plane]
                .iter()
                .any(|&l| l as usize == s)
            {
                frames.push((s, z));
            }
        }
    }
    let mut bits = vec![0u8; (frames.len() * plane).div_ceil(8).next_multiple_of(2)];
    for (f, &(s, z)) in frames.iter().enumerate() {
        for (i, &l) in labels[z * plane..(z + 1) * plane].iter().enumerate() {
            if l as usize == s {
                let bit = f * plane + i;
                bits[bit / 8] |= 1 << (bit % 8);
            }
        }
    }

    let position = |z: usize| -> [f64; 3] {
        match reference
            .and_then(|r| r.positions.get(z))
            .filter(|_| src.positions.len() == d)
        {
            Some(&p) => p,
            None => std::array::from_fn(|a| {
                geometry.origin[a] + geometry.direction[2][a] * geometry.spacing[2] * z as f64
            }),
        }
    };
    let orientation: Vec<String> = geometry.direction[0]
        .iter()
        .chain(&geometry.direction[1])
        .map(|&v| ds(v))
        .collect();
    let sop_instance = uids.next();
    let series_uid = uids.next();

    let mut o = InMemDicomObject::new_empty();
    let put = |o: &mut InMemDicomObject, tag: (u16, u16), vr: VR, v: PrimitiveValue| {
        o.put(DataElement::new(Tag(tag.0, tag.1), vr, v));
    };
    put(
        &mut o,
        (0x0008, 0x0005),
        VR::CS,
        dicom_value!(Str, "ISO_IR 192"),
    );
    put(
        &mut o,
        (0x0008, 0x0008),
        VR::CS,
        dicom_value!(Strs, ["DERIVED", "PRIMARY"]),
    );
    put(
        &mut o,
        (0x0008, 0x0016),
        VR::UI,
        dicom_value!(Str, SEG_SOP_CLASS),
    );
    put(
        &mut o,
        (0x0008, 0x0018),
        VR::UI,
        dicom_value!(Str, sop_instance.as_str()),
    );
    put(
        &mut o,
        (0x0008, 0x0020),
        VR::DA,
        dicom_value!(Str, src.study_date.as_str()),
    );
    put(
        &mut o,
        (0x0008, 0x0023),
        VR::DA,
        dicom_value!(Str, date.as_str()),
    );
    put(
        &mut o,
        (0x0008, 0x0030),
        VR::TM,
        dicom_value!(Str, src.study_time.as_str()),
    );
    put(
        &mut o,
        (0x0008, 0x0033),
        VR::TM,
        dicom_value!(Str, time.as_str()),
    );
    put(
        &mut o,
        (0x0008, 0x0050),
        VR::SH,
        dicom_value!(Str, src.accession.as_str()),
    );
    put(&mut o, (0x0008, 0x0060), VR::CS, dicom_value!(Str, "SEG"));
    put(
        &mut o,
        (0x0008, 0x0070),
        VR::LO,
        dicom_value!(Str, "medseg"),
    );
    put(
        &mut o,
        (0x0008, 0x0090),
        VR::PN,
        dicom_value!(Str, src.referring_physician.as_str()),
    );
    put(
        &mut o,
        (0x0008, 0x103E),
        VR::LO,
        dicom_value!(Str, "medseg segmentation"),
    );
    put(
        &mut o,
        (0x0008, 0x1090),
        VR::LO,
        dicom_value!(Str, "medseg"),
    );
    put(
        &mut o,
        (0x0010, 0x0010),
        VR::PN,
        dicom_value!(Str, src.patient_name.as_str()),
    );
    put(
        &mut o,
        (0x0010, 0x0020),
        VR::LO,
        dicom_value!(Str, src.patient_id.as_str()),
    );
    put(
        &mut o,
        (0x0010, 0x0030),
        VR::DA,
        dicom_value!(Str, src.patient_birth_date.as_str()),
    );
    put(
        &mut o,
        (0x0010, 0x0040),
        VR::CS,
        dicom_value!(Str, src.patient_sex.as_str()),
    );
    put(&mut o, (0x0018, 0x1000), VR::LO, dicom_value!(Str, "1"));
    put(
        &mut o,
        (0x0018, 0x1020),
        VR::LO,
        dicom_value!(Str, env!("CARGO_PKG_VERSION")),
    );
    put(
        &mut o,
        (0x0020, 0x000D),
        VR::UI,
        dicom_value!(Str, src.study_uid.as_str()),
    );
    put(
        &mut o,
        (0x0020, 0x000E),
        VR::UI,
        dicom_value!(Str, series_uid.as_str()),
    );
    put(
        &mut o,
        (0x0020, 0x0010),
        VR::SH,
        dicom_value!(Str, src.study_id.as_str()),
    );
    put(&mut o, (0x0020, 0x0011), VR::IS, dicom_value!(Str, "901"));
    put(&mut o, (0x0020, 0x0013), VR::IS, dicom_value!(Str, "1"));
    put(
        &mut o,
        (0x0020, 0x0052),
        VR::UI,
        dicom_value!(Str, src.frame_of_reference_uid.as_str()),
    );
    put(&mut o, (0x0020, 0x1040), VR::LO, PrimitiveValue::Empty);
    put(&mut o, (0x0028, 0x0002), VR::US, dicom_value!(U16, 1));
    put(
        &mut o,
        (0x0028, 0x0004),
        VR::CS,
        dicom_value!(Str, "MONOCHROME2"),
    );
    put(
        &mut o,
        (0x0028, 0x0008),
        VR::IS,
        dicom_value!(Str, frames.len().to_string()),
    );
    put(
        &mut o,
        (0x0028, 0x0010),
        VR::US,
        dicom_value!(U16, h as u16),
    );
    put(
        &mut o,
        (0x0028, 0x0011),
        VR::US,
        dicom_value!(U16, w as u16),
    );
    put(&mut o, (0x0028, 0x0100), VR::US, dicom_value!(U16, 1));
    put(&mut o, (0x0028, 0x0101), VR::US, dicom_value!(U16, 1));
    put(&mut o, (0x0028, 0x0102), VR::US, dicom_value!(U16, 0));
    put(&mut o, (0x0028, 0x0103), VR::US, dicom_value!(U16, 0));
    put(&mut o, (0x0028, 0x2110), VR::CS, dicom_value!(Str, "00"));
    put(
        &mut o,
        (0x0062, 0x0001),
        VR::CS,
        dicom_value!(Str, "BINARY"),
    );
    put(
        &mut o,
        (0x0070, 0x0080),
        VR::CS,
        dicom_value!(Str, "MEDSEG"),
    );
    put(
        &mut o,
        (0x0070, 0x0081),
        VR::LO,
        dicom_value!(Str, "Segmentation made with medseg"),
    );
    put(&mut o, (0x0070, 0x0084), VR::PN, PrimitiveValue::Empty);

    // Segment descriptions: what each label is (generic tissue codes, the user's name).
    let code = |value: &str, meaning: &str| {
        let mut c = InMemDicomObject::new_empty();
        c.put(DataElement::new(
            Tag(0x0008, 0x0100),
            VR::SH,
            dicom_value!(Str, value),
        ));
        c.put(DataElement::new(
            Tag(0x0008, 0x0102),
            VR::SH,
            dicom_value!(Str, "SCT"),
        ));
        c.put(DataElement::new(
            Tag(0x0008, 0x0104),
            VR::LO,
            dicom_value!(Str, meaning),
        ));
        c
    };
    let segment_items: Vec<InMemDicomObject> = (1..=segments)
        .map(|s| {
            let name = names
                .get(s - 1)
                .filter(|n| !n.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| format!("Object {s}"));
            let mut it = InMemDicomObject::new_empty();
            seq(&mut it, (0x0062, 0x0003), vec![code("85756007", "Tissue")]);
            it.put(DataElement::new(
                Tag(0x0062, 0x0004),
                VR::US,
                dicom_value!(U16, s as u16),
            ));
            it.put(DataElement::new(
                Tag(0x0062, 0x0005),
                VR::LO,
                dicom_value!(Str, lo(&name)),
            ));
            it.put(DataElement::new(
                Tag(0x0062, 0x0008),
                VR::CS,
                dicom_value!(Str, "SEMIAUTOMATIC"),
            ));
            it.put(DataElement::new(
                Tag(0x0062, 0x0009),
                VR::LO,
                dicom_value!(Str, "MedSAM (medseg)"),
            ));
            seq(&mut it, (0x0062, 0x000F), vec![code("85756007", "Tissue")]);
            it
        })
        .collect();
    seq(&mut o, (0x0062, 0x0002), segment_items);

    // Dimensions: segment number, then the frame's position.
    let dim_org = uids.next();
    let mut org = InMemDicomObject::new_empty();
    org.put(DataElement::new(
        Tag(0x0020, 0x9164),
        VR::UI,
        dicom_value!(Str, dim_org.as_str()),
    ));
    seq(&mut o, (0x0020, 0x9221), vec![org]);
    let dim = |pointer: Tag, group: Tag, label: &str| {
        let mut it = InMemDicomObject::new_empty();
        it.put(DataElement::new(
            Tag(0x0020, 0x9164),
            VR::UI,
            dicom_value!(Str, dim_org.as_str()),
        ));
        it.put(DataElement::new(
            Tag(0x0020, 0x9165),
            VR::AT,
            dicom_value!(Tags, [pointer]),
        ));
        it.put(DataElement::new(
            Tag(0x0020, 0x9167),
            VR::AT,
            dicom_value!(Tags, [group]),
        ));
        it.put(DataElement::new(
            Tag(0x0020, 0x9421),
            VR::LO,
            dicom_value!(Str, label),
        ));
        it
    };
    seq(
        &mut o,
        (0x0020, 0x9222),
        vec![
            dim(
                Tag(0x0062, 0x000B),
                Tag(0x0062, 0x000A),
                "ReferencedSegmentNumber",
            ),
            dim(
                Tag(0x0020, 0x0032),
                Tag(0x0020, 0x9113),
                "ImagePositionPatient",
            ),
        ],
    );

    // Shared by every frame: orientation and voxel size.
    let mut measures = InMemDicomObject::new_empty();
    measures.put(DataElement::new(
        Tag(0x0018, 0x0050),
        VR::DS,
        dicom_value!(Str, ds(geometry.spacing[2])),
    ));
    measures.put(DataElement::new(
        Tag(0x0018, 0x0088),
        VR::DS,
        dicom_value!(Str, ds(geometry.spacing[2])),
    ));
    // PixelSpacing is (between rows, between columns).
    measures.put(DataElement::new(
        Tag(0x0028, 0x0030),
        VR::DS,
        PrimitiveValue::Strs([ds(geometry.spacing[1]), ds(geometry.spacing[0])].into()),
    ));
    let mut orient = InMemDicomObject::new_empty();
    orient.put(DataElement::new(
        Tag(0x0020, 0x0037),
        VR::DS,
        PrimitiveValue::Strs(orientation.into()),
    ));
    let mut shared = InMemDicomObject::new_empty();
    seq(&mut shared, (0x0028, 0x9110), vec![measures]);
    seq(&mut shared, (0x0020, 0x9116), vec![orient]);
    seq(&mut o, (0x5200, 0x9229), vec![shared]);

    // Per frame: its dimension index, position, segment and (from DICOM) source slice.
    let mut positions: Vec<usize> = frames.iter().map(|f| f.1).collect();
    positions.sort_unstable();
    positions.dedup();
    let per_frame: Vec<InMemDicomObject> = frames
        .iter()
        .map(|&(s, z)| {
            let mut it = InMemDicomObject::new_empty();
            let index = positions.binary_search(&z).expect("a frame's slice") as u32 + 1;
            let mut content = InMemDicomObject::new_empty();
            content.put(DataElement::new(
                Tag(0x0020, 0x9157),
                VR::UL,
                PrimitiveValue::U32([s as u32, index].into()),
            ));
            seq(&mut it, (0x0020, 0x9111), vec![content]);
            let mut pos = InMemDicomObject::new_empty();
            pos.put(DataElement::new(
                Tag(0x0020, 0x0032),
                VR::DS,
                PrimitiveValue::Strs(position(z).iter().map(|&v| ds(v)).collect()),
            ));
            seq(&mut it, (0x0020, 0x9113), vec![pos]);
            let mut ident = InMemDicomObject::new_empty();
            ident.put(DataElement::new(
                Tag(0x0062, 0x000B),
                VR::US,
                dicom_value!(U16, s as u16),
            ));
            seq(&mut it, (0x0062, 0x000A), vec![ident]);
            if let Some((class, instance)) = reference.and_then(|r| r.instances.get(z)) {
                let mut source = InMemDicomObject::new_empty();
                source.put(DataElement::new(
                    Tag(0x0008, 0x1150),
                    VR::UI,
                    dicom_value!(Str, class.as_str()),
                ));
                source.put(DataElement::new(
                    Tag(0x0008, 0x1155),
                    VR::UI,
                    dicom_value!(Str, instance.as_str()),
                ));
                let mut purpose = code("121322", "Source image for image processing operation");
                purpose.put(DataElement::new(
                    Tag(0x0008, 0x0102),
                    VR::SH,
                    dicom_value!(Str, "DCM"),
                ));
                seq(&mut source, (0x0040, 0xA170), vec![purpose]);
                let mut derivation = InMemDicomObject::new_empty();
                seq(&mut derivation, (0x0008, 0x2112), vec![source]);
                let mut how = code("113076", "Segmentation");
                how.put(DataElement::new(
                    Tag(0x0008, 0x0102),
                    VR::SH,
                    dicom_value!(Str, "DCM"),
                ));
                seq(&mut derivation, (0x0008, 0x9215), vec![how]);
                seq(&mut it, (0x0008, 0x9124), vec![derivation]);
            }
            it
        })
        .collect();
    seq(&mut o, (0x5200, 0x9230), per_frame);

    // The series the labels were drawn on.
    if let Some(r) = reference.filter(|r| !r.instances.is_empty()) {
        let refs: Vec<InMemDicomObject> = r
            .instances
            .iter()
            .map(|(class, instance)| {
                let mut it = InMemDicomObject::new_empty();
                it.put(DataElement::new(
                    Tag(0x0008, 0x1150),
                    VR::UI,
                    dicom_value!(Str, class.as_str()),
                ));
                it.put(DataElement::new(
                    Tag(0x0008, 0x1155),
                    VR::UI,
                    dicom_value!(Str, instance.as_str()),
                ));
                it
            })
            .collect();
        let mut series = InMemDicomObject::new_empty();
        seq(&mut series, (0x0008, 0x114A), refs);
        series.put(DataElement::new(
            Tag(0x0020, 0x000E),
            VR::UI,
            dicom_value!(Str, r.series_uid.as_str()),
        ));
        seq(&mut o, (0x0008, 0x1115), vec![series]);
    }

    o.put(DataElement::new(
        Tag(0x7FE0, 0x0010),
        VR::OB,
        PrimitiveValue::U8(bits.into()),
    ));

    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .media_storage_sop_class_uid(SEG_SOP_CLASS)
        .media_storage_sop_instance_uid(sop_instance.as_str());
    let file = o
        .with_meta(meta)
        .map_err(|e| Error::Input(format!("DICOM SEG header: {e}")))?;
    let mut out = vec![];
    file.write_all(&mut out)
        .map_err(|e| Error::Input(format!("writing the DICOM SEG: {e}")))?;
    Ok(out)
}

fn seq(o: &mut InMemDicomObject, tag: (u16, u16), items: Vec<InMemDicomObject>) {
    o.put(DataElement::new(
        Tag(tag.0, tag.1),
        VR::SQ,
        DataSetSequence::from(items),
    ));
}

/// A decimal string (DS): at most 16 characters.
fn ds(v: f64) -> String {
    for digits in (0..=10).rev() {
        let s = format!("{v:.digits$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        let s = if s == "-0" { "0".to_string() } else { s };
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.3e}")
}

/// A long string (LO): at most 64 characters, no backslash (the value separator).
fn lo(s: &str) -> String {
    s.replace('\\', "/").chars().take(64).collect()
}

/// Fresh UIDs under the `2.25` root (a UUID-sized number), from a digest of what is exported
/// and when: no two exports share one.
struct Uids {
    seed: [u8; 32],
    n: u32,
}

impl Uids {
    fn new(labels: &[u8], when: &str) -> Self {
        let mut h = Sha256::new();
        h.update(when.as_bytes());
        h.update(clock_nanos().to_le_bytes());
        h.update(labels);
        Uids {
            seed: h.finalize().into(),
            n: 0,
        }
    }

    fn next(&mut self) -> String {
        self.n += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.n.to_le_bytes());
        let d = h.finalize();
        let v = u128::from_le_bytes(d[..16].try_into().expect("16 bytes"));
        format!("2.25.{v}")
    }
}

#[cfg(target_family = "wasm")]
fn clock_nanos() -> u128 {
    (js_sys::Date::now() * 1e6) as u128
}

#[cfg(not(target_family = "wasm"))]
fn clock_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Today's date (`YYYYMMDD`) and the time (`HHMMSS`), UTC.
fn now_utc() -> (String, String) {
    let secs = (clock_nanos() / 1_000_000_000) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    (
        format!("{year:04}{month:02}{day:02}"),
        format!("{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.5), "0.5");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(1.0), "1");
        assert_eq!(ds(-123.456789012345), "-123.4567890123");
        assert!(ds(-123456789.123456789).len() <= 16);
        assert_eq!(ds(2.0f64.sqrt()), "1.4142135624");
    }
}
