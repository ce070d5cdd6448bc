//! Pure burn models, backend-agnostic (the device decides): no files, no pages, no pixels.

pub mod cpu;
pub mod nn;
pub mod sam;
pub mod universeg;
