//! The allocator of the long-running server (`auditrail serve`), the bench and the ingest
//! function: mimalloc, tuned for the embedded store's inbox. Each binary declares it with
//! `#[global_allocator] static A: Allocator = Allocator;` and calls [`tune`] first thing in `main`.
//!
//! Measured with `perf` on the live-ingest bench (one client, batches of 1000): with glibc's
//! malloc, a third of the request path's CPU was in the allocator (records parsed on a worker,
//! kept in the inbox's tail, freed by the indexer's thread). With mimalloc at its defaults, a
//! quarter went to the kernel zeroing pages: mimalloc gives freed memory back 10 ms after it is
//! free, the indexer frees a burst of records at a time, and the next batches fault the same
//! memory in again. Keeping freed memory for a second raised one client from 82k–99k to
//! 124k–144k events/s; an idle server still returns it.

pub use mimalloc::MiMalloc as Allocator;

/// How long freed memory stays with the process before it is returned to the system.
pub const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// `mi_option_purge_delay` of mimalloc.h (v3 and v2): the Rust bindings name no constant for it
/// (they skip from 14, `eager_commit_delay`, to 16, `use_numa_nodes`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's options (see the module); harmless if the binary does not use it.
pub fn tune() {
    // SAFETY: sets an integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

/// The purge delay mimalloc uses now (for the check that [`tune`] set the option it means to).
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reads an integer option.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    /// The option index is the purge delay: its documented default (10 ms) before, ours after.
    #[test]
    fn tune_sets_the_purge_delay() {
        // Only this test touches the option in this test binary.
        let before = super::purge_delay_ms();
        assert!(before == 10 || before == super::PURGE_DELAY_MS, "purge delay {before}");
        super::tune();
        assert_eq!(super::purge_delay_ms(), super::PURGE_DELAY_MS);
    }
}
