//! The archive writer: records → rows → deflate → (AES-256 ZIP | gzip | plain) in chunks that
//! each become one multipart-upload part, so memory stays flat whatever the export's size and
//! the writer can stop after any part and continue in another process.
//!
//! - ZIP: one entry per chunk (`events-0001.csv`, `events-0002.csv`, … each with the header row),
//!   written by the `zip` crate (WinZip AE-2, AES-256, when there is a password). An entry's local
//!   header and data do not depend on where they land, so each closed entry is uploaded as is;
//!   its central-directory record (offset patched) goes into the checkpoint, and the last part
//!   ends with the whole directory.
//! - gzip: one gzip member per chunk; concatenated members are one valid gzip file (RFC 1952).
//! - none: the rows themselves.
//!
//! A chunk closes when its compressed bytes reach the part size (S3 needs ≥ 5 MiB for every part
//! but the last) or its raw bytes reach the entry limit.

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::rows::{ExportView, RowEncoder};
use super::{Compression, Format};
use crate::record::Record;

/// Sizes and effort of the writer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Compressed bytes at which a chunk closes (one part each).
    pub part_bytes: usize,
    /// Raw bytes at which a chunk closes whatever its compressed size (keeps ZIP entries far
    /// below 4 GiB, so no entry needs ZIP64).
    pub entry_raw_bytes: usize,
    /// Deflate level (1–9). 4 is the measured balance: ≥ 100 MB of CSV/s per core (10× 7-Zip),
    /// archives 1.18× the size of 7-Zip's optimal-parsing deflate (see README "Measured").
    pub level: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { part_bytes: 8 * 1024 * 1024, entry_raw_bytes: 512 * 1024 * 1024, level: 4 }
    }
}

/// What must survive between parts: stored in the task's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriterState {
    /// Archive bytes already handed out as parts (where the next part starts).
    pub offset: u64,
    /// Chunks closed so far.
    pub chunks: u32,
    /// Uncompressed row bytes written so far.
    pub raw_bytes: u64,
    /// ZIP central-directory records of the closed entries (base64), offsets patched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the archive would exceed 4 GiB or 65,535 entries (ZIP64 is not written); narrow the filter")]
    TooLarge,
    #[error("archive writer: {0}")]
    Io(#[from] std::io::Error),
    #[error("archive writer: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("corrupt writer checkpoint: {0}")]
    Corrupt(String),
}

/// An in-memory, seekable buffer the ZIP writer can patch headers in, whose size the archive
/// writer can watch while the entry is being written.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Cursor<Vec<u8>>>>);

impl SharedBuf {
    fn with_capacity(n: usize) -> Self {
        Self(Arc::new(Mutex::new(Cursor::new(Vec::with_capacity(n)))))
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get_ref().len()
    }
    fn take(&self) -> Vec<u8> {
        std::mem::take(self.0.lock().unwrap_or_else(|p| p.into_inner()).get_mut())
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedBuf {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).seek(pos)
    }
}

enum Chunk {
    Zip(Box<ZipWriter<SharedBuf>>, SharedBuf),
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Plain(Vec<u8>),
}

impl Chunk {
    fn packed_len(&self) -> usize {
        match self {
            Self::Zip(_, buf) => buf.len(),
            Self::Gzip(g) => g.get_ref().len(),
            Self::Plain(v) => v.len(),
        }
    }
}

pub struct ArchiveWriter {
    view: ExportView,
    format: Format,
    compression: Compression,
    password: Option<String>,
    limits: Limits,
    modified: zip::DateTime,
    state: WriterState,
    rows: RowEncoder,
    chunk: Option<Chunk>,
    chunk_raw: usize,
    rowbuf: Vec<u8>,
}

