//! Embedded blob store: one file per blob under `<root>/tenants/<tenant>/<area>/<name>`.
//! Writes go to a temporary file that is renamed into place, so a reader never sees half a blob.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::store::{BlobKey, BlobStore, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(root).map_err(StoreError::backend)?;
        Ok(Self { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, _content_type: &str) -> StoreResult<()> {
        let path = self.path(key);
        let dir = path.parent().expect("blob keys have a parent").to_owned();
        tokio::fs::create_dir_all(&dir).await.map_err(StoreError::backend)?;
        let tmp = dir.join(format!(".{}.tmp", ulid::Ulid::generate()));
        tokio::fs::write(&tmp, &bytes).await.map_err(StoreError::backend)?;
        tokio::fs::rename(&tmp, &path).await.map_err(StoreError::backend)
    }

    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Bytes>> {
        match tokio::fs::read(self.path(key)).await {
            Ok(b) => Ok(Some(b.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::backend(e)),
        }
    }
}
