//! The archive writer: records → rows → deflate → (AES-256 ZIP | gzip | plain), cut into parts
//! that each become one multipart-upload part, so memory stays flat whatever the export's size
//! and the writer can stop after any part and continue in another process.
//!
//! Rows are gathered into entries of about `entry_raw_bytes` (8 MiB; the archive's first three
//! 1, 2 and 4 MiB, so other cores start early), and each entry is compressed whole by libdeflate
//! — block splitting and near-optimal Huffman codes over the whole buffer, so level 5 gets within
//! 1.06× of 7-Zip's optimal-parsing deflate at more than 100 MB of CSV per second per core
//! (README "Measured"). A part is one or more whole entries (closed once it holds `part_bytes`,
//! S3's minimum being 5 MiB), so a part boundary is always an entry boundary and the checkpoint
//! needs no compressor state:
//!
//! - ZIP: one file per entry (`events-0001.csv`, `events-0002.csv`, … each with the header row,
//!   about 45,000 audit rows each, the first three fewer — every one opens in a spreadsheet). The
//!   ZIP structures are written here (APPNOTE 6.3.10): sizes are known before the data, so no
//!   data descriptors; with a password each entry is WinZip AE-2 (AES-256-CTR, PBKDF2-HMAC-SHA1
//!   with a fresh salt per entry, HMAC-SHA1 authentication code). The checkpoint keeps each
//!   entry's offset, sizes and CRC, from which the last part's central directory is written.
//! - gzip: one gzip member per entry; concatenated members are one valid gzip file (RFC 1952).
//! - none: the rows themselves.
//!
//! An entry closes at the end of a `write` call (a page of records) once it holds its limit
//! (`entry_limit`), so every entry covers whole pages and a part — whole entries — ends where a
//! page does: `committed_pages` tells the caller which page's cursor the checkpoint resumes at.
//!
//! With more than one core (`Limits::parallelism`), rows are encoded on the calling thread and
//! each full entry is compressed on a thread of its own (`entry::Pipeline`) while the next one
//! fills; finished entries are placed in the part in order. Closing a part does not wait for the
//! entries still compressing, nor close the one filling: they go into the next part, and the
//! checkpoint (`state`, `committed_pages`) covers the placed entries only, so no core idles at a
//! part boundary. The archive's bytes are those of one core; only where parts are cut may
//! differ. At most one entry per core is compressing, plus the one filling: memory grows by one
//! entry per core. (Encoding a page's rows on every core as well was tried: with every core
//! compressing, the extra threads only took turns with the compressors — 17 % more CPU, 1.6×
//! instead of 1.8× on two cores.)

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::deflate::Deflater;
#[cfg(test)]
use super::entry::{AES_EXTRA, LOCAL_SIG};
use super::entry::{CD_SIG, EntryFormat, Pipeline};
use super::rows::{ExportView, RowEncoder};
use super::{Compression, Format};
use crate::record::Record;

/// Entries before the entry limit is reached, each half the next (`ArchiveWriter::entry_limit`).
const RAMP: u32 = 3;