const EOCD_LEN: usize = 22;
const CD_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl ArchiveWriter {
    /// A writer continuing from `state` (the default state starts a new archive).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        view: ExportView,
        format: Format,
        compression: Compression,
        tz: Option<Tz>,
        password: Option<String>,
        created: DateTime<Utc>,
        limits: Limits,
        state: WriterState,
    ) -> Self {
        let local = match tz {
            Some(z) => created.with_timezone(&z).naive_local(),
            None => created.naive_utc(),
        };
        let modified = zip::DateTime::from_date_and_time(
            local.year().clamp(1980, 2107) as u16,
            local.month() as u8,
            local.day() as u8,
            local.hour() as u8,
            local.minute() as u8,
            local.second() as u8,
        )
        .unwrap_or_default();
        Self {
            view,
            format,
            compression,
            password,
            limits,
            modified,
            state,
            rows: RowEncoder::new(view, format, tz),
            chunk: None,
            chunk_raw: 0,
            rowbuf: Vec::with_capacity(1 << 18),
        }
    }

    pub fn state(&self) -> &WriterState {
        &self.state
    }

    /// The name of the file inside the archive (ZIP) or of the download (gzip, none).
    pub fn file_name(view: ExportView, format: Format, compression: Compression, chunk: Option<u32>) -> String {
        let ext = match format {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        };
        match (compression, chunk) {
            (Compression::Zip, Some(n)) => format!("{}-{:04}.{ext}", view.as_str(), n),
            (Compression::Zip, None) => format!("{}.zip", view.as_str()),
            (Compression::Gzip, _) => format!("{}.{ext}.gz", view.as_str()),
            (Compression::None, _) => format!("{}.{ext}", view.as_str()),
        }
    }

    fn open_chunk(&mut self) -> Result<(), WriteError> {
        let cap = self.limits.part_bytes + (1 << 20);
        let first = self.state.chunks == 0;
        let mut chunk = match self.compression {
            Compression::Zip => {
                let buf = SharedBuf::with_capacity(cap);
                let mut zip = ZipWriter::new(buf.clone());
                let name = Self::file_name(self.view, self.format, self.compression, Some(self.state.chunks + 1));
                let opts = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .compression_level(Some(i64::from(self.limits.level)))
                    .last_modified_time(self.modified)
                    .unix_permissions(0o644);
                match &self.password {
                    Some(pw) => zip.start_file(name, opts.with_aes_encryption(zip::AesMode::Aes256, pw))?,
                    None => zip.start_file(name, opts)?,
                }
                Chunk::Zip(Box::new(zip), buf)
            }
            Compression::Gzip => Chunk::Gzip(Box::new(GzEncoder::new(
                Vec::with_capacity(cap),
                flate2::Compression::new(self.limits.level),
            ))),
            Compression::None => Chunk::Plain(Vec::with_capacity(cap)),
        };
        // Every ZIP entry is a complete file with its header; gzip and plain output is one file.
        self.rowbuf.clear();
        if self.compression == Compression::Zip || first {
            self.rows.header(&mut self.rowbuf);
        }
        write_to(&mut chunk, &self.rowbuf)?;
        self.chunk_raw = self.rowbuf.len();
        self.state.raw_bytes += self.rowbuf.len() as u64;
        self.chunk = Some(chunk);
        Ok(())
    }

    /// Adds records (in export order) to the current chunk.
    pub fn write(&mut self, records: &[Record]) -> Result<(), WriteError> {
        if self.chunk.is_none() {
            self.open_chunk()?;
        }
        self.rowbuf.clear();
        for r in records {
            self.rows.row(r, &mut self.rowbuf);
        }
        let chunk = self.chunk.as_mut().expect("opened above");
        write_to(chunk, &self.rowbuf)?;
        self.chunk_raw += self.rowbuf.len();
        self.state.raw_bytes += self.rowbuf.len() as u64;
        Ok(())
    }

    /// Whether the current chunk should be closed and uploaded now.
    pub fn is_full(&self) -> bool {
        self.chunk
            .as_ref()
            .is_some_and(|c| c.packed_len() >= self.limits.part_bytes || self.chunk_raw >= self.limits.entry_raw_bytes)
    }

    /// Closes the current chunk and returns the bytes of the next part; with `last`, the part
    /// also ends the archive (the ZIP directory). `None` when there is nothing left to upload.
    pub fn finish_part(&mut self, last: bool) -> Result<Option<Vec<u8>>, WriteError> {
        if self.chunk.is_none() && self.state.chunks == 0 {
            // An empty export is still a file with its header row.
            self.open_chunk()?;
        }
        let closed = self.chunk.is_some();
        let mut part = match self.chunk.take() {
            None => Vec::new(),
            Some(Chunk::Plain(v)) => v,
            Some(Chunk::Gzip(g)) => g.finish()?,
            Some(Chunk::Zip(zip, buf)) => {
                zip.finish()?;
                let mut bytes = buf.take();
                let entry = self.split_entry(&mut bytes)?;
                self.state.directory.push(B64.encode(entry));
                bytes
            }
        };
        if closed {
            self.state.chunks += 1;
        }
        self.chunk_raw = 0;
        if last && self.compression == Compression::Zip {
            self.append_directory(&mut part)?;
        }
        if part.is_empty() {
            return Ok(None);
        }
        self.state.offset += part.len() as u64;
        Ok(Some(part))
    }

    /// Splits a one-entry archive into its entry (left in `bytes`) and its directory record,
    /// patched with the entry's offset in the whole archive.
    fn split_entry(&self, bytes: &mut Vec<u8>) -> Result<Vec<u8>, WriteError> {
        let bad = |m: &str| WriteError::Corrupt(format!("unexpected ZIP layout: {m}"));
        if bytes.len() < EOCD_LEN || u32_at(bytes, bytes.len() - EOCD_LEN) != EOCD_SIG {
            return Err(bad("no end-of-directory record"));
        }
        let eocd = bytes.len() - EOCD_LEN;
        if u16_at(bytes, eocd + 10) != 1 {
            return Err(bad("not exactly one entry"));
        }
        let cd_size = u32_at(bytes, eocd + 12) as usize;
        let cd_offset = u32_at(bytes, eocd + 16) as usize;
        if cd_offset + cd_size != eocd || u32_at(bytes, cd_offset) != CD_SIG {
            return Err(bad("directory not where the end record says"));
        }
        let mut record = bytes[cd_offset..eocd].to_vec();
        let offset = u32::try_from(self.state.offset).map_err(|_| WriteError::TooLarge)?;
        if offset == u32::MAX {
            return Err(WriteError::TooLarge);
        }
        record[42..46].copy_from_slice(&offset.to_le_bytes());
        bytes.truncate(cd_offset);
        Ok(record)
    }

    fn append_directory(&self, part: &mut Vec<u8>) -> Result<(), WriteError> {
        let cd_start = self.state.offset + part.len() as u64;
        let entries = u16::try_from(self.state.directory.len()).map_err(|_| WriteError::TooLarge)?;
        let mut cd_size = 0u64;
        for rec in &self.state.directory {
            let rec = B64.decode(rec).map_err(|e| WriteError::Corrupt(e.to_string()))?;
            cd_size += rec.len() as u64;
            part.extend_from_slice(&rec);
        }
        let cd_start = u32::try_from(cd_start).map_err(|_| WriteError::TooLarge)?;
        let cd_size = u32::try_from(cd_size).map_err(|_| WriteError::TooLarge)?;
        part.extend_from_slice(&EOCD_SIG.to_le_bytes());
        part.extend_from_slice(&[0, 0, 0, 0]); // this disk, the directory's disk
        part.extend_from_slice(&entries.to_le_bytes());
        part.extend_from_slice(&entries.to_le_bytes());
        part.extend_from_slice(&cd_size.to_le_bytes());
        part.extend_from_slice(&cd_start.to_le_bytes());
        part.extend_from_slice(&[0, 0]); // no comment
        Ok(())
    }
}

fn write_to(chunk: &mut Chunk, bytes: &[u8]) -> std::io::Result<()> {
    match chunk {
        Chunk::Zip(zip, _) => zip.write_all(bytes),
        Chunk::Gzip(g) => g.write_all(bytes),
        Chunk::Plain(v) => {
            v.extend_from_slice(bytes);
            Ok(())
        }
    }
}
