//! S3 blob store: objects under `tenants/<tenant>/…`, server-side encryption on every write,
//! presigned GETs that expire in minutes, multipart uploads that are aborted on failure.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;

use crate::store::{BlobKey, BlobStore, StoreError, StoreResult};

/// Longest validity of a presigned URL.
pub const MAX_PRESIGN: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct S3BlobStore {
    pub(crate) client: Client,
    pub(crate) bucket: String,
}

/// Maps an S3 error to the store's error. Slow-downs, S3's own 5xx errors, timeouts, failed
/// connections and a 500, 502, 503 or 504 without an error code are transient.
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, HttpResponse>,
    bucket: &str,
) -> StoreError {
    match e.code().unwrap_or_default() {
        "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => StoreError::Throttled,
        "NoSuchBucket" => StoreError::Backend(anyhow::anyhow!("S3 bucket `{bucket}` not found (AUDITRAIL_BUCKET)")),
        "NoSuchKey" | "NotFound" | "NoSuchUpload" => StoreError::NotFound,
        "EntityTooSmall" | "InvalidPart" | "InvalidArgument" => {
            StoreError::Invalid(e.message().unwrap_or("rejected by S3").into())
        }
        _ => match e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StoreError::Throttled,
            other if other.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 500 | 502 | 503 | 504)) => {
                StoreError::Throttled
            }
            other => StoreError::backend(other),
        },
    }
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// Checks the bucket exists (start-up), with an error naming the variable.
    pub async fn check(&self) -> StoreResult<()> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map(|_| ()).map_err(|e| {
            if matches!(&e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404) {
                StoreError::Backend(anyhow::anyhow!("S3 bucket `{}` not found (AUDITRAIL_BUCKET)", self.bucket))
            } else {
                classify(e, &self.bucket)
            }
        })
    }

    /// A GET URL for the object, valid for `ttl` (at most 15 minutes).
    pub async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> StoreResult<String> {
        let cfg = PresigningConfig::expires_in(ttl.min(MAX_PRESIGN)).map_err(StoreError::backend)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(cfg)
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        Ok(req.uri().to_string())
    }

    pub async fn create_multipart(&self, key: &BlobKey, content_type: &str) -> StoreResult<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            // Export archives expire by the bucket's lifecycle rule on this tag (a backstop for
            // the scheduler, which deletes them after the tenant's export_archive_days).
            .set_tagging((key.area() == "exports").then(|| "kind=export".to_owned()))
            .send()
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        out.upload_id.ok_or_else(|| StoreError::Backend(anyhow::anyhow!("S3 returned no upload id")))
    }

    /// Uploads one part (≥ 5 MiB except the last) and returns its ETag.
    pub async fn put_part(&self, key: &BlobKey, upload_id: &str, number: i32, bytes: Bytes) -> StoreResult<String> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        out.e_tag.ok_or_else(|| StoreError::Backend(anyhow::anyhow!("S3 returned no ETag")))
    }

    /// Completes the upload. A refusal (a part missing or too small) aborts it, so no parts are
    /// left behind; a transient failure (throttling, a 5xx, a timeout: the completion may even
    /// have happened) keeps it for the caller's retry, and the bucket's lifecycle rule aborts an
    /// upload nobody completes within a day.
    pub async fn complete_multipart(&self, key: &BlobKey, upload_id: &str, parts: &[(i32, String)]) -> StoreResult<()> {
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts.iter().map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e).build()).collect(),
            ))
            .build();
        let res = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(done)
            .send()
            .await;
        if let Err(e) = res {
            let err = classify(e, &self.bucket);
            if !err.is_transient() {
                self.abort_multipart(key, upload_id).await?;
            }
            return Err(err);
        }
        Ok(())
    }

    pub async fn abort_multipart(&self, key: &BlobKey, upload_id: &str) -> StoreResult<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &self.bucket))
    }

    /// Multipart uploads still open under a prefix (to prove none are orphaned).
    pub async fn uploads_under(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        Ok(out.uploads().iter().filter_map(|u| Some((u.key()?.to_owned(), u.upload_id()?.to_owned()))).collect())
    }

    /// Creates the bucket (tests, benches and dev set-up).
    #[cfg(any(test, feature = "testkit"))]
    pub async fn create_bucket(&self) -> StoreResult<()> {
        self.client.create_bucket().bucket(&self.bucket).send().await.map(|_| ()).map_err(|e| classify(e, &self.bucket))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> StoreResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &self.bucket))
    }

    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Bytes>> {
        match self.client.get_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(StoreError::backend)?.into_bytes())),
            Err(e) => match classify(e, &self.bucket) {
                StoreError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn open(&self, key: &BlobKey) -> StoreResult<Option<(crate::store::BlobReader, u64)>> {
        match self.client.get_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(out) => {
                let len = out.content_length.unwrap_or_default().max(0) as u64;
                Ok(Some((Box::pin(out.body.into_async_read()), len)))
            }
            Err(e) => match classify(e, &self.bucket) {
                StoreError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &self.bucket))
    }

    async fn start_upload(&self, key: &BlobKey, content_type: &str) -> StoreResult<String> {
        self.create_multipart(key, content_type).await
    }

    async fn upload_part(&self, key: &BlobKey, upload_id: &str, number: i32, bytes: Bytes) -> StoreResult<String> {
        self.put_part(key, upload_id, number, bytes).await
    }

    async fn complete_upload(&self, key: &BlobKey, upload_id: &str, parts: &[(i32, String)]) -> StoreResult<()> {
        self.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_upload(&self, key: &BlobKey, upload_id: &str) -> StoreResult<()> {
        match self.abort_multipart(key, upload_id).await {
            Err(StoreError::NotFound) => Ok(()),
            other => other,
        }
    }

    async fn open_uploads(&self, tenant: &str, area: &str) -> StoreResult<Vec<(String, String)>> {
        self.uploads_under(&format!("tenants/{tenant}/{area}/")).await
    }

    async fn download_url(&self, key: &BlobKey, ttl: Duration) -> StoreResult<Option<String>> {
        self.presign_get(key, ttl).await.map(Some)
    }

    async fn upload_url(&self, key: &BlobKey, ttl: Duration) -> StoreResult<Option<String>> {
        // The bucket's default encryption (SSE-S3) applies to presigned PUTs as well.
        let cfg = PresigningConfig::expires_in(ttl.min(MAX_PRESIGN)).map_err(StoreError::backend)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(cfg)
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        Ok(Some(req.uri().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testkit::moto;

    /// One bucket for every check of this process (each check uses its own tenant).
    async fn blobs() -> Arc<dyn BlobStore> {
        static BLOBS: tokio::sync::OnceCell<S3BlobStore> = tokio::sync::OnceCell::const_new();
        Arc::new(BLOBS.get_or_init(|| async { moto::fresh().await.1 }).await.clone())
    }

    crate::conformance_tests!(blobs: blobs);

    #[tokio::test]
    async fn put_get_delete_round_trip_under_the_tenant_prefix() {
        let (_, s3) = moto::fresh().await;
        let key = BlobKey::new("acme", "attachments", "a1.wav").unwrap();
        s3.put(&key, Bytes::from_static(b"RIFF"), "audio/wav").await.unwrap();
        assert_eq!(s3.get(&key).await.unwrap().as_deref(), Some(&b"RIFF"[..]));
        let head =
            s3.client.head_object().bucket(&s3.bucket).key("tenants/acme/attachments/a1.wav").send().await.unwrap();
        assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
        s3.delete(&key).await.unwrap();
        assert!(s3.get(&key).await.unwrap().is_none());
        s3.delete(&key).await.unwrap();
    }

    #[tokio::test]
    async fn presigned_urls_expire_in_minutes() {
        let (_, s3) = moto::fresh().await;
        let key = BlobKey::new("acme", "exports", "e1.zip").unwrap();
        s3.put(&key, Bytes::from_static(b"PK"), "application/zip").await.unwrap();
        let url = s3.presign_get(&key, Duration::from_secs(3600)).await.unwrap();
        assert!(url.contains("tenants/acme/exports/e1.zip"), "{url}");
        assert!(url.contains("X-Amz-Expires=900"), "capped at 15 minutes: {url}");
        let body = crate::testkit::plain_http("GET", &url, None).await;
        assert_eq!(body, b"PK");
    }

    #[tokio::test]
    async fn a_failed_multipart_upload_is_aborted_and_leaves_nothing() {
        let (_, s3) = moto::fresh().await;
        let key = BlobKey::new("acme", "exports", "big.zip").unwrap();
        let id = s3.create_multipart(&key, "application/zip").await.unwrap();
        // Two parts, the first under S3's 5 MiB minimum: completing fails with EntityTooSmall.
        let e1 = s3.put_part(&key, &id, 1, Bytes::from(vec![1u8; 1024])).await.unwrap();
        let e2 = s3.put_part(&key, &id, 2, Bytes::from(vec![2u8; 1024])).await.unwrap();
        assert_eq!(
            s3.uploads_under("tenants/acme/").await.unwrap(),
            vec![("tenants/acme/exports/big.zip".to_owned(), id.clone())]
        );
        let err = s3.complete_multipart(&key, &id, &[(1, e1), (2, e2)]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(s3.uploads_under("tenants/acme/").await.unwrap().is_empty(), "aborted, no orphan parts");
        assert!(s3.get(&key).await.unwrap().is_none());
    }

    /// A completion answered with 5xx pages (S3's own retries spent) is transient: the upload stays
    /// open, and the worker's next try completes it.
    #[tokio::test]
    async fn a_completion_that_fails_for_a_while_keeps_the_upload_for_the_retry() {
        let (_, clean) = moto::fresh().await;
        let (http, counts) = crate::testkit::faults::failing_first("POST", "uploadId=", 3);
        let cfg = moto::sdk_config(&moto::endpoint()).await;
        let s3 = S3BlobStore::new(
            Client::from_conf(aws_sdk_s3::config::Builder::from(&cfg).force_path_style(true).http_client(http).build()),
            clean.bucket.clone(),
        );
        let key = BlobKey::new("acme", "exports", "late.zip").unwrap();
        let id = s3.create_multipart(&key, "application/zip").await.unwrap();
        let part = s3.put_part(&key, &id, 1, Bytes::from(vec![7u8; 1024])).await.unwrap();
        let err = s3.complete_multipart(&key, &id, &[(1, part.clone())]).await.unwrap_err();
        assert!(matches!(err, StoreError::Throttled), "{err:?}");
        assert_eq!(
            counts.server_errors.load(std::sync::atomic::Ordering::Relaxed),
            3,
            "S3's three attempts all failed"
        );
        assert_eq!(s3.uploads_under("tenants/acme/").await.unwrap().len(), 1, "the upload is kept for the retry");
        s3.complete_multipart(&key, &id, &[(1, part)]).await.unwrap();
        assert_eq!(s3.get(&key).await.unwrap().unwrap(), Bytes::from(vec![7u8; 1024]));
        assert!(s3.uploads_under("tenants/acme/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_missing_bucket_names_the_variable() {
        let cfg = moto::sdk_config(&moto::endpoint()).await;
        let s3 = S3BlobStore::new(
            Client::from_conf(aws_sdk_s3::config::Builder::from(&cfg).force_path_style(true).build()),
            "no-such-bucket",
        );
        let e = s3.check().await.unwrap_err().to_string();
        assert!(e.contains("AUDITRAIL_BUCKET") && e.contains("no-such-bucket"), "{e}");
    }
}
