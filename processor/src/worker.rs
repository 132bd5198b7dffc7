//! The work on one bus partition: recover an interrupted flush, then follow the partition,
//! publishing what it reads to queries at once and flushing it to storage by size or age.
//!
//! A worker runs in one of two modes. A *flushing* worker (in a processor) owns the partition's
//! manifest: it writes Parquet and commits. A *following* worker (in a query replica) never
//! writes; it keeps what the processors have not committed yet and drops it as their manifest
//! advances, so a query sees every acknowledged event once: from a file or from memory.

use crate::error::{Error, Result};
use crate::flush::flush;
use crate::hot::{HotChunk, Marks, Snapshot};
use crate::metrics::{ProcessorMetrics, SourceLabels};
use logstream_bus::{PartitionControl, PartitionReader, Record};
use logstream_store::{Manifest, OffsetRange, Store};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Settings of a processor.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Retention class of the events no pipeline route selects.
    pub class: String,
    /// The tenants' pipelines.
    pub pipelines: crate::pipeline::PlansWatch,
    /// Flush at the latest this long after the oldest unflushed event was read.
    pub flush_interval: Duration,
    /// Flush once this many bytes of log lines wait in memory.
    pub flush_line_bytes: u64,
    /// Bytes read from the bus per step.
    pub read_max_bytes: usize,
    /// How often a following worker re-reads the manifest.
    pub manifest_poll: Duration,
    /// Files past retention are dropped from the manifest at the next commit.
    pub retention: logstream_store::RetentionPolicy,
    /// This process's name, recorded in the manifests it claims.
    pub instance: String,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            class: "default".into(),
            pipelines: crate::pipeline::no_plans(),
            flush_interval: Duration::from_secs(60),
            flush_line_bytes: 128 * 1024 * 1024,
            read_max_bytes: 4 * 1024 * 1024,
            manifest_poll: Duration::from_secs(1),
            retention: logstream_store::RetentionPolicy::default(),
            instance: "processor".into(),
        }
    }
}

/// Whether a worker writes the partition's files or follows whoever does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Flush,
    Follow,
}

#[derive(Debug)]
struct Inner {
    source: String,
    mode: Mode,
    control: Arc<dyn PartitionControl>,
    store: Store,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    labels: SourceLabels,
    state: RwLock<Snapshot>,
    /// Replaying senders' marks as of the last record read (see [`HotChunk::from_records`]).
    marks: std::sync::Mutex<Marks>,
    /// Offset just past the last record read: everything below is in `state`.
    consumed: tokio::sync::watch::Sender<u64>,
}

/// One partition's worker. Clone to share with queries.
#[derive(Debug, Clone)]
pub struct PartitionWorker {
    inner: Arc<Inner>,
}

/// A flush in the background; aborted when dropped, so a worker that is dropped (its
/// partition moved to another processor) stops writing at once.
struct FlushTask(JoinHandle<Result<Manifest>>);

