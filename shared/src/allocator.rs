//! The allocator of the long-running server (`auditrail serve`), the bench and the ingest
//! function: mimalloc. Each binary declares it with
//! `#[global_allocator] static A: Allocator = Allocator;`.
//!
//! Measured with `perf` on the live-ingest bench (one client, batches of 1000): with glibc's
//! malloc, a third of the request path's CPU was in the allocator (a batch's records parsed on a
//! worker, kept in the inbox's tail, freed by the indexer's thread). mimalloc (v3, its defaults:
//! freed memory kept for a second before it goes back to the system) took most of that away;
//! with the other changes of the same stop one client went from 82k–99k to 121k–135k events/s
//! (medians). What stays is the kernel zeroing fresh pages while a fresh process's tail grows.

pub use mimalloc::MiMalloc as Allocator;
