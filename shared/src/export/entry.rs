//! One entry of an archive — a ZIP file or a gzip member — and the cores that compress entries.
//!
//! `EntryFormat` holds everything entries share (wrapper, names, DOS time, password), so
//! compressing an entry needs nothing from the writer: its bytes (the ZIP local header and
//! data, or the gzip member) are the same whichever thread makes them, and only its offset is
//! set when the writer places it in the part. `Pipeline` runs up to `width` entries at once,
//! one thread each, and hands them back in the order they were started, which is the archive's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

use super::deflate::{Deflater, Wrapper};
use super::rows::ExportView;
use super::writer::{ArchiveWriter, WriteError, ZipEntry};
use super::{Compression, Format};

pub(super) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(super) const CD_SIG: u32 = 0x0201_4b50;
/// The ZIP64 extended-information extra field's id.
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// AE-2: salt (16 for AES-256) + password verifier (2) before the data, code (10) after it.
const AES_SALT: usize = 16;
/// WinZip's AES extra field: id 0x9901, 7 bytes: vendor version 2 (AE-2), "AE", strength 3
/// (AES-256), the real method (8, deflate).
pub(super) const AES_EXTRA: [u8; 11] = [0x01, 0x99, 7, 0, 2, 0, b'A', b'E', 3, 8, 0];
const METHOD_DEFLATE: u16 = 8;
const METHOD_AES: u16 = 99;

type Aes256Ctr = ctr::Ctr128LE<aes::Aes256>;

/// What every entry of one archive shares.
#[derive(Clone)]
pub(super) struct EntryFormat {
    /// `Zip` or `Gzip` (nothing is an entry when nothing is compressed).
    pub compression: Compression,
    pub view: ExportView,
    pub format: Format,
    pub password: Option<String>,
    /// DOS time and date of every ZIP entry: the export's creation, in its time zone.
    pub dos_time: u16,
    pub dos_date: u16,
    pub zip64_from: u64,
    /// Tests only: the entry whose compression panics, as a fault in another thread would.
    #[cfg(test)]
    pub panic_at: Option<u32>,
}

impl EntryFormat {
    /// Appends entry `number` (its rows `raw`, compressed with `deflater`) to `out` and returns
    /// its directory record, whose offset is where in `out` it starts: a ZIP local header then
    /// (AE-2) salt, verifier, the encrypted deflate data and the authentication code, or the
    /// deflate data alone; or one gzip member (whose record nobody keeps).
    pub fn compress(&self, deflater: &mut Deflater, raw: &[u8], number: u32, out: &mut Vec<u8>) -> ZipEntry {
        #[cfg(test)]
        assert_ne!(self.panic_at, Some(number), "injected fault in entry {number}");
        let at = out.len();
        if self.compression != Compression::Zip {
            let n = deflater.compress_into(Wrapper::Gzip, raw, out);
            return ZipEntry(at as u64, n as u64, raw.len() as u64, 0);
        }
        // An entry's rows are at most `entry_raw_bytes` (8 MiB) plus one page, so its sizes
        // always fit the local header; only offsets and counts may need ZIP64 (the directory).
        // AE-2 leaves the CRC out (the authentication code covers the data).
        let crc = if self.password.is_some() { 0 } else { crc32fast::hash(raw) };
        let mut entry = ZipEntry(at as u64, 0, raw.len() as u64, crc);
        self.header(out, LOCAL_SIG, &entry, number);
        let data_at = out.len();
        match &self.password {
            Some(pw) => {
                let mut salt = [0u8; AES_SALT];
                rand::rng().fill_bytes(&mut salt);
                let mut keys = [0u8; 66];
                pbkdf2::pbkdf2_hmac::<Sha1>(pw.as_bytes(), &salt, 1000, &mut keys);
                out.extend_from_slice(&salt);
                out.extend_from_slice(&keys[64..66]);
                let n = deflater.compress_into(Wrapper::Raw, raw, out);
                let data = &mut out[data_at + AES_SALT + 2..];
                debug_assert_eq!(data.len(), n);
                let mut iv = [0u8; 16];
                iv[0] = 1;
                Aes256Ctr::new((&keys[..32]).into(), (&iv).into()).apply_keystream(data);
                let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&keys[32..64]).expect("any key length");
                mac.update(data);
                out.extend_from_slice(&mac.finalize().into_bytes()[..10]);
            }
            None => {
                deflater.compress_into(Wrapper::Raw, raw, out);
            }
        }
        entry.1 = (out.len() - data_at) as u64;
        // The local header's compressed size: after signature, versions, flags, method, time,
        // date and CRC.
        out[at + 18..at + 22].copy_from_slice(&(entry.1 as u32).to_le_bytes());
        entry
    }

    /// A local header (`LOCAL_SIG`) or central-directory record (`CD_SIG`) for entry `number`.
    /// A directory record whose local header lies at or past `zip64_from` holds 0xFFFFFFFF as
    /// the offset and the real one in a ZIP64 extra field.
    pub fn header(&self, p: &mut Vec<u8>, sig: u32, e: &ZipEntry, number: u32) {
        let encrypted = self.password.is_some();
        let name = ArchiveWriter::file_name(self.view, self.format, Compression::Zip, Some(number));
        let zip64 = sig == CD_SIG && e.0 >= self.zip64_from;
        // 2.0 deflate, 4.5 ZIP64, 5.1 AES.
        let version: u16 = if encrypted {
            51
        } else if zip64 {
            45
        } else {
            20
        };
        let mut extra = Vec::new();
        if zip64 {
            extra.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
            extra.extend_from_slice(&8u16.to_le_bytes());
            extra.extend_from_slice(&e.0.to_le_bytes());
        }
        if encrypted {
            extra.extend_from_slice(&AES_EXTRA);
        }
        p.extend_from_slice(&sig.to_le_bytes());
        if sig == CD_SIG {
            p.extend_from_slice(&((3 << 8) | version).to_le_bytes()); // made by: Unix
        }
        p.extend_from_slice(&version.to_le_bytes());
        p.extend_from_slice(&u16::from(encrypted).to_le_bytes()); // flags: bit 0 encrypted
        p.extend_from_slice(&(if encrypted { METHOD_AES } else { METHOD_DEFLATE }).to_le_bytes());
        p.extend_from_slice(&self.dos_time.to_le_bytes());
        p.extend_from_slice(&self.dos_date.to_le_bytes());
        p.extend_from_slice(&e.3.to_le_bytes());
        p.extend_from_slice(&(e.1 as u32).to_le_bytes());
        p.extend_from_slice(&(e.2 as u32).to_le_bytes());
        p.extend_from_slice(&(name.len() as u16).to_le_bytes());
        p.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        if sig == CD_SIG {
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // comment length, disk, internal attributes
            p.extend_from_slice(&((0o100_644u32) << 16).to_le_bytes()); // a regular file, rw-r--r--
            p.extend_from_slice(&(if zip64 { u32::MAX } else { e.0 as u32 }).to_le_bytes());
        }
        p.extend_from_slice(name.as_bytes());
        p.extend_from_slice(&extra);
    }
}

