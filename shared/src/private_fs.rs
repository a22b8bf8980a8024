//! The embedded store's files are readable by their owner only, like the key files: folders
//! are created `0700` and files `0600` (SQLite gives its `-wal` and `-shm` files the database
//! file's mode).

use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents owner-only, and makes `dir` itself owner-only if it
/// already existed (a data directory made by an older version).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// `create_dir` for async code.
pub async fn create_dir_async(dir: &Path) -> io::Result<()> {
    let mut b = tokio::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir).await
}

/// Creates (or truncates) a file readable by its owner only.
pub async fn create_file(path: &Path) -> io::Result<tokio::fs::File> {
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path).await
}

/// Writes a whole file readable by its owner only.
pub async fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut f = create_file(path).await?;
    f.write_all(bytes).await?;
    f.flush().await
}

/// Creates `path` empty and owner-only if it does not exist, and makes it owner-only if it does
/// (the SQLite database, before SQLite opens it).
pub fn ensure_file(path: &Path) -> io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    drop(o.open(path)?);
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

#[cfg(all(test, unix, feature = "embedded"))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::config::Config;
    use crate::record::{Actor, Record};
    use crate::store::BlobKey;

    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, bool, u32)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            out.push((e.path(), meta.is_dir(), meta.permissions().mode() & 0o777));
            if meta.is_dir() {
                walk(&e.path(), out);
            }
        }
    }

    #[tokio::test]
    async fn the_data_directory_is_readable_by_its_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let state = Config::embedded(&dir).app().await.unwrap();
        Config::embedded(&dir).authenticator().unwrap(); // the token key
        let rec = Record::system("acme", "AUDIT_SEARCH", Actor::default(), None, serde_json::json!({"q": "x"}));
        state.records.append("acme", &[rec]).await.unwrap();
        let key = BlobKey::new("acme", "attachments", "a1").unwrap();
        state.blobs.put(&key, bytes::Bytes::from_static(b"secret"), "text/plain").await.unwrap();
        let up = BlobKey::new("acme", "exports", "e1").unwrap();
        let id = state.blobs.start_upload(&up, "application/zip").await.unwrap();
        state.blobs.upload_part(&up, &id, 1, bytes::Bytes::from_static(b"part")).await.unwrap();

        let mut seen = vec![(dir.clone(), true, std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777)];
        walk(&dir, &mut seen);
        let names: Vec<String> = seen.iter().map(|(p, _, _)| p.display().to_string()).collect();
        for needed in ["auditrail.db", "auditrail.db-wal", "auditrail.db-shm", "a1", "part-00001", "jwt.key"] {
            assert!(names.iter().any(|n| n.ends_with(needed)), "{needed} in {names:#?}");
        }
        for (path, is_dir, mode) in seen {
            let want = if is_dir { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{} is {mode:o}", path.display());
        }
    }
}
