//! Embedded blob store: one file per blob under `<root>/tenants/<tenant>/<area>/<name>`.
//! Writes go to a temporary file that is renamed into place, so a reader never sees half a blob.
//! Multipart uploads keep their parts under `<root>/.uploads/<tenant>/<area>/<upload id>/` until
//! they are completed (parts concatenated into a temporary file, renamed into place) or aborted,
//! with S3's rules: parts at least `min_part` bytes except the last, tags checked on completion.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::store::{BlobKey, BlobReader, BlobStore, MIN_PART_BYTES, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    min_part: usize,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::backend(e)
}

impl FsBlobStore {
    pub fn open(root: &Path) -> StoreResult<Self> {
        crate::private_fs::create_dir(root).map_err(StoreError::backend)?;
        Ok(Self { root: root.to_owned(), min_part: MIN_PART_BYTES })
    }

    /// Lowers the smallest part size (tests that want many parts from little data).
    #[cfg(any(test, feature = "testkit"))]
    pub fn with_min_part(mut self, bytes: usize) -> Self {
        self.min_part = bytes;
        self
    }

    fn uploads(&self, tenant: &str, area: &str) -> PathBuf {
        self.root.join(".uploads").join(tenant).join(area)
    }

    fn upload_dir(&self, key: &BlobKey, upload_id: &str) -> StoreResult<PathBuf> {
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::NotFound);
        }
        Ok(self.uploads(key.tenant(), key.area()).join(upload_id))
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
        crate::private_fs::create_dir_async(&dir).await.map_err(StoreError::backend)?;
        let tmp = dir.join(format!(".{}.tmp", ulid::Ulid::generate()));
        crate::private_fs::write(&tmp, &bytes).await.map_err(StoreError::backend)?;
        tokio::fs::rename(&tmp, &path).await.map_err(StoreError::backend)
    }

    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Bytes>> {
        match tokio::fs::read(self.path(key)).await {
            Ok(b) => Ok(Some(b.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn open(&self, key: &BlobKey) -> StoreResult<Option<(BlobReader, u64)>> {
        match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => {
                let len = f.metadata().await.map_err(io)?.len();
                Ok(Some((Box::pin(f), len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn start_upload(&self, key: &BlobKey, _content_type: &str) -> StoreResult<String> {
        let id = ulid::Ulid::generate().to_string();
        let dir = self.upload_dir(key, &id)?;
        crate::private_fs::create_dir_async(&dir).await.map_err(io)?;
        crate::private_fs::write(&dir.join("key"), key.as_str().as_bytes()).await.map_err(io)?;
        Ok(id)
    }

    async fn upload_part(&self, key: &BlobKey, upload_id: &str, number: i32, bytes: Bytes) -> StoreResult<String> {
        if !(1..=10_000).contains(&number) {
            return Err(StoreError::Invalid(format!("part number {number} is outside 1..=10000")));
        }
        let dir = self.upload_dir(key, upload_id)?;
        if !tokio::fs::try_exists(dir.join("key")).await.map_err(io)? {
            return Err(StoreError::NotFound);
        }
        let tag = hex_tag(&bytes);
        let tmp = dir.join(format!(".{}.tmp", ulid::Ulid::generate()));
        crate::private_fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, dir.join(format!("part-{number:05}"))).await.map_err(io)?;
        Ok(tag)
    }

    async fn complete_upload(&self, key: &BlobKey, upload_id: &str, parts: &[(i32, String)]) -> StoreResult<()> {
        use tokio::io::AsyncWriteExt;
        let dir = self.upload_dir(key, upload_id)?;
        if !tokio::fs::try_exists(dir.join("key")).await.map_err(io)? {
            return Err(StoreError::NotFound);
        }
        let result: StoreResult<()> = async {
            if parts.is_empty() || parts.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(StoreError::Invalid("parts must be given in ascending order".into()));
            }
            let path = self.path(key);
            let parent = path.parent().expect("blob keys have a parent").to_owned();
            crate::private_fs::create_dir_async(&parent).await.map_err(io)?;
            let tmp = parent.join(format!(".{}.tmp", ulid::Ulid::generate()));
            let mut out = crate::private_fs::create_file(&tmp).await.map_err(io)?;
            for (i, (n, tag)) in parts.iter().enumerate() {
                let bytes = tokio::fs::read(dir.join(format!("part-{n:05}")))
                    .await
                    .map_err(|_| StoreError::Invalid(format!("part {n} was never uploaded")))?;
                if &hex_tag(&bytes) != tag {
                    return Err(StoreError::Invalid(format!("part {n}: tag does not match")));
                }
                if i + 1 < parts.len() && bytes.len() < self.min_part {
                    return Err(StoreError::Invalid(format!(
                        "part {n} is {} bytes; every part but the last must be at least {}",
                        bytes.len(),
                        self.min_part
                    )));
                }
                out.write_all(&bytes).await.map_err(io)?;
            }
            out.sync_all().await.map_err(io)?;
            drop(out);
            tokio::fs::rename(&tmp, &path).await.map_err(io)
        }
        .await;
        // As on S3: a failed completion leaves no upload behind.
        self.abort_upload(key, upload_id).await?;
        result
    }

    async fn abort_upload(&self, key: &BlobKey, upload_id: &str) -> StoreResult<()> {
        let dir = self.upload_dir(key, upload_id)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    async fn open_uploads(&self, tenant: &str, area: &str) -> StoreResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(self.uploads(tenant, area)).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(e)),
        };
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            if let Ok(k) = tokio::fs::read_to_string(entry.path().join("key")).await {
                out.push((k, entry.file_name().to_string_lossy().into_owned()));
            }
        }
        Ok(out)
    }

    async fn download_url(&self, _key: &BlobKey, _ttl: std::time::Duration) -> StoreResult<Option<String>> {
        Ok(None)
    }

    async fn upload_url(&self, _key: &BlobKey, _ttl: std::time::Duration) -> StoreResult<Option<String>> {
        Ok(None)
    }
}

fn hex_tag(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use super::FsBlobStore;

    /// One directory for every check (each check uses its own tenant), like production.
    async fn blobs() -> Arc<dyn crate::store::BlobStore> {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        Arc::new(FsBlobStore::open(&dir.path().join("blobs")).unwrap())
    }

    crate::conformance_tests!(blobs: blobs);
}
