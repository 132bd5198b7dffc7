//! The processor's life: recover an interrupted flush, then follow the bus, publishing what it
//! reads to queries at once and flushing to storage by size or age.

use crate::error::{Error, Result};
use crate::flush::flush;
use crate::hot::{HotChunk, Snapshot};
use crate::metrics::ProcessorMetrics;
use logstream_bus::{Wal, WalReader};
use logstream_store::{Manifest, OffsetRange, Store};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Settings of a processor.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Retention class files are written under (pipelines route events to others later).
    pub class: String,
    /// Flush at the latest this long after the oldest unflushed event was read.
    pub flush_interval: Duration,
    /// Flush once this many bytes of log lines wait in memory.
    pub flush_line_bytes: u64,
    /// Bytes read from the bus per step.
    pub read_max_bytes: usize,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            class: "default".into(),
            flush_interval: Duration::from_secs(60),
            flush_line_bytes: 128 * 1024 * 1024,
            read_max_bytes: 4 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Inner {
    wal: Wal,
    store: Store,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    state: RwLock<Snapshot>,
    /// Offset of the next record to read: everything below is in `state`.
    consumed: tokio::sync::watch::Sender<u64>,
}

/// A running processor over the embedded WAL. Clone to share with queries.
#[derive(Debug, Clone)]
pub struct Processor {
    inner: Arc<Inner>,
}

type FlushTask = JoinHandle<Result<Manifest>>;

impl Processor {
    /// Finishes a flush a crash interrupted, trims the bus below the committed offset and
    /// returns a processor ready to [`run`](Self::run).
    pub async fn start(
        wal: Wal,
        store: Store,
        manifest: Manifest,
        config: ProcessorConfig,
        metrics: ProcessorMetrics,
    ) -> Result<Self> {
        let manifest = match manifest.pending {
            Some(range) => redo(&wal, &store, &manifest, range, &config, &metrics).await?,
            None => manifest,
        };
        let first = wal.first_offset();
        if first > manifest.next_offset {
            return Err(Error::Gap {
                expected: manifest.next_offset,
                found: first,
            });
        }
        wal.trim_below(manifest.next_offset)?;
        metrics.committed_offset.set(manifest.next_offset as i64);
        let consumed = tokio::sync::watch::Sender::new(manifest.next_offset);
        let state = RwLock::new(Snapshot {
            manifest: Arc::new(manifest),
            hot: Arc::new(Vec::new()),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                wal,
                store,
                config,
                metrics,
                state,
                consumed,
            }),
        })
    }

    /// What queries see now.
    pub fn snapshot(&self) -> Snapshot {
        match self.inner.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// What queries see once everything acknowledged before the call has been read (waiting
    /// at most `wait`): a client that pushed and then queries sees its own events.
    pub async fn fresh_snapshot(&self, wait: Duration) -> Snapshot {
        let target = self.inner.wal.durable_end().next_offset;
        let mut consumed = self.inner.consumed.subscribe();
        let _ = tokio::time::timeout(wait, consumed.wait_for(|c| *c >= target)).await;
        self.snapshot()
    }

    /// Follows the bus until `shutdown`, then flushes what it holds and returns.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let mut reader = self.inner.wal.reader(self.snapshot().manifest.next_offset);
        let mut flushing: Option<FlushTask> = None;
        let mut retry_at: Option<Instant> = None;
        loop {
            let deadline = self.flush_deadline(retry_at);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                done = wait_flush(&mut flushing) => {
                    flushing = None;
                    retry_at = self.finish_flush(done);
                }
                // While memory holds twice a flush, stop reading: the bus is the buffer.
                waited = reader.wait(), if !self.hot_full() => {
                    waited?;
                    self.consume(&mut reader).await?;
                }
                () = tokio::time::sleep_until(deadline) => {}
            }
            if flushing.is_none() && self.flush_due(retry_at) {
                flushing = self.start_flush();
            }
        }
        if let Some(task) = flushing.take() {
            self.finish_flush(task.await.map_err(|e| Error::Task(e.to_string())));
        }
        // Take in whatever became durable before shutdown, then store it all.
        while reader.position() < self.inner.wal.durable_end().next_offset {
            self.consume(&mut reader).await?;
        }
        if let Some(task) = self.start_flush() {
            let done = task.await.map_err(|e| Error::Task(e.to_string()));
            if self.finish_flush(done).is_some() {
                tracing::warn!("final flush failed; the bus keeps the events for the next start");
            }
        }
        Ok(())
    }

    /// Reads one step of what is durable and publishes it to queries.
    async fn consume(&self, reader: &mut WalReader) -> Result<()> {
        let records = reader.read(self.inner.config.read_max_bytes)?;
        if !records.is_empty() {
            let count = records.len() as u64;
            let chunk = tokio::task::spawn_blocking(move || HotChunk::from_records(&records))
                .await
                .map_err(|e| Error::Task(e.to_string()))??;
            let m = &self.inner.metrics;
            m.records.inc_by(count);
            if let Some(chunk) = chunk {
                m.events.inc_by(
                    chunk
                        .tenants
                        .values()
                        .map(|t| t.batch.num_rows() as u64)
                        .sum(),
                );
                self.publish(chunk);
            }
            self.inner.consumed.send_replace(reader.position());
        }
        let end = self.inner.wal.durable_end().next_offset;
        self.inner
            .metrics
            .lag_records
            .set(end.saturating_sub(reader.position()) as i64);
        Ok(())
    }

    fn hot_full(&self) -> bool {
        hot_bytes(&self.snapshot().hot) >= 2 * self.inner.config.flush_line_bytes
    }

    fn publish(&self, chunk: HotChunk) {
        let mut state = self.write_state();
        let mut hot = Vec::clone(&state.hot);
        hot.push(Arc::new(chunk));
        self.inner
            .metrics
            .hot_line_bytes
            .set(hot_bytes(&hot) as i64);
        state.hot = Arc::new(hot);
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        match self.inner.state.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// When the oldest hot chunk must be flushed (or a failed flush retried).
    fn flush_deadline(&self, retry_at: Option<Instant>) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let snap = self.snapshot();
        let due = snap
            .hot
            .first()
            .map(|c| Instant::from_std(c.read_at) + self.inner.config.flush_interval)
            .unwrap_or(far);
        retry_at.map_or(due, |r| due.max(r))
    }

    fn flush_due(&self, retry_at: Option<Instant>) -> bool {
        let now = Instant::now();
        if retry_at.is_some_and(|r| now < r) {
            return false;
        }
        let snap = self.snapshot();
        hot_bytes(&snap.hot) >= self.inner.config.flush_line_bytes
            || (!snap.hot.is_empty() && self.flush_deadline(None) <= now)
    }

    /// Starts flushing every hot chunk; `None` when there is nothing to flush.
    fn start_flush(&self) -> Option<FlushTask> {
        let snap = self.snapshot();
        let range = OffsetRange {
            first: snap.hot.first()?.first_offset,
            last: snap.hot.last()?.last_offset,
        };
        let chunks = Vec::clone(&snap.hot);
        let inner = self.inner.clone();
        Some(tokio::spawn(async move {
            let base = Manifest::clone(&snap.manifest);
            flush(
                &inner.store,
                &base,
                chunks,
                range,
                &inner.config.class,
                &inner.metrics,
            )
            .await
        }))
    }

    /// Applies a finished flush: new manifest and the remaining hot chunks swap in together,
    /// then the bus drops what is now stored. Returns when to retry if it failed.
    fn finish_flush(&self, done: Result<Result<Manifest>>) -> Option<Instant> {
        let manifest = match done.and_then(|r| r) {
            Ok(m) => m,
            Err(e) => {
                self.inner.metrics.flush_errors.inc();
                tracing::error!(error = %e, "flush failed; retrying");
                return Some(Instant::now() + Duration::from_secs(2));
            }
        };
        let next = manifest.next_offset;
        {
            let mut state = self.write_state();
            let hot: Vec<_> = state
                .hot
                .iter()
                .filter(|c| c.first_offset >= next)
                .cloned()
                .collect();
            self.inner
                .metrics
                .hot_line_bytes
                .set(hot_bytes(&hot) as i64);
            *state = Snapshot {
                manifest: Arc::new(manifest),
                hot: Arc::new(hot),
            };
        }
        if let Err(e) = self.inner.wal.trim_below(next) {
            tracing::warn!(error = %e, "could not trim the WAL; will retry after the next flush");
        }
        None
    }
}

