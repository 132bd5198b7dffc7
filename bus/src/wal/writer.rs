//! The WAL writer thread: group commit, segment roll, and recovery from failed writes.

use super::segment::{self, HEADER_LEN};
use super::{DurableEnd, Shared, WalConfig};
use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};

/// One record waiting to be written, and where to send its offset.
#[derive(Debug)]
pub(super) struct Request {
    pub payload: Vec<u8>,
    pub done: oneshot::Sender<Result<u64>>,
}

/// Checks the newest segment (cutting a torn tail) or creates the first one; starts a fresh
/// segment at `start_offset` when the log ends below it (its records were all processed).
pub(super) fn recover_active(
    dir: &Path,
    mut segments: Vec<u64>,
    start_offset: u64,
) -> Result<(Vec<u64>, DurableEnd)> {
    let io = |op| move |source| Error::Io { op, source };
    let recovered = match segments.last() {
        Some(&last) => {
            let r = segment::recover(dir, last).map_err(io("recover segment"))?;
            (last, r.next_offset, r.len)
        }
        None => (start_offset, start_offset, 0),
    };
    let (active_first, next_offset, active_len) = recovered;
    if segments.is_empty() || next_offset < start_offset {
        let first = next_offset.max(start_offset);
        drop(segment::create(dir, first).map_err(io("create segment"))?);
        segments.push(first);
        return Ok((
            segments,
            DurableEnd {
                next_offset: first,
                active_first: first,
                active_len: HEADER_LEN,
            },
        ));
    }
    Ok((
        segments,
        DurableEnd {
            next_offset,
            active_first,
            active_len,
        },
    ))
}

/// Starts the writer thread on the active segment.
pub(super) fn spawn(
    config: WalConfig,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    durable: watch::Sender<DurableEnd>,
) -> Result<()> {
    let end = *durable.borrow();
    let file =
        segment::open_for_append(&config.dir, end.active_first).map_err(|source| Error::Io {
            op: "open active segment",
            source,
        })?;
    let writer = Writer {
        config,
        shared,
        durable,
        file,
        end,
        buf: Vec::with_capacity(1 << 20),
    };
    std::thread::Builder::new()
        .name("wal-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|source| Error::Io {
            op: "spawn writer thread",
            source,
        })?;
    Ok(())
}

struct Writer {
    config: WalConfig,
    shared: Arc<Shared>,
    durable: watch::Sender<DurableEnd>,
    file: File,
    end: DurableEnd,
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            self.buf.clear();
            self.add(&mut group, first);
            // Everything that queued up while the last fsync ran joins this group.
            while self.buf.len() < self.config.max_group_bytes {
                match rx.try_recv() {
                    Ok(req) => self.add(&mut group, req),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
        }
    }

    fn add(&mut self, group: &mut Vec<oneshot::Sender<Result<u64>>>, req: Request) {
        let offset = self.end.next_offset + group.len() as u64;
        segment::encode_frame(&mut self.buf, offset, &req.payload);
        group.push(req.done);
    }

    /// Writes and fsyncs the group, then answers every appender.
    fn commit(&mut self, group: &mut Vec<oneshot::Sender<Result<u64>>>) {
        let started = Instant::now();
        let written = self
            .file
            .write_all_at(&self.buf, self.end.active_len)
            .and_then(|()| self.file.sync_data());
        let m = &self.shared.metrics;
        m.fsync_seconds.observe(started.elapsed().as_secs_f64());
        match written {
            Ok(()) => {
                let first = self.end.next_offset;
                self.end.next_offset += group.len() as u64;
                self.end.active_len += self.buf.len() as u64;
                let retained = self
                    .shared
                    .retained_bytes
                    .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
                m.retained_bytes
                    .set((retained + self.buf.len() as u64) as i64);
                m.records.inc_by(group.len() as u64);
                m.bytes.inc_by(self.buf.len() as u64);
                m.group_records.observe(group.len() as f64);
                self.maybe_roll();
                self.durable.send_replace(self.end);
                for (i, done) in group.drain(..).enumerate() {
                    let _ = done.send(Ok(first + i as u64));
                }
            }
            Err(e) => {
                m.write_errors.inc();
                tracing::error!(error = %e, records = group.len(), "WAL append failed");
                self.undo_partial_write();
                let disk_full = matches!(e.raw_os_error(), Some(28 | 122));
                for done in group.drain(..) {
                    let err = if disk_full {
                        Error::DiskFull
                    } else {
                        Error::WriteFailed(e.to_string())
                    };
                    let _ = done.send(Err(err));
                }
            }
        }
    }

    /// Cuts whatever part of a failed group reached the file, so the next group starts on a
    /// frame boundary. Crash window: if the process dies before this, start-up recovery cuts the
    /// same bytes (their checksums do not hold or they are past the last good frame) — those
    /// records were never acknowledged.
    fn undo_partial_write(&mut self) {
        let cut = self
            .file
            .set_len(self.end.active_len)
            .and_then(|()| self.file.sync_all());
        if let Err(e) = cut {
            tracing::error!(error = %e, "could not cut a failed WAL write; will retry");
        }
    }

    /// Starts a new segment once the active one is full. A failure (disk full) keeps writing
    /// to the current segment and tries again after the next group.
    fn maybe_roll(&mut self) {
        if self.end.active_len < self.config.segment_bytes {
            return;
        }
        let first = self.end.next_offset;
        let file = match segment::create(&self.config.dir, first)
            .and_then(|_| segment::open_for_append(&self.config.dir, first))
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "could not start a new WAL segment");
                let _ = std::fs::remove_file(segment::path(&self.config.dir, first));
                return;
            }
        };
        if let Ok(mut segs) = self.shared.segments.lock() {
            segs.push(first);
        }
        self.shared
            .retained_bytes
            .fetch_add(HEADER_LEN, Ordering::Relaxed);
        self.file = file;
        self.end.active_first = first;
        self.end.active_len = HEADER_LEN;
    }
}
