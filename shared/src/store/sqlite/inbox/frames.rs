//! The inbox's log on disk: frames (encoded, decoded, a torn last one told from damage),
//! segments, the mark of the last frame indexed, and the recovery of what a run left.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use super::super::append::insert_rows;
use super::super::decode;
use super::super::pool::write_transaction;
use super::{Frame, Row};
use crate::record::Record;
use crate::store::{StoreError, StoreResult};

const MAGIC: &[u8; 4] = b"ATI1";
const HEADER: usize = 20;
pub(super) fn io(e: std::io::Error) -> StoreError {
    StoreError::backend(e)
}

pub(in super::super) fn dir_of(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".inbox");
    PathBuf::from(s)
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

fn inbox_upto(conn: &Connection) -> StoreResult<u64> {
    conn.query_row("SELECT frame FROM inbox_upto", [], |r| r.get::<_, i64>(0))
        .optional()
        .map(|n| n.unwrap_or(0) as u64)
        .map_err(StoreError::backend)
}

fn set_inbox_upto(conn: &Connection, frame: u64) -> StoreResult<()> {
    conn.prepare_cached("UPDATE inbox_upto SET frame = ?1 WHERE frame < ?1")
        .and_then(|mut s| s.execute([frame as i64]))
        .map(|_| ())
        .map_err(StoreError::backend)
}

pub(super) fn encode(no: u64, tenant: &str, batch: &str, rows: &[Arc<Row>]) -> Vec<u8> {
    // One buffer: the header's place kept, the payload written after it, then the header.
    let size = 16 + tenant.len() + batch.len() + rows.iter().map(|r| r.body.len() + 4).sum::<usize>();
    let mut out = Vec::with_capacity(HEADER + size);
    out.resize(HEADER, 0);
    for s in [tenant, batch] {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for r in rows {
        out.extend_from_slice(&(r.body.len() as u32).to_le_bytes());
        out.extend_from_slice(r.body.as_bytes());
    }
    let payload = &out[HEADER..];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&no.to_le_bytes());
    crc.update(payload);
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc.finalize().to_le_bytes();
    out[..4].copy_from_slice(MAGIC);
    out[4..12].copy_from_slice(&no.to_le_bytes());
    out[12..16].copy_from_slice(&len);
    out[16..HEADER].copy_from_slice(&crc);
    out
}

/// The frames of a segment's bytes, and whether they end in a frame that was being written when
/// the process stopped (it reaches the end of the file). Any other damage is an error: frames
/// after it were answered as stored.
fn decode_frames(bytes: &[u8], segment: &Path) -> StoreResult<(Vec<Frame>, bool)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let torn = || Ok::<_, StoreError>(rest.len() < HEADER || HEADER + frame_len(rest) >= rest.len());
        if rest.iter().all(|b| *b == 0) {
            // A file the crash extended before its bytes were written.
            return Ok((frames, true));
        }
        if rest.len() < HEADER || &rest[..4] != MAGIC {
            if rest.len() < HEADER && MAGIC.starts_with(&rest[..rest.len().min(4)]) {
                return Ok((frames, true));
            }
            break;
        }
        let no = u64::from_le_bytes(rest[4..12].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(rest[16..20].try_into().expect("4 bytes"));
        let Some(payload) = rest.get(HEADER..HEADER + frame_len(rest)) else { return Ok((frames, torn()?)) };
        let mut h = crc32fast::Hasher::new();
        h.update(&no.to_le_bytes());
        h.update(payload);
        if h.finalize() != crc {
            if torn()? {
                return Ok((frames, true));
            }
            break;
        }
        frames.push(parse_payload(no, payload)?);
        at += HEADER + payload.len();
    }
    if at < bytes.len() {
        return Err(StoreError::Corrupt(format!("inbox segment {} is damaged at byte {at}", segment.display())));
    }
    Ok((frames, false))
}

fn frame_len(header: &[u8]) -> usize {
    u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")) as usize
}

/// Reads a frame's payload in order.
struct Reader<'a> {
    rest: &'a [u8],
    no: u64,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        let (a, b) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| StoreError::Corrupt(format!("inbox frame {} is malformed", self.no)))?;
        self.rest = b;
        Ok(a)
    }

    fn count(&mut self) -> StoreResult<usize> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }

    fn string(&mut self) -> StoreResult<String> {
        let n = self.count()?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| StoreError::Corrupt(format!("inbox frame {} is malformed", self.no)))
    }
}