async fn wait_flush(task: &mut Option<FlushTask>) -> Result<Result<Manifest>> {
    match task {
        Some(t) => t.await.map_err(|e| Error::Task(e.to_string())),
        None => std::future::pending().await,
    }
}

fn hot_bytes(hot: &[Arc<HotChunk>]) -> u64 {
    hot.iter().map(|c| c.line_bytes()).sum()
}

/// Re-flushes exactly the range a crash interrupted, from the bus.
async fn redo(
    wal: &Wal,
    store: &Store,
    manifest: &Manifest,
    range: OffsetRange,
    config: &ProcessorConfig,
    metrics: &ProcessorMetrics,
) -> Result<Manifest> {
    tracing::info!(
        first = range.first,
        last = range.last,
        "redoing an interrupted flush"
    );
    let mut reader = wal.reader(range.first);
    let mut records = Vec::new();
    while reader.position() <= range.last {
        let got = reader.read(config.read_max_bytes)?;
        if got.is_empty() {
            return Err(Error::Gap {
                expected: reader.position(),
                found: wal.durable_end().next_offset,
            });
        }
        records.extend(got.into_iter().filter(|(o, _)| *o <= range.last));
    }
    let chunk = HotChunk::from_records(&records)?;
    let mut base = manifest.clone();
    base.pending = None;
    flush(
        store,
        &base,
        chunk.map(Arc::new).into_iter().collect(),
        range,
        &config.class,
        metrics,
    )
    .await
}
