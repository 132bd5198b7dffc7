//! The tail queries read: every Kafka partition followed from its manifest's commit point, so
//! events acknowledged but not yet in Parquet are visible to queries within moments of the ack,
//! in any query replica, without asking the processors.
//!
//! Each partition has a following [`PartitionWorker`]: it reads what its processor has not
//! committed, re-reads the manifest every `manifest_poll`, and drops what the new manifest
//! covers. Memory therefore holds about what the processors hold (bounded by their flush size
//! and interval); a worker stops reading at twice `flush_line_bytes`, as processors do.

use crate::error::{Error, Result};
use crate::hot::Snapshot;
use crate::lock;
use crate::metrics::ProcessorMetrics;
use crate::worker::{Mode, PartitionWorker, ProcessorConfig};
use logstream_bus::kafka::{Follower, KafkaConfig, KafkaMetrics, source_name};
use logstream_store::{Manifest, Store};
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Followers of every partition of the topic.
#[derive(Debug)]
pub struct Tail {
    workers: Vec<PartitionWorker>,
    tasks: Mutex<Vec<JoinHandle<Result<()>>>>,
    stop: CancellationToken,
    follower: Mutex<Option<Follower>>,
}

impl Tail {
    /// Reads every partition's manifest and starts following the topic from there.
    pub async fn start(
        kafka: &KafkaConfig,
        partitions: i32,
        store: Store,
        config: ProcessorConfig,
        metrics: ProcessorMetrics,
        kafka_metrics: KafkaMetrics,
    ) -> Result<Self> {
        let mut manifests = Vec::new();
        for p in 0..partitions {
            let m = Manifest::load(&store, &source_name(&kafka.topic, p)).await?;
            manifests.push((p, m));
        }
        let starts = manifests.iter().map(|(p, m)| (*p, m.next_offset)).collect();
        let (follower, readers) =
            Follower::start(kafka, starts, kafka_metrics).map_err(Error::Bus)?;
        let stop = CancellationToken::new();
        let mut workers = Vec::new();
        let mut tasks = Vec::new();
        for ((p, manifest), (rp, reader, control)) in manifests.into_iter().zip(readers) {
            debug_assert_eq!(p, rp);
            let worker = PartitionWorker::new(
                &source_name(&kafka.topic, p),
                Mode::Follow,
                manifest,
                control,
                store.clone(),
                config.clone(),
                metrics.clone(),
            );
            let (w, s) = (worker.clone(), stop.clone());
            tasks.push(tokio::spawn(
                async move { w.run(Box::new(reader), s).await },
            ));
            workers.push(worker);
        }
        metrics.partitions.set(workers.len() as i64);
        Ok(Self {
            workers,
            tasks: Mutex::new(tasks),
            stop,
            follower: Mutex::new(Some(follower)),
        })
    }

    /// What queries see now: one snapshot per partition.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.workers.iter().map(|w| w.snapshot()).collect()
    }

    /// Snapshots once every partition has been read up to what Kafka held at the call
    /// (waiting at most `wait` in all).
    pub async fn fresh_snapshots(&self, wait: Duration) -> Vec<Snapshot> {
        let waits = self.workers.iter().map(|w| w.fresh_snapshot(wait));
        futures::future::join_all(waits).await
    }

    /// Whether a following worker has stopped (it only does on an error).
    pub fn failed(&self) -> bool {
        lock(&self.tasks).iter().any(|t| t.is_finished()) && !self.stop.is_cancelled()
    }

    /// Stops following.
    pub async fn stop(&self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for t in tasks {
            let _ = t.await;
        }
        let follower = lock(&self.follower).take();
        if let Some(f) = follower {
            let _ = tokio::task::spawn_blocking(move || f.shutdown()).await;
        }
    }
}