/// Sizes and effort of the writer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Archive bytes at which a part closes (S3 needs ≥ 5 MiB for every part but the last).
    pub part_bytes: usize,
    /// Row bytes at which an entry (ZIP file / gzip member) closes (the first three: an eighth,
    /// a quarter, a half of it); also what the writer holds in memory, and far below 4 GiB, so
    /// no entry needs ZIP64.
    /// 8 MiB: on several cores the last entry is compressed while the other cores have none,
    /// so smaller entries waste less (16 MiB: 1.71× on two cores, 8 MiB: 1.80×, archives
    /// 0.03 % larger).
    pub entry_raw_bytes: usize,
    /// libdeflate level (1–12). 5 is the measured balance: > 100 MB of CSV/s per core with
    /// archives 1.06× the size of 7-Zip's (see README "Measured"); 6 gives 1.05× at ~85 MB/s.
    pub level: u32,
    /// Offsets and sizes from which the ZIP directory is written with ZIP64 records (the 32-bit
    /// fields hold 0xFFFFFFFF); lowered only by tests, so small archives exercise ZIP64.
    pub zip64_from: u64,
    /// Parts after which the part size grows by another `part_bytes`: S3 takes at most 10,000
    /// parts, and with 8 MiB growing every 1,000 parts an upload reaches 440 GiB before that
    /// (parts of at most 80 MiB in memory).
    pub parts_per_step: u32,
    /// Entries compressed at once, each on its own thread; 0 (the default) is one per core the
    /// process may use (`std::thread::available_parallelism`: 2 on a Lambda function of
    /// 3,538 MB or more). Each costs about one more entry of rows in memory.
    pub parallelism: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            part_bytes: 8 * 1024 * 1024,
            entry_raw_bytes: 8 * 1024 * 1024,
            level: 5,
            zip64_from: u32::MAX as u64,
            parts_per_step: 1000,
            parallelism: 0,
        }
    }
}

