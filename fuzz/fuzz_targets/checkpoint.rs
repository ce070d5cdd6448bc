//! PyTorch checkpoints (zip + pickle + storages), read without Python.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medseg::weights::torch::read_state_dict(data);
});
