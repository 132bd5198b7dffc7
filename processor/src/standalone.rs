//! The processor of a standalone process: one flushing worker over the embedded WAL.

use crate::error::{Error, Result};
use crate::hot::Snapshot;
use crate::metrics::ProcessorMetrics;
use crate::worker::{Mode, PartitionWorker, ProcessorConfig, start_offset};
use logstream_bus::Wal;
use logstream_bus::wal::WAL_SOURCE;
use logstream_store::{Manifest, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A processor over the embedded WAL. Clone to share with queries.
#[derive(Debug, Clone)]
pub struct Processor {
    worker: PartitionWorker,
    wal: Wal,
    start: u64,
}

impl Processor {
    /// Checks that the WAL still holds what the manifest has not stored, drops what it has,
    /// and returns a processor ready to [`run`](Self::run).
    pub async fn start(
        wal: Wal,
        store: Store,
        config: ProcessorConfig,
        metrics: ProcessorMetrics,
    ) -> Result<Self> {
        let manifest = Manifest::load(&store, WAL_SOURCE).await?;
        let start = start_offset(&manifest);
        let first = wal.first_offset();
        if first > start {
            return Err(Error::Gap {
                expected: start,
                found: first,
            });
        }
        wal.trim_below(start)?;
        metrics.partitions.set(1);
        let worker = PartitionWorker::new(
            WAL_SOURCE,
            Mode::Flush,
            manifest,
            Arc::new(wal.clone()),
            store,
            config,
            metrics,
        );
        Ok(Self { worker, wal, start })
    }

    /// What queries see now.
    pub fn snapshot(&self) -> Snapshot {
        self.worker.snapshot()
    }

    /// What queries see once everything acknowledged before the call has been read (waiting
    /// at most `wait`).
    pub async fn fresh_snapshot(&self, wait: Duration) -> Snapshot {
        self.worker.fresh_snapshot(wait).await
    }

    /// Follows the WAL until `shutdown`, then stores what it holds and returns.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let reader = Box::new(self.wal.reader(self.start));
        self.worker.run(reader, shutdown).await
    }
}
