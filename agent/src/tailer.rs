//! One file being followed: reading what was appended, decoding it into log lines, cutting
//! them into requests, and knowing how far ingest has acknowledged.
//!
//! Offsets are file offsets of physical lines. A request ends at the decoder's safe offset, so
//! everything below its end is in it or in earlier requests, and nothing above. One request of
//! a file is in flight at a time: requests of a file reach ingest in order, which is what lets
//! the processors tell a replay (a request numbered at or below the last one) from new data.
//!
//! The file is read through the handle opened at discovery, so a rename (rotation) or an
//! unlink does not interrupt it; the tailer lets go once the file is no longer listed and was
//! read to its end. A file that shrinks below the read position, or that no longer starts
//! with the line it is known by after a read, was truncated in place (copytruncate), perhaps
//! rewritten already: reading goes on in the copy if one with the same fingerprint exists, and
//! what can no longer be read is counted as lost. Bytes are only taken in once the file was
//! seen to still start with its first line after they were read, so another file's content
//! written into the same inode is never shipped as this file's.

use crate::discover::PodFile;
use crate::format::{Decoder, DecoderConfig, LogLine};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// Bytes read from a file per step.
const READ_CHUNK: usize = 64 * 1024;

/// A request cut from a file: its lines and the offset it ends at (its number).
#[derive(Debug, Clone)]
pub struct Cut {
    pub lines: Vec<LogLine>,
    pub end: u64,
    pub bytes: usize,
}

/// The request of a file that ingest has not acknowledged yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflight {
    pub end: u64,
    pub bytes: u64,
    pub lines: u64,
    /// Size of the encoded body held until the acknowledgement (its lines' bytes until the
    /// body is built).
    pub held: usize,
}

/// What a decoded line costs beyond its text: the `LogLine` itself and the allocator's
/// header and rounding of the text. Counted so the memory budget bounds the heap, not only
/// the log bytes.
pub const LINE_OVERHEAD: usize = std::mem::size_of::<LogLine>() + 16;

/// Settings that shape requests.
#[derive(Debug, Clone)]
pub struct CutConfig {
    /// Cut a request once its lines hold this many bytes.
    pub max_bytes: usize,
    /// Cut a request at the latest this long after its first line was read.
    pub max_wait: Duration,
}

/// What one read step found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStep {
    pub bytes: u64,
    pub lines: u64,
    pub eof: bool,
    /// The file shrank below the read position, or no longer starts with the line it is
    /// known by (truncated and rewritten in place).
    pub truncated: bool,
}

#[derive(Debug)]
pub struct Tailer {
    pub fp: u64,
    pub file: PodFile,
    handle: File,
    /// Device and inode of the handle, to tell a rename from a copy.
    pub dev_ino: (u64, u64),
    /// Offset of the next byte to read from the handle.
    read_pos: u64,
    /// Bytes read after the last newline (an incomplete line), starting at `read_pos - buf.len()`.
    buf: Vec<u8>,
    decoder: Decoder,
    max_line_bytes: usize,
    pending: Vec<LogLine>,
    pending_bytes: usize,
    pending_since: Option<Instant>,
    /// Every byte below is acknowledged.
    pub acked: u64,
    /// The request in flight.
    pub inflight: Option<Inflight>,
    /// After a restart: the request that was in flight must be cut again at exactly this end.
    replay_end: Option<u64>,
    replay_cut: bool,
    /// The file is no longer listed (rotated away, deleted, compressed).
    pub gone: bool,
    /// The last read found no more data.
    pub at_eof: bool,
    /// The file's size at the last read step.
    pub size: u64,
    /// Truncated with no copy to go on in: finish what was read, then stop.
    pub ended: bool,
    /// The read buffer, kept between reads.
    chunk: Vec<u8>,
    /// The last [`Tailer::expire`] held the decoder's timeouts back: the file has bytes not
    /// read yet, which may hold what the decoder waits for.
    expiry_held: bool,
}

