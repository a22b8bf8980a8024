//! A real blob store with faults around its calls, for the fault suites: every call goes to the
//! real store, and `BlobFaults` may stop it before (nothing sent: a kill point, a refused call) or
//! fail it after the real store did it (an answer lost).

use std::sync::Arc;

use async_trait::async_trait;
use auditrail_shared::store::{BlobKey, BlobReader, BlobStore, StoreResult};
use bytes::Bytes;

/// A blob store call, as the faults see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCall {
    Put,
    Get,
    Open,
    Delete,
    StartUpload,
    /// With the part's number.
    UploadPart(i32),
    CompleteUpload,
}

/// What goes wrong around the real store's calls; by default nothing.
#[async_trait]
pub trait BlobFaults: Send + Sync + 'static {
    async fn before(&self, _call: BlobCall) -> StoreResult<()> {
        Ok(())
    }
    async fn after(&self, _call: BlobCall) -> StoreResult<()> {
        Ok(())
    }
}

/// `store` with `faults` around its calls (listing, aborting and URLs pass untouched).
pub struct FaultyBlobs<F>(pub Arc<dyn BlobStore>, pub F);

impl<F: BlobFaults> FaultyBlobs<F> {
    async fn around<T>(&self, call: BlobCall, run: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        self.1.before(call).await?;
        let out = run.await?;
        self.1.after(call).await?;
        Ok(out)
    }
}

#[async_trait]
impl<F: BlobFaults> BlobStore for FaultyBlobs<F> {
    async fn put(&self, k: &BlobKey, b: Bytes, ct: &str) -> StoreResult<()> {
        self.around(BlobCall::Put, self.0.put(k, b, ct)).await
    }
    async fn get(&self, k: &BlobKey) -> StoreResult<Option<Bytes>> {
        self.around(BlobCall::Get, self.0.get(k)).await
    }
    async fn open(&self, k: &BlobKey) -> StoreResult<Option<(BlobReader, u64)>> {
        self.around(BlobCall::Open, self.0.open(k)).await
    }
    async fn delete(&self, k: &BlobKey) -> StoreResult<()> {
        self.around(BlobCall::Delete, self.0.delete(k)).await
    }
    async fn start_upload(&self, k: &BlobKey, ct: &str) -> StoreResult<String> {
        self.around(BlobCall::StartUpload, self.0.start_upload(k, ct)).await
    }
    async fn upload_part(&self, k: &BlobKey, id: &str, n: i32, b: Bytes) -> StoreResult<String> {
        self.around(BlobCall::UploadPart(n), self.0.upload_part(k, id, n, b)).await
    }
    async fn complete_upload(&self, k: &BlobKey, id: &str, p: &[(i32, String)]) -> StoreResult<()> {
        self.around(BlobCall::CompleteUpload, self.0.complete_upload(k, id, p)).await
    }
    async fn abort_upload(&self, k: &BlobKey, id: &str) -> StoreResult<()> {
        self.0.abort_upload(k, id).await
    }
    async fn open_uploads(&self, t: &str, a: &str) -> StoreResult<Vec<(String, String)>> {
        self.0.open_uploads(t, a).await
    }
    async fn download_url(&self, k: &BlobKey, ttl: std::time::Duration) -> StoreResult<Option<String>> {
        self.0.download_url(k, ttl).await
    }
    async fn upload_url(&self, k: &BlobKey, ttl: std::time::Duration) -> StoreResult<Option<String>> {
        self.0.upload_url(k, ttl).await
    }
}
