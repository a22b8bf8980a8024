//! Blobs: put, get, stream and delete; keys under their tenant; multipart uploads completed in
//! part order or leaving nothing behind; presigned URLs where the back end has them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::tenant;
use crate::store::{BlobKey, BlobStore, MIN_PART_BYTES, StoreError};

pub async fn blobs_round_trip_and_stream(store: Arc<dyn BlobStore>) {
    let t = tenant("blobs");
    let key = BlobKey::new(&t, "attachments", "a1.wav").unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    assert!(store.open(&key).await.unwrap().is_none());
    store.put(&key, Bytes::from_static(b"RIFF first"), "audio/wav").await.unwrap();
    store.put(&key, Bytes::from_static(b"RIFF second"), "audio/wav").await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"RIFF second"[..]), "a put replaces");
    let (mut reader, len) = store.open(&key).await.unwrap().unwrap();
    let mut streamed = Vec::new();
    reader.read_to_end(&mut streamed).await.unwrap();
    assert_eq!((streamed.as_slice(), len), (&b"RIFF second"[..], 11));
    // A record id as a name (error reports): `:` is allowed.
    let colon = BlobKey::new(&t, "error-reports", "rec:1").unwrap();
    store.put(&colon, Bytes::from_static(b"{}"), "application/json").await.unwrap();
    assert_eq!(store.get(&colon).await.unwrap().as_deref(), Some(&b"{}"[..]));
    store.delete(&key).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    store.delete(&key).await.unwrap();
}

pub async fn blob_keys_stay_under_their_tenant(store: Arc<dyn BlobStore>) {
    let (t1, t2) = (tenant("blob-a"), tenant("blob-b"));
    let (k1, k2) = (BlobKey::new(&t1, "exports", "e.zip").unwrap(), BlobKey::new(&t2, "exports", "e.zip").unwrap());
    store.put(&k1, Bytes::from_static(b"one"), "application/zip").await.unwrap();
    assert!(store.get(&k2).await.unwrap().is_none(), "the same name under another tenant is another blob");
    store.put(&k2, Bytes::from_static(b"two"), "application/zip").await.unwrap();
    store.delete(&k1).await.unwrap();
    assert_eq!(store.get(&k2).await.unwrap().as_deref(), Some(&b"two"[..]));
    let id = store.start_upload(&k1, "application/zip").await.unwrap();
    assert!(store.open_uploads(&t2, "exports").await.unwrap().is_empty(), "uploads are listed per tenant");
    assert!(store.open_uploads(&t1, "attachments").await.unwrap().is_empty(), "and per area");
    assert_eq!(store.open_uploads(&t1, "exports").await.unwrap(), vec![(k1.as_str().to_owned(), id.clone())]);
    store.abort_upload(&k1, &id).await.unwrap();
}

pub async fn multipart_uploads_complete_in_part_order(store: Arc<dyn BlobStore>) {
    let t = tenant("multipart");
    let key = BlobKey::new(&t, "exports", "big.zip").unwrap();
    let id = store.start_upload(&key, "application/zip").await.unwrap();
    let first = Bytes::from(vec![7u8; MIN_PART_BYTES]);
    // Parts may arrive in any order; uploading a number again replaces it.
    let _ = store.upload_part(&key, &id, 2, Bytes::from_static(b"draft")).await.unwrap();
    let tag2 = store.upload_part(&key, &id, 2, Bytes::from_static(b"tail")).await.unwrap();
    let tag1 = store.upload_part(&key, &id, 1, first.clone()).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none(), "nothing appears before the upload completes");
    assert_eq!(store.open_uploads(&t, "exports").await.unwrap(), vec![(key.as_str().to_owned(), id.clone())]);
    store.complete_upload(&key, &id, &[(1, tag1), (2, tag2)]).await.unwrap();
    let got = store.get(&key).await.unwrap().unwrap();
    assert_eq!(got.len(), MIN_PART_BYTES + 4);
    assert!(got.starts_with(&first) && got.ends_with(b"tail"));
    assert!(store.open_uploads(&t, "exports").await.unwrap().is_empty());
}

pub async fn a_failed_or_aborted_upload_leaves_nothing(store: Arc<dyn BlobStore>) {
    let t = tenant("upload-fail");
    let key = BlobKey::new(&t, "exports", "small.zip").unwrap();
    // Every part but the last must be at least MIN_PART_BYTES: completing fails, and the upload
    // is gone with its parts.
    let id = store.start_upload(&key, "application/zip").await.unwrap();
    let e1 = store.upload_part(&key, &id, 1, Bytes::from(vec![1u8; 1024])).await.unwrap();
    let e2 = store.upload_part(&key, &id, 2, Bytes::from(vec![2u8; 1024])).await.unwrap();
    let err = store.complete_upload(&key, &id, &[(1, e1), (2, e2)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(store.open_uploads(&t, "exports").await.unwrap().is_empty(), "no orphan parts");
    assert!(store.get(&key).await.unwrap().is_none());

    let id = store.start_upload(&key, "application/zip").await.unwrap();
    store.upload_part(&key, &id, 1, Bytes::from_static(b"part")).await.unwrap();
    store.abort_upload(&key, &id).await.unwrap();
    store.abort_upload(&key, &id).await.unwrap();
    assert!(store.open_uploads(&t, "exports").await.unwrap().is_empty());
    assert!(store.get(&key).await.unwrap().is_none());
}

pub async fn urls_where_the_back_end_has_them(store: Arc<dyn BlobStore>) {
    let t = tenant("urls");
    let (down, up) = (BlobKey::new(&t, "exports", "d.zip").unwrap(), BlobKey::new(&t, "attachments", "u.wav").unwrap());
    store.put(&down, Bytes::from_static(b"PK"), "application/zip").await.unwrap();
    let ttl = Duration::from_secs(60);
    let (get_url, put_url) = (store.download_url(&down, ttl).await.unwrap(), store.upload_url(&up, ttl).await.unwrap());
    assert_eq!(get_url.is_some(), put_url.is_some(), "a back end gives both URLs or neither");
    if let Some(url) = get_url {
        assert!(url.contains(down.as_str()), "{url}");
        assert_eq!(crate::testkit::plain_http("GET", &url, None).await, b"PK");
    }
    if let Some(url) = put_url {
        assert!(url.contains(up.as_str()), "{url}");
        crate::testkit::plain_http("PUT", &url, Some(b"RIFF")).await;
        assert_eq!(store.get(&up).await.unwrap().as_deref(), Some(&b"RIFF"[..]));
    }
}
