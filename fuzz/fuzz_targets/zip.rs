//! Zip archives (pair imports, autosave records).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medseg::archive::read_zip(data);
});
