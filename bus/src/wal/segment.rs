//! One WAL segment file: its on-disk format, how frames are encoded, and how a segment is
//! scanned and repaired after a crash.
//!
//! Layout (all integers little-endian):
//! ```text
//! header  : magic "LSWAL\0" (6) | version u16 (2) | first offset u64 (8)          = 16 bytes
//! frame   : payload len u32 (4) | crc32 u32 (4) | offset u64 (8) | payload (len)
//! ```
//! The CRC covers the offset and the payload, so a frame torn anywhere (length, offset or body)
//! fails its check. Offsets are consecutive: frame `n` of a segment has offset `first + n`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 6] = b"LSWAL\0";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: u64 = 16;
pub const FRAME_HEADER_LEN: usize = 16;
/// A frame longer than this is treated as corruption, not as a huge record.
pub const MAX_FRAME_PAYLOAD: u32 = 256 * 1024 * 1024;

/// File name of the segment whose first frame has offset `first`.
pub fn file_name(first: u64) -> String {
    format!("{first:020}.wal")
}

/// The first offset encoded in a segment file name, or `None` for other files.
pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".wal")?.parse().ok()
}

pub fn path(dir: &Path, first: u64) -> PathBuf {
    dir.join(file_name(first))
}

pub fn encode_header(first: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..6].copy_from_slice(MAGIC);
    h[6..8].copy_from_slice(&VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&first.to_le_bytes());
    h
}

/// Appends one frame to `buf`.
pub fn encode_frame(buf: &mut Vec<u8>, offset: u64, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&offset.to_le_bytes());
    crc.update(payload);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Creates a new, empty segment durably: the file with its header is fsync'd and so is the
/// directory entry, so a crash right after leaves either no file or a valid empty segment.
pub fn create(dir: &Path, first: u64) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .read(true)
        .append(true)
        .open(path(dir, first))?;
    f.write_all(&encode_header(first))?;
    f.sync_all()?;
    sync_dir(dir)?;
    Ok(f)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads frames sequentially from a segment, checking each one.
#[derive(Debug)]
pub struct FrameReader {
    reader: BufReader<File>,
    /// Byte position of the next frame.
    pos: u64,
    next_offset: u64,
}

/// What a reader found where it expected a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Frame {
        offset: u64,
        payload: Vec<u8>,
    },
    /// Clean end of data.
    End,
    /// Bytes that do not form a valid frame: a torn write or corruption, starting at `pos`.
    Invalid {
        pos: u64,
        reason: &'static str,
    },
}

impl FrameReader {
    /// Opens a segment and checks its header against the name-derived `first` offset.
    pub fn open(dir: &Path, first: u64) -> io::Result<Self> {
        let mut file = File::open(path(dir, first))?;
        let mut h = [0u8; HEADER_LEN as usize];
        file.read_exact(&mut h)?;
        if &h[..6] != MAGIC || u16::from_le_bytes([h[6], h[7]]) != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a LogStream WAL segment of a known version",
            ));
        }
        let mut hdr_first = [0u8; 8];
        hdr_first.copy_from_slice(&h[8..16]);
        if u64::from_le_bytes(hdr_first) != first {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "segment header offset differs from its file name",
            ));
        }
        Ok(Self {
            reader: BufReader::with_capacity(1 << 20, file),
            pos: HEADER_LEN,
            next_offset: first,
        })
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Reads the next frame. `limit` is the byte length known to be durable: nothing at or past
    /// it is read (the writer may be mid-append there).
    pub fn next(&mut self, limit: u64) -> io::Result<Next> {
        if self.pos >= limit {
            return Ok(Next::End);
        }
        if limit - self.pos < FRAME_HEADER_LEN as u64 {
            return Ok(self.invalid("short frame header"));
        }
        let mut h = [0u8; FRAME_HEADER_LEN];
        if let Err(e) = self.reader.read_exact(&mut h) {
            return eof_as(e, self.invalid("short frame header"));
        }
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&h[8..16]);
        let offset = u64::from_le_bytes(off);
        if len > MAX_FRAME_PAYLOAD || self.pos + FRAME_HEADER_LEN as u64 + len as u64 > limit {
            return Ok(self.invalid("frame length past the end of data"));
        }
        let mut payload = vec![0u8; len as usize];
        if let Err(e) = self.reader.read_exact(&mut payload) {
            return eof_as(e, self.invalid("short frame payload"));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&off);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            return Ok(self.invalid("checksum mismatch"));
        }
        if offset != self.next_offset {
            return Ok(self.invalid("offset out of sequence"));
        }
        self.pos += FRAME_HEADER_LEN as u64 + len as u64;
        self.next_offset += 1;
        Ok(Next::Frame { offset, payload })
    }

    fn invalid(&self, reason: &'static str) -> Next {
        Next::Invalid {
            pos: self.pos,
            reason,
        }
    }
}

fn eof_as(e: io::Error, next: Next) -> io::Result<Next> {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Ok(next)
    } else {
        Err(e)
    }
}

/// The outcome of checking the last segment at start-up.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Offset the next appended frame gets.
    pub next_offset: u64,
    /// Valid length of the file.
    pub len: u64,
    /// Bytes cut off the end (a torn tail), 0 when the file was clean.
    pub truncated_bytes: u64,
}

/// Scans a whole segment and truncates it after its last valid frame.
///
/// Crash window: a write that reached the disk only in part leaves a tail whose checksum or
/// length does not hold; that tail was never acknowledged (acks follow fsync of whole frames),
/// so cutting it loses nothing that a client was told is durable.
pub fn recover(dir: &Path, first: u64) -> io::Result<Recovered> {
    let file_len = std::fs::metadata(path(dir, first))?.len();
    if file_len < HEADER_LEN {
        // Torn while being created: no frame can be in it, so rewrite it empty.
        std::fs::remove_file(path(dir, first))?;
        drop(create(dir, first)?);
        return Ok(Recovered {
            next_offset: first,
            len: HEADER_LEN,
            truncated_bytes: file_len,
        });
    }
    let mut reader = FrameReader::open(dir, first)?;
    let end = loop {
        match reader.next(file_len)? {
            Next::Frame { .. } => continue,
            Next::End => break reader.position(),
            Next::Invalid { pos, reason } => {
                tracing::warn!(segment = first, pos, reason, "truncating torn WAL tail");
                break pos;
            }
        }
    };
    if end < file_len {
        let f = OpenOptions::new().write(true).open(path(dir, first))?;
        f.set_len(end)?;
        f.sync_all()?;
    }
    Ok(Recovered {
        next_offset: reader.next_offset(),
        len: end,
        truncated_bytes: file_len - end,
    })
}

/// Opens the active segment for appending at its recovered length.
pub fn open_for_append(dir: &Path, first: u64) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path(dir, first))?;
    f.seek(SeekFrom::End(0))?;
    Ok(f)
}