fn parse_payload(no: u64, payload: &[u8]) -> StoreResult<Frame> {
    let mut p = Reader { rest: payload, no };
    let tenant = p.string()?;
    let batch = p.string()?;
    let count = p.count()?;
    let mut rows = Vec::with_capacity(count.min(100_000));
    for _ in 0..count {
        let body = p.string()?;
        rows.push(Arc::new(Row::new(decode(&body)?, body)));
    }
    Ok(Frame { no, tenant, batch, rows })
}

/// Indexes `frames` into SQLite in one transaction and moves the mark past the last.
pub(super) fn index_frames(conn: &mut Connection, frames: &[Arc<Frame>]) -> StoreResult<()> {
    let tx = write_transaction(conn)?;
    for f in frames {
        let rows: Vec<(&Record, &str)> = f.rows.iter().map(|r| (&r.record, r.body.as_str())).collect();
        insert_rows(&tx, &f.tenant, &f.batch, &rows)?;
    }
    if let Some(last) = frames.last() {
        set_inbox_upto(&tx, last.no)?;
    }
    tx.commit().map_err(StoreError::backend)
}

pub(super) fn segments(dir: &Path) -> StoreResult<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    out.sort();
    Ok(out)
}

/// Indexes every frame of `dir`'s segments after the mark and deletes the segments; the next
/// frame's number. The caller holds the inbox's lock.
pub(super) fn recover(conn: &mut Connection, dir: &Path) -> StoreResult<u64> {
    let mark = inbox_upto(conn)?;
    let segs = segments(dir)?;
    let mut last = mark;
    for (i, seg) in segs.iter().enumerate() {
        let bytes = std::fs::read(seg).map_err(io)?;
        let (frames, torn) = decode_frames(&bytes, seg)?;
        if torn && i + 1 < segs.len() {
            // Only the last segment can end in a frame that was being written.
            return Err(StoreError::Corrupt(format!("inbox segment {} is damaged at its end", seg.display())));
        }
        if torn {
            // Never answered: the process stopped while writing it.
            tracing::warn!(segment = %seg.display(), "the inbox's last frame was cut short and is dropped");
        }
        let frames: Vec<Arc<Frame>> = frames.into_iter().filter(|f| f.no > mark).map(Arc::new).collect();
        for chunk in frames.chunk_by(|a, b| a.no / 64 == b.no / 64) {
            index_frames(conn, chunk)?;
        }
        last = last.max(frames.last().map_or(0, |f| f.no));
    }
    for seg in &segs {
        std::fs::remove_file(seg).map_err(io)?;
    }
    if !segs.is_empty() {
        sync_dir(dir)?;
    }
    if last > mark {
        tracing::info!(frames = last - mark, "indexed the frames the last run left in the inbox");
    }
    Ok(last + 1)
}

/// The inbox's lock file, locked by this process; `None` if another holds it.
pub(super) fn lock(dir: &Path) -> StoreResult<Option<File>> {
    let lock =
        OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(dir.join("lock")).map_err(io)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// At every open: if a run left frames in the inbox and no process serves it now, indexes them.
pub(in super::super) fn recover_if_unowned(conn: &mut Connection, db: &Path) -> StoreResult<()> {
    let dir = dir_of(db);
    if !dir.exists() {
        return Ok(());
    }
    match lock(&dir)? {
        Some(_held) => recover(conn, &dir).map(|_| ()),
        None => Ok(()),
    }
}

pub(super) fn new_segment(dir: &Path, first: u64) -> StoreResult<(File, PathBuf)> {
    let path = dir.join(format!("{first:020}.log"));
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&path).map_err(io)?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Deletes the closed segments whose frames are all indexed (a failure is logged and retried at
/// the next rotation or emptying), then syncs the directory.
pub(super) fn remove_indexed(closed: &mut VecDeque<(PathBuf, u64)>, indexed: u64, dir: &std::path::Path) {
    let mut removed = false;
    while let Some((p, last)) = closed.front() {
        if *last > indexed {
            break;
        }
        if let Err(e) = std::fs::remove_file(p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, segment = %p.display(), "deleting an indexed inbox segment failed");
            break;
        }
        closed.pop_front();
        removed = true;
    }
    if removed && let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(error = %e, "syncing the inbox's directory failed");
    }
}
