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
