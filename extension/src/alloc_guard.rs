//! An allocation budget for rendering.
//!
//! Fuel bounds how many steps a template takes, but not how much memory one
//! step allocates: `{% set b = a ~ a %}` doubles a string per line, so thirty
//! lines of template ask for gigabytes. minijinja has no hook between steps to
//! stop that, and Rust cannot report a failed allocation as an error (it
//! aborts, which would take the whole cluster through crash recovery).
//!
//! So the allocator of this library counts the bytes live while a guarded
//! section (a render) runs. When a guarded section goes over its budget, the
//! registered handler is called *instead of* allocating. The PostgreSQL layer
//! registers a handler that ends the session with FATAL: the backend exits
//! cleanly, the server and every other session carry on. The ordinary limits
//! (fuel, output size, filter widths, minijinja's cap on `*`) turn every
//! realistic runaway into a plain ERROR long before this point; the budget is
//! the last line, for exponential growth only.
//!
//! PostgreSQL backends are single-threaded, so plain atomics with relaxed
//! ordering are enough and cost a load and an add per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// The global allocator of the extension: the system allocator plus a budget.
pub struct BudgetAllocator;

static GUARDED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static HANDLER: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Called with (bytes that would be live, budget) when a guarded section
/// overruns. It must not return normally and must not allocate with Rust.
pub type ExhaustedHandler = fn(usize, usize) -> !;

/// Registers what happens when the budget is exhausted (once, at load time).
pub fn set_handler(handler: ExhaustedHandler) {
    HANDLER.store(handler as *mut (), Relaxed);
}

/// Runs `f` with at most `limit` bytes of new live allocations.
pub fn guarded<T>(limit: usize, f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            GUARDED.store(false, Relaxed);
        }
    }
    LIVE.store(0, Relaxed);
    LIMIT.store(limit, Relaxed);
    GUARDED.store(true, Relaxed);
    let _reset = Reset;
    f()
}

/// Bytes allocated and still live in the current (or last) guarded section.
pub fn live_bytes() -> isize {
    LIVE.load(Relaxed)
}

#[inline]
fn charge(bytes: usize) -> bool {
    if !GUARDED.load(Relaxed) {
        return true;
    }
    let live = LIVE.fetch_add(bytes as isize, Relaxed) + bytes as isize;
    if live <= 0 || (live as usize) <= LIMIT.load(Relaxed) {
        return true;
    }
    LIVE.fetch_sub(bytes as isize, Relaxed);
    exhausted(live as usize)
}

#[cold]
fn exhausted(live: usize) -> bool {
    // Leave the guarded state first: the handler may allocate through us.
    GUARDED.store(false, Relaxed);
    let handler = HANDLER.load(Relaxed);
    if handler.is_null() {
        return false; // no handler (plain unit tests): the allocation fails
    }
    // SAFETY: only `set_handler` stores into HANDLER, always an ExhaustedHandler.
    let handler: ExhaustedHandler = unsafe { std::mem::transmute(handler) };
    handler(live, LIMIT.load(Relaxed))
}

#[inline]
fn release(bytes: usize) {
    if GUARDED.load(Relaxed) {
        LIVE.fetch_sub(bytes as isize, Relaxed);
    }
}

unsafe impl GlobalAlloc for BudgetAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !charge(layout.size()) {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !charge(layout.size()) {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        release(layout.size());
        System.dealloc(ptr, layout)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            if !charge(new_size - layout.size()) {
                return std::ptr::null_mut();
            }
        } else {
            release(layout.size() - new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test binary does not install BudgetAllocator globally, so exercise
    // the accounting directly.
    #[test]
    fn accounting_tracks_live_bytes_and_refuses_overruns() {
        guarded(1000, || {
            assert!(charge(600));
            release(200);
            assert_eq!(live_bytes(), 400);
            assert!(charge(600));
            // 1000 live now; one more byte is over budget, and with no handler
            // registered the allocation is refused rather than served.
            assert!(!charge(1));
        });
        // Outside a guarded section nothing is counted.
        assert!(charge(usize::MAX / 4));
    }
}
