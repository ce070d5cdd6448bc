//! Hostile DICOM lengths must not reach the parser's allocations: dicom-rs allocates an element's
//! declared length before reading it (in a tab, a failed multi-GB allocation kills the page).
//! This binary counts the largest single allocation the reader asks for.

mod common;

use common::*;
use medseg::imaging::dicom::read_series;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Largest;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        LARGEST.fetch_max(size, Relaxed);
        unsafe { System.realloc(p, l, size) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

/// Reads `bytes` as one DICOM file; the result and the largest allocation meanwhile.
fn read(name: &str, bytes: Vec<u8>) -> (medseg::Result<f64>, usize) {
    LARGEST.store(0, Relaxed);
    let r =
        read_series(&[(name.into(), bytes)]).map(|s| s.volume.data.iter().map(|&v| v as f64).sum());
    (r, LARGEST.load(Relaxed))
}

#[test]
fn hostile_lengths_never_become_allocations() {
    const LIMIT: usize = 32 << 20;
    let (_, ct) = dicom_file("pydicom/CT_small.dcm");
    let (sum, _) = read("ct.dcm", ct.clone());
    assert_eq!(sum.unwrap(), -1_950_906.0);

    // Zero padding after the pixel data, then garbage claiming 4 GB (found by fuzzing): the
    // image still opens, and the garbage is never parsed.
    let mut padded = ct.clone();
    padded.extend([0u8; 96]);
    padded.extend(b"\x0a\x00\xfe\x00\x04\x00\x01\x00");
    padded.extend(0xFFFF_FFF0u32.to_le_bytes());
    padded.extend([7u8; 40]);
    let (sum, largest) = read("padded.dcm", padded);
    assert_eq!(sum.unwrap(), -1_950_906.0);
    assert!(largest < LIMIT, "a {largest}-byte allocation");

    // A 3 GB element inside a sequence's item, before the pixel data: refused.
    let at = ct
        .windows(6)
        .position(|w| w == b"\x08\x00\x08\x00CS")
        .unwrap();
    let mut nested = ct[..at].to_vec();
    nested.extend(b"\x08\x00\x40\x11SQ\0\0\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF");
    nested.extend(b"\x09\x00\x01\x10OB\0\0");
    nested.extend(0xC000_0000u32.to_le_bytes());
    nested.extend(&ct[at..]);
    let (r, largest) = read("nested.dcm", nested);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("(0009,1001) claims 3221225472 bytes"), "{e}");
    assert!(largest < LIMIT, "a {largest}-byte allocation");

    // An element without a VR before the pixel data: refused, not parsed.
    let mut novr = ct.clone();
    novr[at + 4..at + 6].copy_from_slice(b"\x01\x02");
    let (r, largest) = read("novr.dcm", novr);
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("novr.dcm: the file is damaged (element (0008,0008)"),
        "{e}"
    );
    assert!(largest < LIMIT, "a {largest}-byte allocation");
}