impl Tailer {
    /// Follows `handle` (the file `file`, fingerprint `fp`) from the acknowledged offset
    /// `acked`; `inflight` is the end of a request that may have reached ingest already.
    pub fn open(
        fp: u64,
        file: PodFile,
        handle: File,
        acked: u64,
        inflight: Option<u64>,
        decoder: DecoderConfig,
    ) -> std::io::Result<Self> {
        let meta = handle.metadata()?;
        let mut t = Self {
            fp,
            file,
            dev_ino: (meta.dev(), meta.ino()),
            handle,
            read_pos: 0,
            buf: Vec::new(),
            max_line_bytes: decoder.max_line_bytes,
            decoder: Decoder::new(decoder).resume_at(acked),
            pending: Vec::new(),
            pending_bytes: 0,
            pending_since: None,
            acked,
            inflight: None,
            replay_end: inflight.filter(|&e| e > acked),
            replay_cut: false,
            gone: false,
            at_eof: false,
            size: meta.len(),
            ended: false,
            chunk: Vec::new(),
            expiry_held: false,
        };
        t.seek(acked)?;
        Ok(t)
    }

    fn seek(&mut self, pos: u64) -> std::io::Result<()> {
        self.handle.seek(SeekFrom::Start(pos))?;
        self.read_pos = pos;
        self.buf.clear();
        Ok(())
    }

    /// Goes on reading in `copy` (same fingerprint, another inode) at the same position: the
    /// original was truncated after being copied.
    pub fn switch_to(&mut self, copy: PodFile, handle: File) -> std::io::Result<()> {
        let meta = handle.metadata()?;
        let pos = self.read_pos;
        self.handle = handle;
        self.dev_ino = (meta.dev(), meta.ino());
        self.file = copy;
        self.size = meta.len();
        self.handle.seek(SeekFrom::Start(pos))?;
        Ok(())
    }

    /// Bytes held in memory for this file (lines waiting or in flight, an incomplete line).
    pub fn memory(&self) -> usize {
        self.pending_bytes + self.inflight.map_or(0, |i| i.held) + self.buf.len()
    }

    /// Memory held by decoded lines waiting for a request (text and per-line overhead).
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The request in flight is encoded into `len` bytes, held until its acknowledgement.
    pub fn body_built(&mut self, len: usize) {
        if let Some(i) = &mut self.inflight {
            i.held = len;
        }
    }

    /// Bytes of the file not yet acknowledged.
    pub fn lag_bytes(&self) -> u64 {
        self.size.saturating_sub(self.acked)
    }

    /// Whether reading more is useful now: room for another request's worth of lines, and not
    /// stopped at a replay cut.
    pub fn wants_read(&self, cut: &CutConfig) -> bool {
        !self.ended && !self.replay_cut && self.pending_bytes < cut.max_bytes
    }

