//! NRRD and NIfTI (plain or gzip) volumes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medseg::imaging::volume::read_volume(data);
});