impl Drop for FlushTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PartitionWorker {
    /// A worker for `source` whose storage state is `manifest`. Its reader must start at
    /// [`start_offset`]`(&manifest)`.
    pub fn new(
        source: &str,
        mode: Mode,
        manifest: Manifest,
        control: Arc<dyn PartitionControl>,
        store: Store,
        config: ProcessorConfig,
        metrics: ProcessorMetrics,
    ) -> Self {
        let labels = SourceLabels::new(source);
        metrics
            .committed_offset
            .get_or_create(&labels)
            .set(manifest.next_offset as i64);
        let consumed = tokio::sync::watch::Sender::new(start_offset(&manifest));
        let marks = std::sync::Mutex::new(manifest_marks(&manifest));
        let state = RwLock::new(Snapshot {
            manifest: Arc::new(manifest),
            hot: Arc::new(Vec::new()),
        });
        Self {
            inner: Arc::new(Inner {
                source: source.to_string(),
                mode,
                control,
                store,
                config,
                metrics,
                labels,
                state,
                marks,
                consumed,
            }),
        }
    }

    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// What queries see now.
    pub fn snapshot(&self) -> Snapshot {
        match self.inner.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// What queries see once everything the bus held at the call has been read (waiting at
    /// most `wait`): a client that pushed and then queries sees its own events.
    pub async fn fresh_snapshot(&self, wait: Duration) -> Snapshot {
        let target = self.inner.control.end();
        let mut consumed = self.inner.consumed.subscribe();
        let _ = tokio::time::timeout(wait, consumed.wait_for(|c| *c >= target)).await;
        self.snapshot()
    }

    /// Follows the partition until `shutdown`, then (flushing mode) stores what it holds and
    /// returns. Dropping the future instead abandons the work: nothing more is written.
    pub async fn run(
        &self,
        mut reader: Box<dyn PartitionReader>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let pending = self.snapshot().manifest.pending;
        if let (Some(range), Mode::Flush) = (pending, self.inner.mode) {
            self.redo(reader.as_mut(), range, &shutdown).await?;
        }
        let mut flushing: Option<FlushTask> = None;
        let mut retry_at: Option<Instant> = None;
        let mut manifest_poll = tokio::time::interval(self.inner.config.manifest_poll);
        manifest_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let follow = self.inner.mode == Mode::Follow;
        loop {
            let deadline = self.flush_deadline(retry_at);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                done = wait_flush(&mut flushing) => {
                    flushing = None;
                    retry_at = self.finish_flush(done)?;
                }
                _ = manifest_poll.tick() => {
                    if follow {
                        self.follow_manifest().await;
                    }
                    // The bus's end moves without records too (markers, new data): keep the
                    // lag gauge current even when nothing is read.
                    self.set_lag(reader.position());
                }
                // While memory holds twice a flush, stop reading: the bus is the buffer.
                records = reader.next(self.inner.config.read_max_bytes), if !self.hot_full() => {
                    self.consume(records?, reader.position()).await?;
                }
                () = tokio::time::sleep_until(deadline), if !follow => {}
            }
            if !follow && flushing.is_none() && self.flush_due(retry_at) {
                flushing = self.start_flush();
            }
        }
        if follow {
            return Ok(());
        }
        if let Some(task) = flushing.take() {
            self.finish_flush(join(task).await)?;
        }
        // Take in what the bus already holds (all of it on the WAL), then store it all.
        let drain_until = Instant::now() + Duration::from_secs(5);
        while reader.position() < self.inner.control.end() && Instant::now() < drain_until {
            let step = reader.next(self.inner.config.read_max_bytes);
            match tokio::time::timeout(Duration::from_millis(500), step).await {
                Ok(records) => self.consume(records?, reader.position()).await?,
                Err(_) => break,
            }
        }
        if let Some(task) = self.start_flush()
            && self.finish_flush(join(task).await)?.is_some()
        {
            tracing::warn!(
                source = %self.inner.source,
                "final flush failed; the bus keeps the events for the next start"
            );
        }
        Ok(())
    }

    /// Re-flushes exactly the range a crash interrupted (same rows, same keys, same bytes).
    async fn redo(
        &self,
        reader: &mut dyn PartitionReader,
        range: OffsetRange,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        tracing::info!(
            source = %self.inner.source,
            first = range.first,
            last = range.last,
            "redoing an interrupted flush"
        );
        let mut inside = Vec::new();
        let mut past = Vec::new();
        while reader.position() <= range.last {
            for r in reader.next(self.inner.config.read_max_bytes).await? {
                if r.offset <= range.last {
                    inside.push(r);
                } else {
                    past.push(r);
                }
            }
        }
        let chunk: Vec<_> = self
            .decode(inside)
            .await?
            .map(Arc::new)
            .into_iter()
            .collect();
        let mut base = Manifest::clone(&self.snapshot().manifest);
        base.pending = None;
        let i = &self.inner;
        // Storage may be down: retry until it takes the flush or the worker is stopped.
        loop {
            let done = flush(
                &i.store,
                &base,
                chunk.clone(),
                range,
                &i.config.class,
                &i.config.retention,
                &i.metrics,
            )
            .await;
            let Some(retry_at) = self.finish_flush(Ok(done))? else {
                break;
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(retry_at) => {}
            }
        }
        self.consume(past, reader.position()).await
    }

    /// Publishes records just read to queries.
    async fn consume(&self, mut records: Vec<Record>, position: u64) -> Result<()> {
        let m = &self.inner.metrics;
        if self.inner.mode == Mode::Follow {
            // What the processors committed meanwhile is in files already, and their marks
            // as of then in the manifest (marks only grow along the partition: the higher
            // one is the later).
            let manifest = self.snapshot().manifest;
            records.retain(|r| r.offset >= manifest.next_offset);
            let mut marks = self.lock_marks();
            for (source, m) in &manifest.origins {
                let mark = marks.entry(source.clone()).or_insert((m.seq, m.part));
                *mark = (*mark).max((m.seq, m.part));
            }
        }
        if !records.is_empty() {
            m.records.inc_by(records.len() as u64);
            if let Some(chunk) = self.decode(records).await? {
                m.replays.inc_by(chunk.replays);
                // Followers (query replicas) run the same pipelines on the same events:
                // count them once, where they are stored.
                if self.inner.mode == Mode::Flush {
                    m.count_pipelines(&chunk.pipelines);
                }
                m.events.inc_by(
                    chunk
                        .tenants
                        .values()
                        .map(|t| t.batch.num_rows() as u64)
                        .sum(),
                );
                self.publish(chunk);
            }
        }
        self.inner.consumed.send_replace(position);
        self.set_lag(position);
        Ok(())
    }