    /// Reads and decodes up to `max` bytes. `wall_ns` stamps lines that carry no time.
    pub fn read(&mut self, max: usize, now: Instant, wall_ns: i64) -> std::io::Result<ReadStep> {
        let mut step = ReadStep::default();
        self.expiry_held = false;
        let size = self.handle.metadata()?.len();
        // Truncated in place and not written past the read position yet. A file truncated and
        // rewritten past it is caught after each read (see `read_into`).
        if size < self.read_pos {
            step.truncated = true;
            return Ok(step);
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.resize(READ_CHUNK, 0);
        let result = self.read_into(&mut chunk, max, now, wall_ns, &mut step);
        self.chunk = chunk;
        result?;
        if step.truncated {
            // What was taken in before was verified; `size` is the new content's, not ours.
            self.size = self.size.max(self.read_pos);
            self.recount(now);
            return Ok(step);
        }
        self.size = size;
        self.at_eof = step.eof;
        if step.eof {
            let before = self.pending.len();
            self.decoder.flush_expired(now, &mut self.pending);
            step.lines += (self.pending.len() - before) as u64;
        }
        self.recount(now);
        Ok(step)
    }

    fn read_into(
        &mut self,
        chunk: &mut [u8],
        max: usize,
        now: Instant,
        wall_ns: i64,
        step: &mut ReadStep,
    ) -> std::io::Result<()> {
        let chunk = &mut chunk[..READ_CHUNK.min(max.max(1))];
        while (step.bytes as usize) < max && !self.replay_cut {
            let n = self.handle.read(chunk)?;
            if n == 0 {
                step.eof = true;
                break;
            }
            // The bytes are this file's only if it still starts with the line it is known by
            // after they were read: truncated and rewritten in place (copytruncate) before or
            // during the read, they are another file's, which gets its own tailer. Checked
            // after the read, not before, so a rewrite between check and read cannot slip
            // through. Nothing of the chunk is kept then, and the read position stays.
            if !self.same_first_line()? {
                self.handle.seek(SeekFrom::Start(self.read_pos))?;
                step.truncated = true;
                break;
            }
            step.bytes += n as u64;
            let before = self.pending.len();
            let rewind = self.take_in(&chunk[..n], now, wall_ns);
            step.lines += (self.pending.len() - before) as u64;
            if let Some(pos) = rewind {
                self.seek(pos)?;
            }
        }
        Ok(())
    }

    /// Whether the file still starts with the line its fingerprint was taken of.
    fn same_first_line(&self) -> std::io::Result<bool> {
        Ok(crate::discover::fingerprint(&self.handle)? == Some(self.fp))
    }

    /// Splits read bytes into physical lines for the decoder. Returns where to read on from
    /// when it stopped early, at the end of a replayed request.
    fn take_in(&mut self, data: &[u8], now: Instant, wall_ns: i64) -> Option<u64> {
        let mut rest = data;
        // Offset of `buf[0]`.
        let mut line_start = self.read_pos - self.buf.len() as u64;
        self.read_pos += data.len() as u64;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let end = line_start + (self.buf.len() + i + 1) as u64;
            if self.buf.is_empty() {
                self.decoder
                    .push(&rest[..i], line_start, end, now, wall_ns, &mut self.pending);
            } else {
                self.buf.extend_from_slice(&rest[..i]);
                self.decoder
                    .push(&self.buf, line_start, end, now, wall_ns, &mut self.pending);
                self.buf.clear();
            }
            line_start = end;
            rest = &rest[i + 1..];
            if self.replay_end.is_some_and(|r| end >= r) {
                // The request that was in flight at the last stop ends here: cut it exactly,
                // whatever the decoder still holds, and read on only once it is sent.
                self.decoder.finish(&mut self.pending);
                self.replay_end = None;
                self.replay_cut = true;
                return Some(end);
            }
        }
        self.buf.extend_from_slice(rest);
        // A line without end in sight: hand it over in pieces rather than hold it all.
        let limit = self.max_line_bytes + 256;
        if self.buf.len() > limit {
            let end = line_start + self.buf.len() as u64;
            let line = std::mem::take(&mut self.buf);
            self.decoder
                .push(&line, line_start, end, now, wall_ns, &mut self.pending);
        }
        None
    }

    fn recount(&mut self, now: Instant) {
        self.pending_bytes = self
            .pending
            .iter()
            .map(|l| l.text.len() + LINE_OVERHEAD)
            .sum();
        if self.pending.is_empty() {
            self.pending_since = None;
        } else if self.pending_since.is_none() {
            self.pending_since = Some(now);
        }
    }

    /// Lets the decoder emit what waited past its timeout (a multiline event, a partial line),
    /// unless the file holds bytes not read yet. A timeout stands for a last piece (or next
    /// line) that never came; while reading is paused (back-pressure, a replay cut) it may well
    /// be in those bytes, and emitting now would ship one line as two (the last piece then goes
    /// out alone). Reading on decides; at the end of the file the timeout applies again.
    pub fn expire(&mut self, now: Instant) {
        self.expiry_held = self
            .handle
            .metadata()
            .is_ok_and(|m| m.len() > self.read_pos);
        if !self.expiry_held {
            self.decoder.flush_expired(now, &mut self.pending);
        }
        self.recount(now);
    }

    /// The file is done (gone and read to its end, or truncated away): emit everything.
    pub fn finish(&mut self, now: Instant) {
        if !self.buf.is_empty() {
            // A last line without newline in a file that will not grow any more.
            let start = self.read_pos - self.buf.len() as u64;
            let line = std::mem::take(&mut self.buf);
            self.decoder
                .push(&line, start, self.read_pos, now, 0, &mut self.pending);
        }
        self.decoder.finish(&mut self.pending);
        self.recount(now);
    }

