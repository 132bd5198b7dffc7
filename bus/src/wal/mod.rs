//! The embedded write-ahead log: LogStream's bus on a single machine.
//!
//! One writer thread owns the active segment. Appenders hand it encoded records over a channel;
//! it takes every record waiting, writes them in one `write`, makes them durable with one
//! `fdatasync` (group commit) and only then answers each appender with its offset. Readers
//! (the processor) follow the durable end published on a watch channel, so they never see a
//! record that could still vanish in a crash.
//!
//! Crash windows and what covers them are described in `docs/architecture.md`; in short: a torn
//! tail is cut at start-up by [`segment::recover`], a half-created segment is rewritten, and
//! segments are deleted only below the offset the processor committed to object storage.

pub mod segment;
mod writer;

use crate::error::{Error, Result};
use crate::event::Batch;
use crate::metrics::WalMetrics;
use segment::{FrameReader, Next};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// Settings of the embedded WAL.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Directory holding the segment files.
    pub dir: PathBuf,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Appends are refused (bus full) while segments not yet trimmed exceed this size: the
    /// processor is behind, and buffering without bound would only move the failure later.
    pub max_retained_bytes: u64,
    /// The most bytes one group commit writes before it fsyncs.
    pub max_group_bytes: usize,
    /// Offset of the first record when the log is new, and the least offset the next record may
    /// get: set to the processor's committed offset so a lost or wiped WAL directory can never
    /// hand out offsets that storage already counts as processed.
    pub start_offset: u64,
}

impl WalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            max_retained_bytes: 2 * 1024 * 1024 * 1024,
            max_group_bytes: 16 * 1024 * 1024,
            start_offset: 0,
        }
    }
}

/// Where the log stands; shared by the writer, readers and `trim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableEnd {
    /// Offset the next record will get; every offset below it is durable.
    pub next_offset: u64,
    /// First offset of the active segment and its durable length in bytes.
    pub active_first: u64,
    pub active_len: u64,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    /// First offsets of all segments on disk, ascending; the last one is active.
    segments: Mutex<Vec<u64>>,
    /// Bytes of all segments on disk.
    retained_bytes: std::sync::atomic::AtomicU64,
    max_retained_bytes: u64,
    metrics: WalMetrics,
}

/// Handle to an open WAL. Cheap to clone; the writer thread stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Wal {
    shared: Arc<Shared>,
    tx: mpsc::Sender<writer::Request>,
    durable: watch::Receiver<DurableEnd>,
}