/// One entry's compression on its own thread, and what it keeps for the next one: a compressor
/// (its tables) and buffers whose pages are already resident.
struct Job {
    deflater: Deflater,
    number: u32,
    raw: Vec<u8>,
    out: Vec<u8>,
    entry: ZipEntry,
}

/// The entries being compressed on other threads, oldest first: at most `width`, so with the
/// entry being filled by the caller at most `width + 1` entries of rows are held.
pub(super) struct Pipeline {
    width: usize,
    level: u32,
    format: Arc<EntryFormat>,
    running: VecDeque<JoinHandle<Job>>,
    /// Finished jobs, reused by the next entries.
    idle: Vec<Job>,
}

impl Pipeline {
    pub fn new(width: usize, level: u32, format: Arc<EntryFormat>) -> Self {
        Self { width: width.max(1), level, format, running: VecDeque::new(), idle: Vec::new() }
    }

    /// Starts compressing entry `number` from `raw` on another thread — after handing the
    /// oldest entries to `place` while `width` are running — and returns an empty buffer for
    /// the next entry's rows (a finished entry's, so its pages are reused).
    pub fn start(
        &mut self,
        number: u32,
        mut raw: Vec<u8>,
        mut place: impl FnMut(&[u8], ZipEntry),
    ) -> Result<Vec<u8>, WriteError> {
        while self.running.len() >= self.width {
            self.take_oldest(&mut place)?;
        }
        let mut job = match self.idle.pop() {
            Some(j) => j,
            None => Job {
                deflater: Deflater::new(self.level),
                number: 0,
                raw: Vec::new(),
                out: Vec::new(),
                entry: ZipEntry(0, 0, 0, 0),
            },
        };
        std::mem::swap(&mut job.raw, &mut raw);
        job.number = number;
        let format = Arc::clone(&self.format);
        // A thread per entry: 8 MiB of rows take ~0.07 s to compress, next to which starting a
        // thread costs nothing, and a panic stays in its handle instead of a pool's channel.
        let handle = std::thread::Builder::new().name("export-deflate".into()).spawn(move || {
            job.out.clear();
            job.entry = format.compress(&mut job.deflater, &job.raw, job.number, &mut job.out);
            job
        })?;
        self.running.push_back(handle);
        Ok(raw)
    }

    /// Hands finished entries to `place` in order: all of them with `wait` (a part is about to
    /// close), otherwise only those at the front that are already done.
    pub fn collect(&mut self, wait: bool, mut place: impl FnMut(&[u8], ZipEntry)) -> Result<(), WriteError> {
        while self.running.front().is_some_and(|h| wait || h.is_finished()) {
            self.take_oldest(&mut place)?;
        }
        Ok(())
    }

    fn take_oldest(&mut self, place: &mut impl FnMut(&[u8], ZipEntry)) -> Result<(), WriteError> {
        let Some(handle) = self.running.pop_front() else { return Ok(()) };
        let mut job = handle.join().map_err(|panic| WriteError::Compressor(panic_text(&*panic)))?;
        place(&job.out, job.entry);
        job.raw.clear();
        self.idle.push(job);
        Ok(())
    }
}

/// A panic's message, for the task's failure reason.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

// Dropping the pipeline (a failed export) detaches its threads: each ends after its one entry
// and frees its buffers, so an async caller is never blocked on them.