    /// The next request, when none is in flight and one is due (full, old enough, `flush`, or
    /// the replay of the request in flight at the last stop).
    pub fn cut(&mut self, cfg: &CutConfig, now: Instant, flush: bool) -> Option<Cut> {
        if self.inflight.is_some() || self.pending.is_empty() {
            return None;
        }
        let due = flush
            || self.replay_cut
            || self.pending_bytes >= cfg.max_bytes
            || self
                .pending_since
                .is_some_and(|s| now.duration_since(s) >= cfg.max_wait);
        if !due {
            return None;
        }
        // Only lines wholly below the safe offset: a line of one stream emitted while the other
        // stream holds an unfinished line (a partial, a multiline event) above it waits, or a
        // restart from this request's end would read it again.
        let end = self.decoder.safe_offset();
        let (lines, held): (Vec<LogLine>, Vec<LogLine>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|l| l.end <= end);
        self.pending = held;
        if lines.is_empty() {
            // Try again a wait later, not in a busy loop.
            self.pending_since = Some(now);
            return None;
        }
        let bytes = lines.iter().map(|l| l.text.len()).sum();
        self.replay_cut = false;
        self.recount(now);
        self.inflight = Some(Inflight {
            end,
            bytes: bytes as u64,
            lines: lines.len() as u64,
            held: bytes,
        });
        Some(Cut { lines, end, bytes })
    }

    /// Ingest acknowledged the request in flight (or refused it for good).
    pub fn acknowledged(&mut self) {
        if let Some(i) = self.inflight.take() {
            self.acked = self.acked.max(i.end);
        }
    }

    /// Lines and bytes of the request in flight (0 when none).
    pub fn inflight_size(&self) -> (u64, u64) {
        self.inflight.map_or((0, 0), |i| (i.lines, i.bytes))
    }

    /// Nothing left to read, send or wait for: the tailer can go.
    pub fn drained(&self) -> bool {
        (self.gone && self.at_eof || self.ended)
            && self.pending.is_empty()
            && self.inflight.is_none()
            && self.buf.is_empty()
    }

