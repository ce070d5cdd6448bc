//! DICOM files, alone and as a series of two (the second a prefix of the first).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let one = vec![("a.dcm".to_string(), data.to_vec())];
    let _ = medseg::imaging::dicom::read_series(&one);
    let two = vec![one[0].clone(), ("b.dcm".to_string(), data[..data.len() / 2].to_vec())];
    let _ = medseg::imaging::dicom::read_series(&two);
});
