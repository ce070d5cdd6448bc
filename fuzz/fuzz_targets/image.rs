//! PNG/JPEG decoding (the viewer, support pairs): any bytes give an image or an error.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medseg::imaging::decode::decode_image(data);
});