    /// When the decoder next needs [`Tailer::expire`] or a request is due, for sleeping.
    pub fn next_deadline(&self, cfg: &CutConfig) -> Option<Instant> {
        let cut = self.pending_since.map(|s| s + cfg.max_wait);
        // A held-back timeout is no reason to wake up: the next read decides.
        let expiry = self.decoder.next_expiry().filter(|_| !self.expiry_held);
        match (cut, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Lines the decoder could not parse and kept as raw text.
    pub fn malformed(&self) -> u64 {
        self.decoder.stats().malformed
    }

    /// Position read up to (for lost-byte accounting after a truncation).
    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }
}

/// Opens `path` and fingerprints it: `None` while it has no complete first line (or vanished).
pub fn open_fingerprinted(path: &std::path::Path) -> std::io::Result<Option<(u64, File)>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(crate::discover::fingerprint(&f)?.map(|fp| (fp, f)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cri(id: u32) -> String {
        format!("2024-01-01T00:00:00.{id:09}Z stdout F line {id}\n")
    }

    fn lines(from: u32, to: u32) -> String {
        (from..to).map(cri).collect()
    }

    fn pod_file(path: &std::path::Path) -> PodFile {
        PodFile {
            path: path.to_path_buf(),
            namespace: "ns".into(),
            pod: "pod".into(),
            uid: "uid".into(),
            container: "app".into(),
            live: true,
        }
    }

    /// copytruncate, then the container writes on: the same inode holds a new file.
    fn truncate_and_rewrite(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(0).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn texts(t: &mut Tailer) -> Vec<String> {
        let cfg = CutConfig {
            max_bytes: 1 << 20,
            max_wait: Duration::ZERO,
        };
        let mut out = Vec::new();
        while let Some(c) = t.cut(&cfg, Instant::now(), true) {
            out.extend(c.lines.into_iter().map(|l| l.text));
            t.acknowledged();
        }
        out
    }

    fn open(path: &std::path::Path) -> Tailer {
        let (fp, handle) = open_fingerprinted(path).unwrap().unwrap();
        Tailer::open(
            fp,
            pod_file(path),
            handle,
            0,
            None,
            DecoderConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_file_rewritten_in_place_after_its_fingerprint_is_not_read_as_it() {
        // Found with one first line, then truncated and written past that before the first
        // read: the bytes are the next file's, which is known by another fingerprint.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, lines(0, 3)).unwrap();
        let mut t = open(&path);
        truncate_and_rewrite(&path, &lines(100, 120));
        let step = t.read(1 << 20, Instant::now(), 0).unwrap();
        assert!(step.truncated, "{step:?}");
        assert_eq!(t.read_pos(), 0);
        t.ended = true;
        t.finish(Instant::now());
        assert_eq!(texts(&mut t), Vec::<String>::new());
    }

    #[test]
    fn a_file_rewritten_in_place_past_the_read_position_mid_read_is_not_read_on() {
        // Read in part (not at its end), then truncated and rewritten longer: what follows the
        // read position is the next file's.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let first = lines(0, 3);
        std::fs::write(&path, &first).unwrap();
        let mut t = open(&path);
        let one = cri(0).len();
        let step = t.read(one, Instant::now(), 0).unwrap();
        assert!(!step.eof && !step.truncated, "{step:?}");
        truncate_and_rewrite(&path, &lines(100, 120));
        let step = t.read(1 << 20, Instant::now(), 0).unwrap();
        assert!(step.truncated, "{step:?}");
        assert_eq!(t.read_pos(), one as u64);
        t.ended = true;
        t.finish(Instant::now());
        assert_eq!(texts(&mut t), ["line 0"]);
    }

    fn piece(id: u32, tag: &str, text: &str) -> String {
        format!("2024-01-01T00:00:00.{id:09}Z stdout {tag} {text}\n")
    }

    #[test]
    fn a_partial_line_whose_last_piece_is_not_read_yet_does_not_time_out() {
        // Reading stopped (room, back-pressure) between the pieces of a split line, and stayed
        // paused past the partial timeout. The last piece is in the file, only not read: the
        // line must not go out in two halves (CI: `g="order 165350 shipped"` shipped alone).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let (p, f) = (piece(1, "P", "first half "), piece(1, "F", "second half"));
        std::fs::write(&path, [cri(0), p.clone(), f.clone()].concat()).unwrap();
        let mut t = open(&path);
        let now = Instant::now();
        // Up to the middle of the last piece: the first piece is in the decoder, the start
        // of the last one in the tailer's buffer.
        let max = cri(0).len() + p.len() + f.len() / 2;
        let step = t.read(max, now, 0).unwrap();
        assert!(!step.eof && !step.truncated, "{step:?}");
        assert_eq!(t.read_pos(), max as u64);
        let later = now + crate::format::PARTIAL_TIMEOUT * 2;
        t.expire(later);
        assert!(
            t.next_deadline(&CutConfig {
                max_bytes: 1 << 20,
                max_wait: Duration::from_secs(3600),
            })
            .is_none_or(|d| d > later),
            "no wake-up for a timeout that is held back"
        );
        let step = t.read(1 << 20, later, 0).unwrap();
        assert!(step.eof && !step.truncated, "{step:?}");
        assert_eq!(texts(&mut t), ["line 0", "first half second half"]);
    }

    #[test]
    fn a_partial_line_without_its_last_piece_in_the_file_still_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, [cri(0), piece(1, "P", "died mid-")].concat()).unwrap();
        let mut t = open(&path);
        let now = Instant::now();
        let step = t.read(1 << 20, now, 0).unwrap();
        assert!(step.eof, "{step:?}");
        t.expire(now + crate::format::PARTIAL_TIMEOUT);
        assert_eq!(texts(&mut t), ["line 0", "died mid-"]);
    }

    #[test]
    fn a_growing_file_is_read_on_and_a_copy_goes_on_where_the_original_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, lines(0, 2)).unwrap();
        let mut t = open(&path);
        t.read(1 << 20, Instant::now(), 0).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(lines(2, 4).as_bytes()).unwrap();
        let step = t.read(1 << 20, Instant::now(), 0).unwrap();
        assert!(step.eof && !step.truncated, "{step:?}");
        assert_eq!(texts(&mut t), ["line 0", "line 1", "line 2", "line 3"]);
        // copytruncate after more was written: the copy holds the rest.
        f.write_all(lines(4, 6).as_bytes()).unwrap();
        let copy = dir.path().join("0.log.20240101-000000");
        std::fs::copy(&path, &copy).unwrap();
        truncate_and_rewrite(&path, &lines(200, 210));
        let step = t.read(1 << 20, Instant::now(), 0).unwrap();
        assert!(step.truncated, "{step:?}");
        let (fp, handle) = open_fingerprinted(&copy).unwrap().unwrap();
        assert_eq!(fp, t.fp);
        t.switch_to(pod_file(&copy), handle).unwrap();
        let step = t.read(1 << 20, Instant::now(), 0).unwrap();
        assert!(step.eof && !step.truncated, "{step:?}");
        assert_eq!(texts(&mut t), ["line 4", "line 5"]);
    }
}