impl Wal {
    /// Opens (or creates) the WAL in `config.dir`, repairing a torn tail, and starts its writer.
    pub fn open(config: WalConfig, metrics: WalMetrics) -> Result<Self> {
        std::fs::create_dir_all(&config.dir).map_err(|source| Error::Open {
            path: config.dir.clone(),
            source,
        })?;
        let segments = list_segments(&config.dir)?;
        let (segments, recovered) =
            writer::recover_active(&config.dir, segments, config.start_offset)?;
        let retained = disk_bytes(&config.dir, &segments)?;
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            segments: Mutex::new(segments),
            retained_bytes: retained.into(),
            max_retained_bytes: config.max_retained_bytes,
            metrics,
        });
        shared.metrics.retained_bytes.set(retained as i64);
        let (durable_tx, durable) = watch::channel(recovered);
        let (tx, rx) = mpsc::channel(4096);
        writer::spawn(config, shared.clone(), rx, durable_tx)?;
        Ok(Self {
            shared,
            tx,
            durable,
        })
    }

    /// Appends one batch and returns its offset once it is durable on disk.
    pub async fn append(&self, batch: &Batch) -> Result<u64> {
        self.append_encoded(crate::codec::encode(batch)?).await
    }

    /// Appends an already encoded record (see [`decode`]).
    pub async fn append_encoded(&self, payload: Vec<u8>) -> Result<u64> {
        let retained = self
            .shared
            .retained_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        if retained > self.shared.max_retained_bytes {
            self.shared.metrics.rejected_full.inc();
            return Err(Error::Full {
                retained_bytes: retained,
                limit_bytes: self.shared.max_retained_bytes,
            });
        }
        let (done, answer) = oneshot::channel();
        self.tx
            .send(writer::Request { payload, done })
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// The durable end now.
    pub fn durable_end(&self) -> DurableEnd {
        *self.durable.borrow()
    }

    /// A watch that changes every time more records become durable.
    pub fn subscribe(&self) -> watch::Receiver<DurableEnd> {
        self.durable.clone()
    }

    /// A reader positioned at `offset`.
    pub fn reader(&self, offset: u64) -> WalReader {
        WalReader {
            shared: self.shared.clone(),
            durable: self.durable.clone(),
            next_offset: offset,
            current: None,
        }
    }

    /// Deletes every segment whose records all lie below `offset` (they are safely in object
    /// storage). The active segment is never deleted.
    pub fn trim_below(&self, offset: u64) -> Result<()> {
        let doomed: Vec<u64> = {
            let segs = self.shared.segments.lock().map_err(|_| Error::Poisoned)?;
            segs.windows(2)
                .filter(|w| w[1] <= offset)
                .map(|w| w[0])
                .collect()
        };
        for first in doomed {
            let p = segment::path(&self.shared.dir, first);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            // Remove from the list first: a reader that still has the file open keeps reading
            // it (unlinked files stay readable on Unix), a new reader cannot pick it any more.
            self.shared
                .segments
                .lock()
                .map_err(|_| Error::Poisoned)?
                .retain(|s| *s != first);
            std::fs::remove_file(&p).map_err(|source| Error::Io {
                op: "remove segment",
                source,
            })?;
            let left = self
                .shared
                .retained_bytes
                .fetch_sub(len, std::sync::atomic::Ordering::Relaxed)
                - len;
            self.shared.metrics.retained_bytes.set(left as i64);
            self.shared.metrics.segments_trimmed.inc();
        }
        Ok(())
    }

    /// First offset still on disk.
    pub fn first_offset(&self) -> u64 {
        self.shared
            .segments
            .lock()
            .map(|s| s.first().copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

pub use crate::codec::decode;

/// Reads durable records in offset order.
#[derive(Debug)]
pub struct WalReader {
    shared: Arc<Shared>,
    durable: watch::Receiver<DurableEnd>,
    next_offset: u64,
    current: Option<Current>,
}

/// The segment a reader is in; `closed_len` is its final length once it is no longer active.
#[derive(Debug)]
struct Current {
    first: u64,
    reader: FrameReader,
    closed_len: Option<u64>,
}

impl WalReader {
    /// Offset of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.next_offset
    }

    /// Waits until at least one record past the position is durable.
    pub async fn wait(&mut self) -> Result<()> {
        let target = self.next_offset;
        self.durable
            .wait_for(|d| d.next_offset > target)
            .await
            .map_err(|_| Error::Closed)?;
        Ok(())
    }

    /// Reads up to `max_bytes` of durable records (at least one if any is durable).
    /// Blocking file IO: call from a blocking context or accept short stalls.
    pub fn read(&mut self, max_bytes: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let end = *self.durable.borrow();
        let mut out = Vec::new();
        let mut bytes = 0;
        while self.next_offset < end.next_offset && (out.is_empty() || bytes < max_bytes) {
            let dir = self.shared.dir.clone();
            let cur = self.segment_for(self.next_offset)?;
            let first = cur.first;
            let limit = if first == end.active_first {
                end.active_len
            } else {
                // Closed segments never change again: their length is read once.
                match cur.closed_len {
                    Some(len) => len,
                    None => {
                        let len = std::fs::metadata(segment::path(&dir, first))
                            .map_err(|source| Error::Io {
                                op: "stat segment",
                                source,
                            })?
                            .len();
                        *cur.closed_len.insert(len)
                    }
                }
            };
            match cur.reader.next(limit).map_err(|source| Error::Io {
                op: "read segment",
                source,
            })? {
                Next::Frame { offset, payload } => {
                    bytes += payload.len();
                    self.next_offset = offset + 1;
                    out.push((offset, payload));
                }
                Next::End if first == end.active_first => break,
                // End of a closed segment: move on to the next one.
                Next::End => self.current = None,
                Next::Invalid { pos, reason } => {
                    return Err(Error::Corrupt {
                        segment: first,
                        pos,
                        reason,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The frame reader positioned at `offset`, opening and skipping as needed.
    fn segment_for(&mut self, offset: u64) -> Result<&mut Current> {
        let reusable = matches!(&self.current, Some(c) if c.reader.next_offset() == offset);
        if !reusable {
            let first = {
                let segs = self.shared.segments.lock().map_err(|_| Error::Poisoned)?;
                segs.iter().rev().find(|f| **f <= offset).copied()
            }
            .ok_or(Error::Trimmed { offset })?;
            let mut r = FrameReader::open(&self.shared.dir, first).map_err(|source| Error::Io {
                op: "open segment",
                source,
            })?;
            // Skip to `offset`; only durable frames lie before it, so no limit is needed.
            while r.next_offset() < offset {
                let next = r.next(u64::MAX).map_err(|source| Error::Io {
                    op: "read segment",
                    source,
                })?;
                if let Next::Invalid { pos, reason } = next {
                    return Err(Error::Corrupt {
                        segment: first,
                        pos,
                        reason,
                    });
                }
            }
            self.current = Some(Current {
                first,
                reader: r,
                closed_len: None,
            });
        }
        self.current.as_mut().ok_or(Error::Trimmed { offset })
    }
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let read = std::fs::read_dir(dir).map_err(|source| Error::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut firsts: Vec<u64> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| segment::parse_file_name(&e.file_name().to_string_lossy()))
        .collect();
    firsts.sort_unstable();
    Ok(firsts)
}

fn disk_bytes(dir: &Path, segments: &[u64]) -> Result<u64> {
    segments.iter().try_fold(0u64, |acc, first| {
        let len = std::fs::metadata(segment::path(dir, *first))
            .map_err(|source| Error::Io {
                op: "stat segment",
                source,
            })?
            .len();
        Ok(acc + len)
    })
}

#[cfg(test)]
mod tests;

/// The WAL is the whole bus of a standalone process: one partition named [`WAL_SOURCE`].
pub const WAL_SOURCE: &str = "wal";

#[async_trait::async_trait]
impl crate::Producer for Wal {
    async fn append(&self, batch: &Batch) -> Result<()> {
        Wal::append(self, batch).await.map(|_| ())
    }
}

impl crate::PartitionControl for Wal {
    fn end(&self) -> u64 {
        self.durable_end().next_offset
    }

    fn stored_below(&self, offset: u64) {
        if let Err(e) = self.trim_below(offset) {
            tracing::warn!(error = %e, offset, "could not trim the WAL; retrying after the next flush");
        }
    }
}

#[async_trait::async_trait]
impl crate::PartitionReader for WalReader {
    fn position(&self) -> u64 {
        self.next_offset
    }

    async fn next(&mut self, max_bytes: usize) -> Result<Vec<crate::Record>> {
        self.wait().await?;
        Ok(self
            .read(max_bytes)?
            .into_iter()
            .map(|(offset, payload)| crate::Record { offset, payload })
            .collect())
    }
}