impl Limits {
    /// How many entries are compressed at once: `parallelism`, or the cores available.
    pub fn cores(&self) -> usize {
        match self.parallelism {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Room reserved (not touched) beyond `entry_raw_bytes` for the rows of the page that fills an
/// entry: 1,000 records of up to 8 KiB of row each.
const PAGE_SLACK: usize = 8 << 20;

/// S3's limit on the parts of one multipart upload.
pub const MAX_PARTS: u32 = 10_000;

/// A closed ZIP entry, as the central directory needs it: offset of its local header, packed
/// size (with the AES salt, verifier and code), row bytes, CRC-32 (0 under AE-2). A JSON array,
/// so a checkpoint of a 4 GiB archive stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipEntry(pub u64, pub u64, pub u64, pub u32);

/// What must survive between parts: stored in the task's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriterState {
    /// Archive bytes already handed out as parts (where the next part starts).
    pub offset: u64,
    /// Entries (ZIP files / gzip members) in the parts handed out so far.
    pub chunks: u32,
    /// Parts handed out so far (checkpoints written before this field read as 0: their part
    /// size then grows a little later, which is harmless).
    #[serde(default)]
    pub parts: u32,
    /// Uncompressed row bytes in the parts handed out so far.
    pub raw_bytes: u64,
    /// The closed ZIP entries, for the central directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<ZipEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the export would need more than 10,000 upload parts (about 440 GiB); narrow the filter")]
    TooLarge,
    #[error("archive writer: {0}")]
    Io(#[from] std::io::Error),
    /// A thread formatting or compressing rows panicked (out of memory, a bug): the export
    /// fails with a reason instead of the process.
    #[error("archive writer: a thread formatting or compressing rows failed: {0}")]
    Compressor(String),
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;

/// Where an entry ends: its number, the row bytes written through it, and the pages (`write`
/// calls) whose rows it completes.
#[derive(Debug, Clone, Copy)]
struct Mark {
    number: u32,
    raw_bytes: u64,
    pages: u64,
}

/// The part being filled, and the checkpoint of what is placed in it and in the parts before.
struct Placed {
    /// Whole entries (or rows, uncompressed). libdeflate writes into its reserved capacity, so
    /// only the bytes of the part are ever resident.
    part: Vec<u8>,
    /// Through the last placed entry; `offset` and `parts` through the last part handed out.
    state: WriterState,
    /// Pages whose rows are all placed.
    pages: u64,
    /// Entries started and not yet placed, oldest first.
    pending: VecDeque<Mark>,
    zip: bool,
}

impl Placed {
    /// Appends an entry compressed elsewhere (`bytes`, its record's offset relative to them).
    fn place(&mut self, bytes: &[u8], mut e: ZipEntry) {
        e.0 += self.state.offset + self.part.len() as u64;
        self.part.extend_from_slice(bytes);
        self.placed(e);
    }

    /// Counts the oldest pending entry, already in the part at `e.0` (an archive offset), as
    /// placed.
    fn placed(&mut self, e: ZipEntry) {
        let m = self.pending.pop_front().expect("an entry is placed after it was started");
        if self.zip {
            self.state.entries.push(e);
        }
        self.state.chunks = m.number;
        self.state.raw_bytes = m.raw_bytes;
        self.pages = m.pages;
    }
}

pub struct ArchiveWriter {
    compression: Compression,
    limits: Limits,
    /// What every entry shares (names, DOS time, password), also for the directory's records.
    entry: Arc<EntryFormat>,
    rows: RowEncoder,
    /// Whether an entry (or, uncompressed, the file) has been started by this writer.
    open: bool,
    /// The open entry's rows.
    raw: Vec<u8>,
    /// Entries started (the last one's number) and row bytes written, placed or not.
    started: u32,
    raw_bytes: u64,
    /// `write` calls so far.
    pages: u64,
    placed: Placed,
    /// One core: entries are compressed on the calling thread, straight into the part.
    deflater: Option<Deflater>,
    /// More than one: entries are compressed on other threads.
    pipeline: Option<Pipeline>,
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
        let year = local.year().clamp(1980, 2107) as u16;
        let dos_date = ((year - 1980) << 9) | ((local.month() as u16) << 5) | local.day() as u16;
        let dos_time = ((local.hour() as u16) << 11) | ((local.minute() as u16) << 5) | (local.second() as u16 / 2);
        let entry = Arc::new(EntryFormat {
            compression,
            view,
            format,
            password,
            dos_time,
            dos_date,
            zip64_from: limits.zip64_from,
            #[cfg(test)]
            panic_at: None,
        });
        let compressed = compression != Compression::None;
        let cores = limits.cores();
        let deflater = (compressed && cores == 1).then(|| Deflater::new(limits.level));
        let pipeline = (compressed && cores > 1).then(|| Pipeline::new(cores, limits.level, Arc::clone(&entry)));
        Self {
            compression,
            limits,
            entry,
            rows: RowEncoder::new(view, format, tz),
            open: false,
            raw: Vec::new(),
            started: state.chunks,
            raw_bytes: state.raw_bytes,
            pages: 0,
            placed: Placed {
                part: Vec::new(),
                state,
                pages: 0,
                pending: VecDeque::new(),
                zip: compression == Compression::Zip,
            },
            deflater,
            pipeline,
        }
    }

    /// What a checkpoint keeps, taken after `finish_part`: the archive through the parts
    /// handed out. A new writer from it continues with the records after `committed_pages`.
    pub fn state(&self) -> &WriterState {
        &self.placed.state
    }

    /// How many of this writer's `write` calls (pages) the parts handed out hold completely:
    /// after `finish_part`, the checkpoint's cursor is the one after that page. Entries still
    /// compressing and the one filling are not among them (a resumed writer writes them again).
    pub fn committed_pages(&self) -> u64 {
        self.placed.pages
    }

    /// The name of the file inside the archive (ZIP) or of the download (gzip, none).
    pub fn file_name(view: ExportView, format: Format, compression: Compression, chunk: Option<u32>) -> String {
        let ext = match format {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Ocsf => "ocsf.jsonl",
        };
        match (compression, chunk) {
            (Compression::Zip, Some(n)) => format!("{}-{:04}.{ext}", view.as_str(), n),
            (Compression::Zip, None) => format!("{}.zip", view.as_str()),
            (Compression::Gzip, _) => format!("{}.{ext}.gz", view.as_str()),
            (Compression::None, _) => format!("{}.{ext}", view.as_str()),
        }
    }

    /// Runs the row encoder on where rows go (the open entry, or straight into the part when
    /// nothing is compressed), counting the row bytes.
    fn emit(&mut self, encode: impl FnOnce(&mut RowEncoder, &mut Vec<u8>)) {
        let sink = if self.compression == Compression::None { &mut self.placed.part } else { &mut self.raw };
        let before = sink.len();
        encode(&mut self.rows, sink);
        self.raw_bytes += (sink.len() - before) as u64;
    }

    /// Starts an entry: every ZIP file has the header row; gzip and plain output is one file.
    fn start(&mut self) {
        if self.open {
            return;
        }
        // Reserved, not touched: only the pages rows are written to become resident. An entry
        // closes after the page that fills it, so it holds up to one page more than the limit.
        if self.raw.capacity() == 0 && self.compression != Compression::None {
            self.raw.reserve(self.limits.entry_raw_bytes + PAGE_SLACK);
        }
        if self.placed.part.capacity() == 0 {
            // A part closes at its size, after an entry that may be a whole raw entry long.
            self.placed.part.reserve(self.part_size() + self.limits.entry_raw_bytes + PAGE_SLACK);
        }
        if self.compression == Compression::Zip || self.raw_bytes == 0 {
            self.emit(|rows, out| rows.header(out));
        }
        self.open = true;
    }

    /// Adds one page of records (in export order; a page is what a checkpoint's cursor can
    /// point after, so the rows held in memory are the entry limit plus one page). The open
    /// entry closes at the end of the call once it holds its limit (`entry_limit`).
    pub fn write(&mut self, records: &[Record]) -> Result<(), WriteError> {
        self.pages += 1;
        for r in records {
            self.start();
            self.emit(|rows, out| rows.row(r, out));
        }
        if self.open && self.compression != Compression::None && self.raw.len() >= self.entry_limit() {
            self.close_entry()?;
        }
        // Entries finished meanwhile count towards `is_full`.
        self.collect(false)
    }

    /// Row bytes at which the open entry closes: `entry_raw_bytes`, but an eighth, a quarter and
    /// a half of it for the archive's first three entries. With several cores, nothing is
    /// compressed until the first entry closes (at 8 MiB, ~35 ms of rows on one core while the
    /// others wait; at 1 MiB a few), and an export of a few MB is more than one entry. By entry
    /// number, so an archive is the same on any number of cores and after any checkpoint.
    fn entry_limit(&self) -> usize {
        self.limits.entry_raw_bytes >> RAMP.saturating_sub(self.started)
    }

    /// Whether the current part should be closed and uploaded now.
    pub fn is_full(&self) -> bool {
        self.placed.part.len() >= self.part_size()
    }

    /// The size at which the current part closes: `part_bytes`, one `part_bytes` more after
    /// every `parts_per_step` parts, so an upload never needs more than S3's 10,000 parts
    /// before it is hundreds of GiB long.
    fn part_size(&self) -> usize {
        let steps = (self.placed.state.parts / self.limits.parts_per_step.max(1)) as usize;
        self.limits.part_bytes.saturating_mul(steps + 1)
    }

    /// Hands out the current part: the entries placed so far (the rows themselves, uncompressed).
    /// Entries still compressing and the one filling stay for the next part, so no core waits
    /// here. With `last`, the open entry is closed, every entry placed and the archive ended
    /// (the ZIP directory). `None` when there is nothing to upload.
    pub fn finish_part(&mut self, last: bool) -> Result<Option<Vec<u8>>, WriteError> {
        if last {
            if !self.open && self.raw_bytes == 0 {
                // An empty export is still a file with its header row.
                self.start();
            }
            if self.open && self.compression != Compression::None {
                self.close_entry()?;
            }
            self.collect(true)?;
            if self.compression == Compression::Zip {
                self.append_directory();
            }
        }
        if self.compression == Compression::None {
            // Rows go straight into the part: everything written is in it.
            self.placed.state.raw_bytes = self.raw_bytes;
        }
        if last || self.compression == Compression::None {
            // Every page is in this part or before it (at the end, empty pages after the last
            // entry's too).
            self.placed.pages = self.pages;
        }
        let p = &mut self.placed;
        // Nothing left, unless the archive would have no part at all (JSON lines of nothing,
        // uncompressed): a multipart upload needs one, so it is one empty part.
        if p.part.is_empty() && !(last && p.state.offset == 0) {
            return Ok(None);
        }
        if p.state.parts >= MAX_PARTS {
            return Err(WriteError::TooLarge);
        }
        let part = std::mem::take(&mut p.part);
        p.state.offset += part.len() as u64;
        p.state.parts += 1;
        Ok(Some(part))
    }

    /// Closes the open entry: compressed into the part on this thread, or handed to the
    /// pipeline (which first places finished entries in the part if it is full).
    fn close_entry(&mut self) -> Result<(), WriteError> {
        self.started += 1;
        let number = self.started;
        self.open = false;
        self.placed.pending.push_back(Mark { number, raw_bytes: self.raw_bytes, pages: self.pages });
        if let Some(pipeline) = &mut self.pipeline {
            let raw = std::mem::take(&mut self.raw);
            let placed = &mut self.placed;
            self.raw = pipeline.start(number, raw, |bytes, e| placed.place(bytes, e))?;
        } else {
            let deflater = self.deflater.as_mut().expect("a deflater whenever something is compressed");
            let p = &mut self.placed;
            let mut e = self.entry.compress(deflater, &self.raw, number, &mut p.part);
            e.0 += p.state.offset;
            p.placed(e);
            self.raw.clear();
        }
        Ok(())
    }

    /// Places the entries other threads have finished in the part, in order; with `wait`, all
    /// of them (the archive is ending).
    fn collect(&mut self, wait: bool) -> Result<(), WriteError> {
        let placed = &mut self.placed;
        match &mut self.pipeline {
            Some(p) => p.collect(wait, |bytes, e| placed.place(bytes, e)),
            None => Ok(()),
        }
    }

    /// The central directory and its end record, from the entries in the checkpoint; past
    /// 65,534 entries or with the directory at or past `zip64_from`, preceded by the ZIP64 end
    /// record and its locator (APPNOTE 4.3.14-15), the classic record's fields saturated.
    fn append_directory(&mut self) {
        let Placed { part, state, .. } = &mut self.placed;
        let cd_start = state.offset + part.len() as u64;
        for (i, e) in state.entries.iter().enumerate() {
            self.entry.header(part, CD_SIG, e, i as u32 + 1);
        }
        let count = state.entries.len() as u64;
        let cd_end = state.offset + part.len() as u64;
        let cd_size = cd_end - cd_start;
        let from = self.limits.zip64_from;
        let zip64 = count >= 0xFFFF || cd_start >= from || cd_size >= from;
        let p = part;
        if zip64 {
            p.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            p.extend_from_slice(&44u64.to_le_bytes()); // the record's size after this field
            p.extend_from_slice(&((3u16 << 8) | 45).to_le_bytes()); // made by: Unix, 4.5
            p.extend_from_slice(&45u16.to_le_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // this disk, the directory's disk
            p.extend_from_slice(&count.to_le_bytes());
            p.extend_from_slice(&count.to_le_bytes());
            p.extend_from_slice(&cd_size.to_le_bytes());
            p.extend_from_slice(&cd_start.to_le_bytes());
            p.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            p.extend_from_slice(&0u32.to_le_bytes()); // the ZIP64 end record's disk
            p.extend_from_slice(&cd_end.to_le_bytes());
            p.extend_from_slice(&1u32.to_le_bytes()); // disks in all
        }
        let count16 = if zip64 { 0xFFFF } else { count as u16 };
        let word = |v: u64| if zip64 { u32::MAX } else { v as u32 };
        p.extend_from_slice(&EOCD_SIG.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]); // this disk, the directory's disk
        p.extend_from_slice(&count16.to_le_bytes());
        p.extend_from_slice(&count16.to_le_bytes());
        p.extend_from_slice(&word(cd_size).to_le_bytes());
        p.extend_from_slice(&word(cd_start).to_le_bytes());
        p.extend_from_slice(&[0, 0]); // no comment
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
