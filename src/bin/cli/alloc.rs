//! The CLI's global allocator: mimalloc, plus a few big blocks kept for reuse.
//!
//! burn-flex allocates a fresh buffer for every op's output. Blocks over 32 MiB (LiteMedSAM's
//! stage 0 works on 256 channels at 256×256, 64 MiB a tensor) bypass mimalloc's arenas and go
//! straight to the OS, so each one comes back as newly mapped pages the kernel must zero on first
//! touch: 14 % of an encode in `perf`. The same shapes recur every block and every encode, so
//! freed big blocks wait here for the next request of exactly their size and alignment.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;

use mimalloc::MiMalloc;

/// Blocks at least this big are cached (mimalloc's own limit for arena blocks).
const BIG: usize = 32 << 20;
/// At most this many cached blocks, and at most this many bytes in them.
const SLOTS: usize = 8;
const MAX_CACHED_BYTES: usize = 1 << 30;

pub struct CachingAlloc {
    cache: Mutex<Cache>,
}

struct Cache {
    blocks: [Option<(usize, Layout)>; SLOTS],
    bytes: usize,
}

impl CachingAlloc {
    pub const fn new() -> Self {
        CachingAlloc {
            cache: Mutex::new(Cache {
                blocks: [None; SLOTS],
                bytes: 0,
            }),
        }
    }

    fn take(&self, layout: Layout) -> Option<*mut u8> {
        let mut c = self.cache.lock().ok()?;
        let slot = c
            .blocks
            .iter()
            .position(|b| matches!(b, Some((_, l)) if *l == layout))?;
        let (ptr, _) = c.blocks[slot].take()?;
        c.bytes -= layout.size();
        Some(ptr as *mut u8)
    }

    /// Keeps the block if there is room; false when the caller must free it.
    fn keep(&self, ptr: *mut u8, layout: Layout) -> bool {
        let Ok(mut c) = self.cache.lock() else {
            return false;
        };
        if c.bytes + layout.size() > MAX_CACHED_BYTES {
            return false;
        }
        let Some(slot) = c.blocks.iter().position(Option::is_none) else {
            return false;
        };
        c.blocks[slot] = Some((ptr as usize, layout));
        c.bytes += layout.size();
        true
    }
}

// SAFETY: every block handed out is a MiMalloc block of the requested layout (fresh, or cached
// after being freed with exactly that layout), and every block given back is either cached (never
// handed out twice: `take` removes it) or returned to MiMalloc.
unsafe impl GlobalAlloc for CachingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG
            && let Some(p) = self.take(layout)
        {
            return p;
        }
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG
            && let Some(p) = self.take(layout)
        {
            unsafe { p.write_bytes(0, layout.size()) };
            return p;
        }
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= BIG && self.keep(ptr, layout) {
            return;
        }
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}