    /// Decodes records read in offset order, moving the marks.
    async fn decode(&self, records: Vec<Record>) -> Result<Option<HotChunk>> {
        if records.is_empty() {
            return Ok(None);
        }
        let mut marks = std::mem::take(&mut *self.lock_marks());
        // One version of the pipelines for the whole chunk: a change applies from the next.
        let plans = self.inner.config.pipelines.borrow().clone();
        let (chunk, marks) = tokio::task::spawn_blocking(move || {
            let chunk = HotChunk::from_records(&records, &mut marks, &plans);
            (chunk, marks)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
        *self.lock_marks() = marks;
        chunk
    }

    fn lock_marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        match self.inner.marks.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn set_lag(&self, position: u64) {
        self.inner
            .metrics
            .lag_records
            .get_or_create(&self.inner.labels)
            .set(self.inner.control.end().saturating_sub(position) as i64);
    }

    fn hot_full(&self) -> bool {
        hot_bytes(&self.snapshot().hot) >= 2 * self.inner.config.flush_line_bytes
    }

    fn publish(&self, chunk: HotChunk) {
        let mut state = self.write_state();
        let mut hot = Vec::clone(&state.hot);
        hot.push(Arc::new(chunk));
        self.set_hot_gauge(&hot);
        state.hot = Arc::new(hot);
    }

    fn set_hot_gauge(&self, hot: &[Arc<HotChunk>]) {
        self.inner
            .metrics
            .hot_line_bytes
            .get_or_create(&self.inner.labels)
            .set(hot_bytes(hot) as i64);
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
        Some(FlushTask(tokio::spawn(async move {
            let base = Manifest::clone(&snap.manifest);
            flush(
                &inner.store,
                &base,
                chunks,
                range,
                &inner.config.class,
                &inner.config.retention,
                &inner.metrics,
            )
            .await
        })))
    }

    /// Applies a finished flush: new manifest and the remaining hot chunks swap in together,
    /// then the bus learns what is stored. Returns when to retry if it failed, or the error
    /// that ends the worker: another processor owns the partition now.
    fn finish_flush(&self, done: Result<Result<Manifest>>) -> Result<Option<Instant>> {
        let manifest = match done.and_then(|r| r) {
            Ok(m) => m,
            Err(e) if e.is_fenced() => {
                tracing::warn!(source = %self.inner.source, error = %e, "partition taken over; this worker stops writing");
                return Err(e);
            }
            Err(e) => {
                self.inner.metrics.flush_errors.inc();
                tracing::error!(source = %self.inner.source, error = %e, "flush failed; retrying");
                return Ok(Some(Instant::now() + Duration::from_secs(2)));
            }
        };
        let next = manifest.next_offset;
        self.swap_manifest(manifest);
        self.inner.control.stored_below(next);
        Ok(None)
    }

    /// Installs a newer manifest and drops the hot rows it covers, in one step for queries.
    fn swap_manifest(&self, manifest: Manifest) {
        let next = manifest.next_offset;
        let mut state = self.write_state();
        let hot: Vec<_> = state
            .hot
            .iter()
            .filter_map(|c| {
                if c.first_offset >= next {
                    Some(c.clone())
                } else {
                    c.since_offset(next).map(Arc::new)
                }
            })
            .collect();
        self.set_hot_gauge(&hot);
        self.inner
            .metrics
            .committed_offset
            .get_or_create(&self.inner.labels)
            .set(next as i64);
        *state = Snapshot {
            manifest: Arc::new(manifest),
            hot: Arc::new(hot),
        };
    }

    /// Following mode: picks up what the partition's processor has committed since.
    async fn follow_manifest(&self) {
        let current = self.snapshot().manifest;
        match Manifest::load(&self.inner.store, &self.inner.source).await {
            Ok(m) if m.next_offset > current.next_offset => self.swap_manifest(m),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %self.inner.source, error = %e, "could not re-read the manifest");
            }
        }
    }
}

/// Where a partition must be read from for a manifest: the interrupted flush, or what follows
/// the last commit.
pub fn start_offset(manifest: &Manifest) -> u64 {
    manifest
        .pending
        .map_or(manifest.next_offset, |r| r.first.min(manifest.next_offset))
}

/// The marks a manifest holds, as the decoder keeps them.
fn manifest_marks(manifest: &Manifest) -> Marks {
    manifest
        .origins
        .iter()
        .map(|(source, m)| (source.clone(), (m.seq, m.part)))
        .collect()
}

async fn join(mut task: FlushTask) -> Result<Result<Manifest>> {
    (&mut task.0).await.map_err(|e| Error::Task(e.to_string()))
}

async fn wait_flush(task: &mut Option<FlushTask>) -> Result<Result<Manifest>> {
    match task {
        Some(t) => (&mut t.0).await.map_err(|e| Error::Task(e.to_string())),
        None => std::future::pending().await,
    }
}

fn hot_bytes(hot: &[Arc<HotChunk>]) -> u64 {
    hot.iter().map(|c| c.line_bytes()).sum()
}
