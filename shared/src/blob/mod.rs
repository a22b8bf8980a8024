//! Blob storage: the port lives in `store` beside the record port; adapters live here.

pub mod fs;
#[cfg(feature = "aws")]
pub mod s3;

pub use crate::store::{BlobKey, BlobStore};
