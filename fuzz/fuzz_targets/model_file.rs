//! Our model file (header, tensor table, int8 payload).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medseg::weights::model_file::read_header(data);
    for arch in ["litemedsam", "universeg_v1", "genseg"] {
        let _ = medseg::weights::model_file::read(data, arch);
    }
});
