//! Blob storage: the port lives in `store` beside the record port; adapters live here.

pub mod fs;

pub use crate::store::{BlobKey, BlobStore};
